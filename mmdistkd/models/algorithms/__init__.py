from .data_free_distillation import DAFLDataFreeDistillation, DataFreeDistillation  # noqa: F401
from .fpn_teacher_distill import FpnTeacherDistill  # noqa: F401
from .frozen_teacher import FrozenTeacher  # noqa: F401
from .overhaul_feature_distillation import OverhaulFeatureDistillation  # noqa: F401
from .self_distill import SelfDistill  # noqa: F401
from .single_teacher_distill import SingleTeacherDistill  # noqa: F401
