"""Classic logit distillation (Hinton et al., 2015): KL divergence between softened predictions."""
import torch.nn.functional as F

from mmdistkd.registry import MODELS

from .base import DistillLoss, check_same_levels, check_same_shape

REDUCTIONS = ('none', 'batchmean', 'sum', 'mean')


@MODELS.register_module()
class KLDivergence(DistillLoss):
    """``loss_weight * tau^2 * KL(p_T || p_S)``, with ``p = softmax(logits / tau)`` over dim 1.

    MMRazor's ``KLDivergence`` (same arguments and semantics on ``(N, C)`` logits), extended to

    - dense logits ``(N, C, *spatial)``: every position is a sample with its own distribution over dim 1;
    - ``sigmoid=True``: independent binary KL per channel between ``sigmoid(T / tau)`` and
      ``sigmoid(S / tau)``, for sigmoid classifiers (RetinaNet-style heads, ``(N, A*C, H, W)``);
    - a list / tuple of predictions (e.g. FPN levels): the losses of the levels are summed.

    Reductions of the elementwise KL (channel axis = dim 1, ``samples = numel / channels``):

    - ``'none'``: elementwise, the input's shape (a list of tensors for a list of levels);
    - ``'sum'``: sum of all elements;
    - ``'mean'``: mean of all elements;
    - ``'batchmean'``: sum / samples, i.e. summed over the channel axis, averaged over samples (images and
      positions). For ``(N, C)`` this is ``F.kl_div``'s ``batchmean``; with ``sigmoid=True`` on
      ``(N, A*C, H, W)`` it sums over anchors and classes and averages over the ``N*H*W`` positions.

    Config (in a distiller's ``distill_losses``)::

        loss_kd=dict(type='mmdistkd.KLDivergence', tau=4, loss_weight=1.0)
        loss_kd_retina=dict(type='mmdistkd.KLDivergence', tau=1, sigmoid=True, reduction='batchmean')
    """

    teacher_inputs = ('preds_T',)
    compares_class_scores = True

    def __init__(self, tau=1.0, reduction='batchmean', loss_weight=1.0, teacher_detach=True, sigmoid=False):
        super().__init__(teacher_detach)
        if reduction not in REDUCTIONS:
            raise ValueError(f'reduction must be one of {REDUCTIONS}, got {reduction!r}')
        self.tau = tau
        self.reduction = reduction
        self.loss_weight = loss_weight
        self.sigmoid = sigmoid

    def forward(self, preds_S, preds_T):
        check_same_levels(preds_S, preds_T)
        if not isinstance(preds_S, (list, tuple)):
            return self.level_loss(preds_S, preds_T)
        losses = [self.level_loss(s, t) for s, t in zip(preds_S, preds_T)]
        # Elementwise losses of levels of different sizes cannot be summed.
        return losses if self.reduction == 'none' else sum(losses)

    def level_loss(self, preds_S, preds_T):
        check_same_shape(preds_S, preds_T)
        if preds_S.dim() < 2:
            raise ValueError(f'predictions need a channel axis (dim 1), got shape {tuple(preds_S.shape)}')
        kl = self.elementwise_kl(preds_S / self.tau, preds_T / self.tau)
        return self.loss_weight * self.tau**2 * self.reduce(kl)

    def elementwise_kl(self, logits_S, logits_T):
        """``p_T * (log p_T - log p_S)`` per element, from log-probabilities (stable, no log(0))."""
        if not self.sigmoid:
            return F.kl_div(logits_S.log_softmax(1), logits_T.log_softmax(1), reduction='none', log_target=True)
        # Binary KL: the "positive" and "negative" outcome of every channel.
        positive = F.kl_div(F.logsigmoid(logits_S), F.logsigmoid(logits_T), reduction='none', log_target=True)
        negative = F.kl_div(F.logsigmoid(-logits_S), F.logsigmoid(-logits_T), reduction='none', log_target=True)
        return positive + negative

    def reduce(self, kl):
        if self.reduction == 'none':
            return kl
        if self.reduction == 'sum':
            return kl.sum()
        if self.reduction == 'mean':
            return kl.mean()
        num_samples = kl.numel() // kl.shape[1]
        return kl.sum() / max(num_samples, 1)
