"""Activation boundaries, "Knowledge Transfer via Distillation of Activation Boundaries Formed by Hidden
Neurons" (Heo et al., AAAI 2019, arXiv 1811.03233).

The student (through a connector) learns on which side of zero each teacher neuron's pre-activation lies,
not its value: a squared hinge with margin ``m`` pushes the student response above ``m`` where the teacher's
is positive and below ``-m`` where it is not.
"""
import torch

from mmdistkd.registry import MODELS

from .base import DistillLoss, check_same_shape


@MODELS.register_module()
class ABLoss(DistillLoss):
    """``loss_weight * 3 / (1000 N) * sum(relu(m - s)^2 [t > 0] + relu(m + s)^2 [t <= 0])`` over all elements
    of the ``(N, ...)`` student response ``s`` (connected to the teacher's channels) and teacher response ``t``.

    The paper's alternative loss with margin ``m = margin``; the ``3 / (1000 N)`` scale is MMRazor's (its
    ``ABLoss``, same arguments), which MMRazor's config weights per stage (1, 0.5, 0.25, 0.125).

    Config (in a distiller's ``distill_losses``)::

        loss_s4=dict(type='ABLoss', loss_weight=1.0)
    """

    teacher_inputs = ('t_feature', )

    def __init__(self, loss_weight=1.0, margin=1.0, teacher_detach=True):
        super().__init__(teacher_detach)
        self.loss_weight = loss_weight
        self.margin = margin

    def forward(self, s_feature, t_feature):
        check_same_shape(s_feature, t_feature)
        # The hinge side is set by the sign of the teacher response, for every element.
        boundary_gap = torch.where(t_feature > 0, self.margin - s_feature, self.margin + s_feature)
        loss = boundary_gap.clamp_min(0).pow(2).sum()
        return self.loss_weight * loss * 3 / 1000 / max(s_feature.shape[0], 1)
