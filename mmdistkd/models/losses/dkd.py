"""DKD, "Decoupled Knowledge Distillation" (Zhao et al., CVPR 2022, arXiv 2203.08679).

The KL divergence of classic KD splits into target-class KD (TCKD: the binary distribution "target class or
not") and non-target-class KD (NCKD: the distribution over the other classes), weighted separately.
``class_targets`` (the labels a loss is handed, in any of the forms below) is shared with WSLD.
"""
import torch
import torch.nn.functional as F

from mmdistkd.registry import MODELS

from .base import DistillLoss, check_same_shape

DKD_REDUCTIONS = ('none', 'batchmean', 'sum', 'mean')


def class_targets(gt_labels, num_samples, num_classes):
    """The ground truth of ``num_samples`` samples as a ``(num_samples, num_classes)`` float target
    distribution (one-hot for hard labels). ``gt_labels`` is any of:

    - an integer tensor of class indices, ``(N,)`` or ``(N, 1)``: what mmpretrain's ``ClsHead`` hands its
      ``loss_module`` (MMRazor's configs record it with ``ModuleInputs`` on ``head.loss_module``, ``data_idx=1``);
    - a float tensor of class scores ``(N, C)``: the same input under batch augments (mixup, cutmix), which
      replace the labels by ``gt_score``;
    - a list of mmpretrain ``DataSample`` (e.g. ``ClsHead.loss``'s second input): their ``gt_score`` if they
      have one, else their ``gt_label``.
    """
    if isinstance(gt_labels, (list, tuple)):
        if not all(hasattr(sample, 'gt_score') or hasattr(sample, 'gt_label') for sample in gt_labels):
            raise TypeError('gt_labels as a list must hold data samples with gt_label or gt_score, got '
                            f'{[type(sample).__name__ for sample in gt_labels]}')
        if all(hasattr(sample, 'gt_score') for sample in gt_labels):
            gt_labels = torch.stack([sample.gt_score for sample in gt_labels])
        else:
            gt_labels = torch.cat([sample.gt_label.reshape(-1) for sample in gt_labels])
    if not torch.is_tensor(gt_labels):
        raise TypeError(f'gt_labels must be a tensor of labels or scores, or a list of data samples, got '
                        f'{type(gt_labels).__name__}')
    if gt_labels.is_floating_point():
        if gt_labels.shape != (num_samples, num_classes):
            raise ValueError(f'gt_labels as class scores must have the logits\' shape ({num_samples}, {num_classes}),'
                             f' got {tuple(gt_labels.shape)}; class indices must be an integer tensor')
        return gt_labels
    labels = gt_labels.reshape(-1)
    if labels.numel() != num_samples:
        raise ValueError(f'{num_samples} samples of logits but gt_labels of shape {tuple(gt_labels.shape)} '
                         f'({labels.numel()} labels): give one class index per sample (multi-label ground truth '
                         'is not supported)')
    if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f'gt_labels must be class indices in [0, {num_classes}), got values from '
                         f'{int(labels.min())} to {int(labels.max())}')
    return F.one_hot(labels.long(), num_classes).float()


def decoupled_log_probs(logits, is_target):
    """``log [p_t, 1 - p_t]`` ``(N, 2)`` and the log-distribution over the non-target classes ``(N, C)``, 0 in
    the target column so that this column adds nothing to a KL divergence of two of them. From log-sum-exps
    rather than MMRazor's ``log`` of summed probabilities: a saturated softmax gives finite values, not
    ``log(0)``."""
    log_total = logits.logsumexp(1, keepdim=True)
    log_non_target_mass = logits.masked_fill(is_target, float('-inf')).logsumexp(1, keepdim=True)
    target_logit = logits.masked_fill(~is_target, 0).sum(1, keepdim=True)
    binary = torch.cat([target_logit - log_total, log_non_target_mass - log_total], dim=1)
    return binary, (logits - log_non_target_mass).masked_fill(is_target, 0)


@MODELS.register_module()
class DKDLoss(DistillLoss):
    """``loss_weight * tau^2 * (alpha * TCKD + beta * NCKD)`` on ``(N, C)`` logits, with
    ``TCKD = KL(b_T || b_S)`` of the binary distributions ``b = [p_t, 1 - p_t]`` (``p = softmax(logits / tau)``,
    ``t`` the sample's class) and ``NCKD = KL(q_T || q_S)`` of ``q = softmax`` over the non-target classes.

    ``gt_labels``: class indices, class scores (mixup / cutmix; the target class is their argmax) or a list of
    data samples, see ``class_targets``.

    Reductions, as MMRazor's effectively are: it passes ``size_average=False`` to ``F.kl_div``, which turns every
    reduction but ``'batchmean'`` into a sum; kept so that its config's ``reduction='mean'`` trains at the same
    scale. ``'batchmean'``: the sum over the batch divided by the batch size (the DKD authors' code); ``'sum'``
    and ``'mean'``: the sum over the batch; ``'none'``: the per-sample losses ``(N,)`` (a sum in MMRazor).

    Config (MMRazor's ``dkd_resnet34_resnet18_8xb32_in1k``)::

        loss_dkd=dict(type='DKDLoss', tau=1, beta=0.5, loss_weight=1, reduction='mean')
        # mapping: preds_S / preds_T <- head.fc outputs; gt_labels <- ModuleInputs of head.loss_module, data_idx=1
    """

    teacher_inputs = ('preds_T',)
    compares_class_scores = True

    def __init__(self, tau=1.0, alpha=1.0, beta=1.0, reduction='batchmean', loss_weight=1.0, teacher_detach=True):
        super().__init__(teacher_detach)
        if reduction not in DKD_REDUCTIONS:
            raise ValueError(f'reduction must be one of {DKD_REDUCTIONS}, got {reduction!r}')
        self.tau = tau
        self.alpha = alpha
        self.beta = beta
        self.reduction = reduction
        self.loss_weight = loss_weight

    def forward(self, preds_S, preds_T, gt_labels):
        check_same_shape(preds_S, preds_T)
        if preds_S.dim() != 2 or preds_S.shape[1] < 2:
            raise ValueError(f'DKDLoss takes (N, C) classification logits with C >= 2 classes, got shape '
                             f'{tuple(preds_S.shape)}')
        is_target = F.one_hot(class_targets(gt_labels, *preds_S.shape).argmax(1), preds_S.shape[1]).bool()
        binary_S, non_target_S = decoupled_log_probs(preds_S / self.tau, is_target)
        binary_T, non_target_T = decoupled_log_probs(preds_T / self.tau, is_target)
        tckd = F.kl_div(binary_S, binary_T, reduction='none', log_target=True)
        nckd = F.kl_div(non_target_S, non_target_T, reduction='none', log_target=True)
        return self.loss_weight * self.tau**2 * (self.alpha * self.reduce(tckd) + self.beta * self.reduce(nckd))

    def reduce(self, elementwise_kl):
        per_sample = elementwise_kl.sum(1)
        if self.reduction == 'none':
            return per_sample
        return per_sample.sum() / (max(len(per_sample), 1) if self.reduction == 'batchmean' else 1)
