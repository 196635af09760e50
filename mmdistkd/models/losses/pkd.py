"""PKD, "PKD: General Distillation Framework for Object Detectors via Pearson Correlation Coefficient"
(Cao et al., NeurIPS 2022, arXiv 2207.02039).

Student and teacher features are each normalised to zero mean and unit variance per channel (over images and
positions), and the mean squared error of the normalised features is taken: up to the ``1e-6`` in the
normalisation, half that MSE is ``(M - 1) / M * (1 - r)`` for the Pearson correlation ``r`` of the ``M`` values
of each channel, averaged over channels. It ignores the magnitude differences between the two detectors'
features.
"""
import math

import torch
import torch.nn.functional as F

from mmdistkd.registry import MODELS

from .base import DistillLoss, check_same_levels, check_same_shape


def normalize_channels(feat, eps=1e-6):
    """``(feat - mean) / (std + eps)`` per channel of ``(N, C, H, W)`` ``feat``, mean and unbiased std over
    ``N, H, W``.

    The std is a norm of the centred values, whose gradient at a constant channel is 0 (``Tensor.std``'s is
    NaN there), and a single value per channel counts as one degree of freedom (``Tensor.std`` gives NaN)."""
    centred = feat - feat.mean(dim=(0, 2, 3), keepdim=True)
    degrees_of_freedom = max(feat.numel() // max(feat.shape[1], 1) - 1, 1)
    std = torch.linalg.vector_norm(centred, dim=(0, 2, 3), keepdim=True) / math.sqrt(degrees_of_freedom)
    return centred / (std + eps)


@MODELS.register_module()
class PKDLoss(DistillLoss):
    """``loss_weight * sum_levels MSE(norm(S), norm(T)) / 2`` with ``norm`` the per-channel standardisation
    (``normalize_channels``) of ``(N, C, H, W)`` features; a tensor is one level, a list / tuple several.

    MMRazor's ``PKDLoss`` (same arguments and maths). When the spatial sizes of a level differ, the student's
    feature is resized to the teacher's (``resize_stu=True``) or the teacher's to the student's, bilinearly
    (``align_corners=False``); MMRazor compares only the heights to decide, here heights and widths.
    Channels must agree (map the student through a connector otherwise).

    Config (in a distiller's ``distill_losses``)::

        loss_pkd_fpn0=dict(type='PKDLoss', loss_weight=6)
    """

    teacher_inputs = ('preds_T', )

    def __init__(self, loss_weight=1.0, resize_stu=True, teacher_detach=True):
        super().__init__(teacher_detach)
        self.loss_weight = loss_weight
        self.resize_stu = resize_stu

    def forward(self, preds_S, preds_T):
        check_same_levels(preds_S, preds_T)
        if not isinstance(preds_S, (list, tuple)):
            preds_S, preds_T = (preds_S, ), (preds_T, )
        return self.loss_weight * sum(self.level_loss(s, t) for s, t in zip(preds_S, preds_T))

    def level_loss(self, pred_S, pred_T):
        if pred_S.dim() != 4 or pred_T.dim() != 4:
            raise ValueError(f'PKDLoss takes (N, C, H, W) features, got student {tuple(pred_S.shape)} and '
                             f'teacher {tuple(pred_T.shape)}')
        if pred_S.shape[-2:] != pred_T.shape[-2:]:
            if self.resize_stu:
                pred_S = F.interpolate(pred_S, pred_T.shape[-2:], mode='bilinear', align_corners=False)
            else:
                pred_T = F.interpolate(pred_T, pred_S.shape[-2:], mode='bilinear', align_corners=False)
        check_same_shape(pred_S, pred_T)
        return F.mse_loss(normalize_channels(pred_S), normalize_channels(pred_T)) / 2
