"""Classic KD, "Distilling the Knowledge in a Neural Network" (Hinton et al., 2015, arXiv 1503.02531), written
as the cross entropy of the student's tempered predictions with the teacher's tempered softmax (a soft label).
"""
import torch.nn.functional as F

from mmdistkd.registry import MODELS

from .base import DistillLoss, check_same_shape

SOFT_CE_REDUCTIONS = (None, 'none', 'mean', 'sum')


@MODELS.register_module()
class KDSoftCELoss(DistillLoss):
    """``loss_weight * tau^2 * reduce(weight * CE_i)`` with ``CE_i = -sum_c softmax(T_i / tau)_c *
    log_softmax(S_i / tau)_c`` over the last axis (classes), ``tau^2`` only if ``mult_tem_square``.

    It differs from ``KLDivergence`` by the teacher's entropy, a constant: same gradient, larger value.
    ``weight`` (one per sample, the shape of ``CE``), ``avg_factor`` and ``reduction_override`` behave as in
    mmpretrain's ``soft_cross_entropy``: ``'mean'`` with an ``avg_factor`` divides the sum by it, ``'sum'``
    refuses one. ``reduction=None`` means ``'none'`` (MMRazor accepts it at build and fails in the loss).

    Config::

        loss_kd=dict(type='KDSoftCELoss', tau=1, reduction='mean', loss_weight=1.0)
    """

    teacher_inputs = ('preds_T',)
    compares_class_scores = True

    def __init__(self, tau=1.0, reduction='mean', mult_tem_square=True, loss_weight=1.0, teacher_detach=True):
        super().__init__(teacher_detach)
        check_reduction(reduction)
        self.tau = tau
        self.reduction = reduction
        self.mult_tem_square = mult_tem_square
        self.loss_weight = loss_weight

    def forward(self, preds_S, preds_T, weight=None, avg_factor=None, reduction_override=None):
        check_same_shape(preds_S, preds_T)
        check_reduction(reduction_override)
        reduction = (reduction_override or self.reduction) or 'none'
        soft_ce = -(F.softmax(preds_T / self.tau, dim=-1) * F.log_softmax(preds_S / self.tau, dim=-1)).sum(-1)
        if weight is not None:
            if weight.shape != soft_ce.shape:
                raise ValueError(f'KDSoftCELoss takes one weight per sample, of shape {tuple(soft_ce.shape)} for '
                                 f'predictions of shape {tuple(preds_S.shape)}, got {tuple(weight.shape)}')
            soft_ce = soft_ce * weight
        scale = self.loss_weight * (self.tau**2 if self.mult_tem_square else 1)
        return scale * reduce_soft_ce(soft_ce, reduction, avg_factor)


def check_reduction(reduction):
    if reduction not in SOFT_CE_REDUCTIONS:
        raise ValueError(f'reduction must be one of {SOFT_CE_REDUCTIONS}, got {reduction!r}')


def reduce_soft_ce(loss, reduction, avg_factor):
    """mmpretrain's ``weight_reduce_loss`` reduction (after the weight)."""
    if reduction == 'none':
        return loss
    if reduction == 'sum':
        if avg_factor is not None:
            raise ValueError('avg_factor can only be used with reduction="mean" or "none", not "sum"')
        return loss.sum()
    return loss.mean() if avg_factor is None else loss.sum() / avg_factor
