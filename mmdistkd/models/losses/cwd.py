"""CWD, "Channel-wise Knowledge Distillation for Dense Prediction" (Shu et al., ICCV 2021, arXiv 2011.13256).

Each channel of a feature map or of dense logits becomes a distribution over the spatial positions (a softmax
over ``H*W``), and the student's distribution of every channel is pulled to the teacher's by KL divergence.
"""
import torch.nn.functional as F

from mmdistkd.registry import MODELS

from .base import DistillLoss, check_same_levels, check_same_shape


@MODELS.register_module()
class ChannelWiseDivergence(DistillLoss):
    """``loss_weight * tau^2 / (N * C) * sum_{n,c} KL(softmax_HW(T[n, c] / tau) || softmax_HW(S[n, c] / tau))``
    on ``(N, C, H, W)`` student and teacher maps of the same shape.

    MMRazor's ``ChannelWiseDivergence`` (same arguments and maths); a list / tuple of maps (FPN levels) sums
    the levels' losses, where MMRazor takes one map per loss.

    Config (in a distiller's ``distill_losses``)::

        loss_cwd=dict(type='ChannelWiseDivergence', tau=1, loss_weight=5)
    """

    teacher_inputs = ('preds_T', )

    def __init__(self, tau=1.0, loss_weight=1.0, teacher_detach=True):
        super().__init__(teacher_detach)
        self.tau = tau
        self.loss_weight = loss_weight

    def forward(self, preds_S, preds_T):
        check_same_levels(preds_S, preds_T)
        if isinstance(preds_S, (list, tuple)):
            return sum(self.level_loss(s, t) for s, t in zip(preds_S, preds_T))
        return self.level_loss(preds_S, preds_T)

    def level_loss(self, preds_S, preds_T):
        check_same_shape(preds_S, preds_T)
        if preds_S.dim() != 4:
            raise ValueError(f'ChannelWiseDivergence takes (N, C, H, W) maps, got shape {tuple(preds_S.shape)}')
        num_images, channels = preds_S.shape[:2]
        # One row per (image, channel): a distribution over the H*W positions.
        log_p_S = F.log_softmax(preds_S.reshape(num_images * channels, -1) / self.tau, dim=1)
        log_p_T = F.log_softmax(preds_T.reshape(num_images * channels, -1) / self.tau, dim=1)
        kl = F.kl_div(log_p_S, log_p_T, reduction='sum', log_target=True)
        return self.loss_weight * self.tau**2 * kl / max(num_images * channels, 1)
