"""OverhaulFeatureDistillation (MMRazor's name): "A Comprehensive Overhaul of Feature Distillation" (Heo et al.,
ICCV 2019, arXiv 1904.01866). ``SingleTeacherDistill`` with an ``OFDDistiller``, whose teacher connectors get
their margins from the teacher's batch-norm layers once its weights are loaded (``ofd_distiller.py``).
"""
from mmdistkd.models.distillers.ofd_distiller import OFDDistiller
from mmdistkd.registry import MODELS

from .single_teacher_distill import SingleTeacherDistill


@MODELS.register_module()
class OverhaulFeatureDistillation(SingleTeacherDistill):
    """Takes ``SingleTeacherDistill``'s arguments; ``distiller`` must be an ``OFDDistiller``. The margins come
    from the teacher as loaded at build time (``teacher_ckpt`` or ``pretrained=True``), as in MMRazor; a teacher
    trained along (``teacher_trainable=True``) keeps its initial margins."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not isinstance(self.distiller, OFDDistiller):
            raise TypeError(f'OverhaulFeatureDistillation needs distiller=dict(type=\'OFDDistiller\', ...), which '
                            f'gives the teacher connectors their margins, not a {type(self.distiller).__name__}')
        self.distiller.init_ofd_connectors(self.teacher)
