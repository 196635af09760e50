"""Overhaul of feature distillation, "A Comprehensive Overhaul of Feature Distillation" (Heo et al., ICCV 2019,
arXiv 1904.01866).

Features are taken before the ReLU. The teacher's pass through ``max(t, m)`` with a per-channel margin ``m``
(the expected value of its negative responses, from its BN statistics: ``OFDTeacherConnector``), and the
student's through a connector; the partial L2 distance then ignores the student where both are negative and the
student is already below the teacher, since the ReLU would map both to zero.
"""
from mmdistkd.registry import MODELS

from .base import DistillLoss, check_same_shape


@MODELS.register_module()
class OFDLoss(DistillLoss):
    """``loss_weight * sum((s - t)^2 [s > t or t > 0]) / N / mul_factor`` over all elements of the ``(N, ...)``
    connected student feature ``s`` and margin-clipped teacher feature ``t`` (the paper's partial L2).

    MMRazor's ``OFDLoss`` (same arguments and its ``1 / (N * mul_factor)`` scale).

    Config (in a distiller's ``distill_losses``)::

        loss_3=dict(type='OFDLoss', loss_weight=1.0)
    """

    teacher_inputs = ('t_feature', )

    def __init__(self, loss_weight=1.0, mul_factor=1000., teacher_detach=True):
        super().__init__(teacher_detach)
        self.loss_weight = loss_weight
        self.mul_factor = mul_factor

    def forward(self, s_feature, t_feature):
        check_same_shape(s_feature, t_feature)
        counted = (s_feature > t_feature) | (t_feature > 0)
        loss = ((s_feature - t_feature).pow(2) * counted).sum()
        return self.loss_weight * loss / max(s_feature.shape[0], 1) / self.mul_factor
