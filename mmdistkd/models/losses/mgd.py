"""MGD, "Masked Generative Distillation" (Yang et al., ECCV 2022, arXiv 2205.01529).

The student's feature is randomly masked and a generation block reconstructs the teacher's full feature from
it; both happen in the connector (``MGDConnector``). This loss is the reconstruction error of that block's
output against the teacher's feature.
"""
import torch.nn.functional as F

from mmdistkd.registry import MODELS

from .base import DistillLoss, check_same_shape


@MODELS.register_module()
class MGDLoss(DistillLoss):
    """``alpha_mgd * sum((G(S) - T)^2) / N`` for the generated student feature ``G(S)`` (the output of an
    ``MGDConnector``) and the teacher's feature ``T``, both ``(N, C, H, W)``.

    MMRazor's ``MGDLoss`` (same argument, same maths: summed over channels and positions, averaged over
    images).

    Config (in a distiller's ``distill_losses``, with ``preds_S`` mapped through an ``MGDConnector``)::

        loss_mgd_fpn0=dict(type='MGDLoss', alpha_mgd=0.00002)
    """

    teacher_inputs = ('preds_T', )

    def __init__(self, alpha_mgd=0.00002, teacher_detach=True):
        super().__init__(teacher_detach)
        self.alpha_mgd = alpha_mgd

    def forward(self, preds_S, preds_T):
        check_same_shape(preds_S, preds_T)
        if preds_S.dim() == 0:
            raise ValueError('MGDLoss takes (N, C, H, W) features, got a scalar')
        return self.alpha_mgd * F.mse_loss(preds_S, preds_T, reduction='sum') / max(preds_S.shape[0], 1)
