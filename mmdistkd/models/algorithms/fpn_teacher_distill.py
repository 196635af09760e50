"""FpnTeacherDistill (MMRazor's name): distillation whose teacher runs only its backbone and neck.

For losses on backbone or FPN features (e.g. PKD, "PKD: General Distillation Framework for Object Detectors via
Pearson Correlation Coefficient", arXiv 2207.02039; CWD, arXiv 2011.13256) the teacher's head and its task losses
are wasted work: the teacher's training-step forward is ``teacher.extract_feat(inputs)`` (the
``'extract_feat'`` teacher-forward strategy). Everything else is ``SingleTeacherDistill``'s.
"""
from mmdistkd.registry import MODELS

from .single_teacher_distill import SingleTeacherDistill


@MODELS.register_module()
class FpnTeacherDistill(SingleTeacherDistill):
    """``SingleTeacherDistill`` with ``teacher_forward='extract_feat'``: the teacher runs backbone and neck only
    (the first-iteration teacher check still runs its whole loss forward once). Takes ``SingleTeacherDistill``'s
    arguments; ``teacher_forward`` may only be ``'extract_feat'``."""

    def __init__(self, *args, teacher_forward='extract_feat', **kwargs):
        if teacher_forward != 'extract_feat':
            raise ValueError(f'FpnTeacherDistill runs only the teacher\'s extract_feat, but teacher_forward='
                             f'{teacher_forward!r}: use SingleTeacherDistill for other teacher forwards')
        super().__init__(*args, teacher_forward=teacher_forward, **kwargs)
