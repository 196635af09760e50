"""Attention transfer, "Paying More Attention to Attention: Improving the Performance of Convolutional Neural
Networks via Attention Transfer" (Zagoruyko and Komodakis, ICLR 2017, arXiv 1612.03928).

A feature map's spatial attention is the channel mean of its squared activations, flattened and scaled to unit
L2 norm per image; the student matches the teacher's attention, so the channel counts may differ.
"""
from mmdistkd.registry import MODELS

from .base import DistillLoss
from .feature_distance import unit_vectors


def attention_map(feature):
    """``(N, C, *spatial)`` -> ``(N, prod(spatial))``: ``mean_c feature^2``, unit L2 norm per image."""
    return unit_vectors(feature.pow(2).mean(1).reshape(feature.shape[0], -1))


@MODELS.register_module()
class ATLoss(DistillLoss):
    """``loss_weight * mean((Q_S - Q_T)^2)`` over images and positions, ``Q = attention_map(feature)``.

    MMRazor's ``ATLoss`` (same arguments) and the authors' code: the mean squared difference of the attention
    maps, where the paper writes the (unsquared) L2 distance per image with weight ``beta / 2``.

    Config (in a distiller's ``distill_losses``)::

        loss_s1=dict(type='ATLoss', loss_weight=250.0)
    """

    teacher_inputs = ('t_feature', )

    def __init__(self, loss_weight=1.0, teacher_detach=True):
        super().__init__(teacher_detach)
        self.loss_weight = loss_weight

    def forward(self, s_feature, t_feature):
        if (s_feature.dim() < 2 or s_feature.shape[0] != t_feature.shape[0]
                or s_feature.shape[2:] != t_feature.shape[2:]):
            raise ValueError(f'ATLoss compares (N, C, H, W) features of the same N, H and W (the channels may '
                             f'differ): got student {tuple(s_feature.shape)} and teacher {tuple(t_feature.shape)}; '
                             'record layers of the same resolution')
        return self.loss_weight * (attention_map(s_feature) - attention_map(t_feature)).pow(2).mean()
