"""Hard-label distillation: the student's cross entropy with the teacher's predicted classes, as in DeiT's
distillation token ("Training data-efficient image transformers & distillation through attention", Touvron et
al., ICML 2021, arXiv 2012.12877).
"""
import torch.nn.functional as F

from mmdistkd.registry import MODELS

from .base import DistillLoss, check_same_shape


@MODELS.register_module()
class CrossEntropyLoss(DistillLoss):
    """``loss_weight * CE(preds_S, argmax_c preds_T)``: the teacher's top class is the label, the class axis is
    dim 1 (``(N, C)``, or ``(N, C, *spatial)``: the mean over every position). MMRazor's distillation
    ``CrossEntropyLoss``: it takes the student's and the teacher's predictions, not a head's ``(cls_score,
    label)``. Task heads are built in their own package's scope, so their ``loss=dict(type='CrossEntropyLoss')``
    still resolves to that package's loss.

    Config (MMRazor's DeiT config)::

        loss_distill=dict(type='CrossEntropyLoss', loss_weight=0.5)
    """

    # Detaching is only a statement: the argmax carries no gradient anyway.
    teacher_inputs = ('preds_T',)
    compares_class_scores = True

    def __init__(self, loss_weight=1.0):
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, preds_S, preds_T):
        check_same_shape(preds_S, preds_T)
        if preds_S.dim() < 2:
            raise ValueError(f'predictions need a class axis (dim 1), got shape {tuple(preds_S.shape)}')
        return self.loss_weight * F.cross_entropy(preds_S, preds_T.argmax(1))
