"""DIST, "Knowledge Distillation from A Stronger Teacher" (Huang et al., NeurIPS 2022).

Only the correlation of student and teacher predictions is matched: across classes for each sample
(inter-class relation) and across samples for each class (intra-class relation). Variants for dense
prediction (segmentation pixels, detection anchors, FPN levels) and a global-batch intra relation are
options of ``DISTLoss``.
"""
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

from mmdistkd.registry import MODELS
from mmdistkd.utils.fp32 import fp32_forward

from .kd import check_same_levels, check_same_shape

MODES = ('softmax', 'sigmoid_anchor', 'sigmoid_flat')


def pearson(a, b, eps=1e-8):
    """Pearson correlation of matching rows of ``a`` and ``b`` (over the last axis), as in the authors'
    code: ``<a', b'> / (|a'| |b'| + eps)`` with ``x' = x - mean(x)``. A constant row gives 0, not NaN."""
    a = a - a.mean(-1, keepdim=True)
    b = b - b.mean(-1, keepdim=True)
    return (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1) + eps)


def relation_loss(probs_S, probs_T):
    """``1 - mean_i pearson(probs_S[i], probs_T[i])``; an empty input gives a zero that is still attached
    to the inputs, so backward runs (it happens when every pixel is ignored)."""
    if probs_S.numel() == 0:
        return probs_S.sum() * 0
    return 1 - pearson(probs_S, probs_T).mean()


def distributed_world_size():
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def gather_rows(*local_rows):
    """Concatenates, in rank order, the rows that every rank holds (row counts may differ per rank).

    Takes and returns matrices of shape ``(rows, columns_i)``. Gradient flows only into this rank's own
    rows (the other ranks' rows arrive as constants)."""
    local = torch.cat(local_rows, dim=1)
    world_size, rank = dist.get_world_size(), dist.get_rank()
    num_rows = torch.tensor([local.shape[0]], device=local.device)
    rank_num_rows = [torch.empty_like(num_rows) for _ in range(world_size)]
    dist.all_gather(rank_num_rows, num_rows)
    rank_num_rows = [int(n) for n in rank_num_rows]
    # all_gather needs equal shapes: pad to the largest rank's row count, cut the padding off after.
    padded = local.new_zeros(max(rank_num_rows), local.shape[1])
    padded[:local.shape[0]] = local.detach()
    rank_rows = [torch.empty_like(padded) for _ in range(world_size)]
    dist.all_gather(rank_rows, padded)
    rank_rows[rank] = local
    gathered = torch.cat([rows[:n] for rows, n in zip(rank_rows, rank_num_rows)])
    return gathered.split([rows.shape[1] for rows in local_rows], dim=1)


