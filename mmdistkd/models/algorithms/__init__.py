from .frozen_teacher import FrozenTeacher  # noqa: F401
from .single_teacher_distill import SingleTeacherDistill  # noqa: F401