@MODELS.register_module()
class DISTLoss(nn.Module):
    """DIST: ``loss_weight * tau^2 * (inter_loss_weight * inter + intra_loss_weight * intra)`` with
    ``inter = 1 - mean_i pearson(Ys[i, :], Yt[i, :])`` and ``intra = 1 - mean_c pearson(Ys[:, c], Yt[:, c])``
    on the ``(samples, classes)`` probability matrices of student and teacher.

    Inputs (``logits_S`` and ``logits_T`` of the same shape):

    - ``(N, C)`` classification logits;
    - ``(N, C, H, W)`` segmentation logits: every pixel is a sample. With ``exclude_ignored`` and data
      samples carrying ``gt_sem_seg``, labels are resized (nearest) to the logits' size and pixels labelled
      ``ignore_index`` are dropped; when no pixel is left the loss is 0;
    - a list / tuple of either (FPN levels): the levels' losses are summed (data samples go to each).

    Modes (how logits become probabilities):

    - ``'softmax'``: ``softmax(logits / tau)`` over dim 1;
    - ``'sigmoid_anchor'``: dense detection heads ``(N, A*C, H, W)`` with mmdet's anchor-major channels
      (``a*C + c``) become ``(N*H*W*A, C)`` rows of ``sigmoid(logits / tau)``; needs ``num_classes=C``;
    - ``'sigmoid_flat'``: the authors' RetinaNet variant, ``sigmoid(logits / tau)`` on ``(N*H*W, A*C)``.

    ``tau_square=False`` drops the ``tau^2`` factor (the paper's pseudo-code). ``global_intra=True``
    computes the intra term on the samples of all ranks (see ``intra_relation``); the inter term is
    always computed on the local samples.

    Config (in a distiller's ``distill_losses``)::

        # ImageNet: CE + 2 * DIST
        loss_dist=dict(type='mmdistkd.DISTLoss', tau=1, loss_weight=2.0)
        # Cityscapes decode head (authors: no temperature, weight 1; 0.4 on the auxiliary head)
        loss_dist_seg=dict(type='mmdistkd.DISTLoss', tau=1, loss_weight=1.0, ignore_index=255)
        # RetinaNet, per FPN level, summed
        loss_dist_retina=dict(type='mmdistkd.DISTLoss', mode='sigmoid_anchor', num_classes=80)
    """

    # The distiller checks at build that student and teacher heads predict the same classes.
    compares_class_scores = True

    def __init__(self,
                 inter_loss_weight=1.0,
                 intra_loss_weight=1.0,
                 tau=1.0,
                 loss_weight=1.0,
                 teacher_detach=True,
                 tau_square=True,
                 mode='softmax',
                 ignore_index=255,
                 exclude_ignored=True,
                 global_intra=False,
                 num_classes=None):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f'mode must be one of {MODES}, got {mode!r}')
        if mode == 'sigmoid_anchor' and not (isinstance(num_classes, int) and num_classes > 0):
            raise ValueError(f"mode='sigmoid_anchor' needs num_classes (a positive int), got {num_classes!r}")
        self.inter_loss_weight = inter_loss_weight
        self.intra_loss_weight = intra_loss_weight
        self.tau = tau
        self.loss_weight = loss_weight
        self.teacher_detach = teacher_detach
        self.tau_square = tau_square
        self.mode = mode
        self.ignore_index = ignore_index
        self.exclude_ignored = exclude_ignored
        self.global_intra = global_intra
        self.num_classes = num_classes

    @fp32_forward
    def forward(self, logits_S, logits_T, data_samples=None):
        check_same_levels(logits_S, logits_T)
        if not isinstance(logits_S, (list, tuple)):
            return self.level_loss(logits_S, logits_T, data_samples)
        return sum(self.level_loss(s, t, data_samples) for s, t in zip(logits_S, logits_T))

    def level_loss(self, logits_S, logits_T, data_samples=None):
        check_same_shape(logits_S, logits_T)
        if self.teacher_detach:
            logits_T = logits_T.detach()
        probs_S = self.sample_probabilities(logits_S)
        probs_T = self.sample_probabilities(logits_T)
        valid = self.valid_samples(logits_S, data_samples, num_rows=probs_S.shape[0])
        if valid is not None:
            probs_S, probs_T = probs_S[valid], probs_T[valid]
        inter = relation_loss(probs_S, probs_T)
        intra = self.intra_relation(probs_S, probs_T)
        scale = self.loss_weight * (self.tau**2 if self.tau_square else 1)
        return scale * (self.inter_loss_weight * inter + self.intra_loss_weight * intra)

    def sample_probabilities(self, logits):
        """``(N, K, *spatial)`` logits -> ``(samples, classes)`` probabilities, rows ordered
        ``(n, *spatial)``, and ``(n, *spatial, anchor)`` in ``'sigmoid_anchor'`` mode."""
        if logits.dim() < 2:
            raise ValueError(f'logits need a class axis (dim 1), got shape {tuple(logits.shape)}')
        rows = logits.movedim(1, -1).reshape(-1, logits.shape[1])
        if self.mode == 'softmax':
            return (rows / self.tau).softmax(-1)
        if self.mode == 'sigmoid_anchor':
            if logits.shape[1] % self.num_classes:
                raise ValueError(f'{logits.shape[1]} channels of logits {tuple(logits.shape)} are not '
                                 f'anchors * num_classes (num_classes={self.num_classes})')
            # Channel a*C + c -> row (position, a), column c.
            rows = rows.reshape(-1, self.num_classes)
        return (rows / self.tau).sigmoid()

    def valid_samples(self, logits, data_samples, num_rows):
        """Boolean mask over the ``num_rows`` sample rows, False where the pixel's label is
        ``ignore_index``; ``None`` when nothing is to be excluded (option off, no data samples, or no
        ``gt_sem_seg`` in them)."""
        if not self.exclude_ignored or not data_samples or logits.dim() != 4:
            return None
        if not all(hasattr(sample, 'gt_sem_seg') for sample in data_samples):
            return None
        if len(data_samples) != logits.shape[0]:
            raise ValueError(f'{len(data_samples)} data samples for logits of shape {tuple(logits.shape)}')
        # (N, 1, H, W) labels at the padded input resolution -> the logits' resolution.
        labels = torch.stack([sample.gt_sem_seg.data for sample in data_samples]).to(logits.device)
        if labels.shape[-2:] != logits.shape[-2:]:
            labels = F.interpolate(labels.float(), size=logits.shape[-2:], mode='nearest')
        valid = labels.reshape(-1) != self.ignore_index
        # Every anchor at a pixel shares the pixel's label ('sigmoid_anchor' rows are (position, anchor)).
        return valid.repeat_interleave(num_rows // valid.numel())

    def intra_relation(self, probs_S, probs_T):
        """Intra-class relation; with ``global_intra`` under torch.distributed, on all ranks' samples.

        Each rank then computes the same global value, but its gradient reaches only its own samples:
        ``d intra / d theta`` summed over ranks is the single-process gradient on the concatenated
        batch, and DDP *averages* over the ``W`` ranks, giving ``1/W`` of it. So the backward is scaled
        by ``W`` (the forward value is unchanged), which makes the DDP-averaged gradient equal to the
        single-process gradient on the concatenated batch, for any per-rank sample counts. (The local
        inter term averaged by DDP equals the single-process one when ranks hold equally many samples.)
        """
        world_size = distributed_world_size()
        if not (self.global_intra and world_size > 1):
            return relation_loss(probs_S.T, probs_T.T)
        all_probs_S, all_probs_T = gather_rows(probs_S, probs_T)
        intra = relation_loss(all_probs_S.T, all_probs_T.T)
        return intra + (world_size - 1) * (intra - intra.detach())
