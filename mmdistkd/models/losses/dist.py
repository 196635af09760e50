"""DIST, "Knowledge Distillation from A Stronger Teacher" (Huang et al., NeurIPS 2022).

Only the correlation of student and teacher predictions is matched: across classes for each sample
(inter-class relation) and across samples for each class (intra-class relation). Variants for dense
prediction (segmentation pixels, detection anchors, FPN levels) and a global-batch intra relation are
options of ``DISTLoss``. The relations themselves are computed by ``relations.pearson_relations``,
which walks the logits in chunks instead of keeping probability-sized intermediates for backward.
"""
import torch
import torch.distributed as dist
import torch.nn.functional as F

from mmdistkd.registry import MODELS

from .base import DistillLoss, check_same_levels, check_same_shape
from .relations import pearson_relations, probabilities

MODES = ('softmax', 'sigmoid_anchor', 'sigmoid_flat')
PROBABILITY_OF_MODE = {'softmax': 'softmax', 'sigmoid_anchor': 'sigmoid', 'sigmoid_flat': 'sigmoid'}


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
class DISTLoss(DistillLoss):
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

    ``resize_teacher=True``: dense ``(N, C, H, W)`` teacher scores whose spatial size differs from the
    student's are resized to it (bilinear, ``align_corners=False`` as mmseg resizes logits) before the
    relations, e.g. a Mask2Former teacher's 1/4-resolution scores for a DeepLabV3 student's 1/8 logits; the
    ignored pixels are then read at the student's size. Without it, a size mismatch is an error.

    ``tau_square=False`` drops the ``tau^2`` factor (the paper's pseudo-code). ``global_intra=True``
    computes the intra term on the samples of all ranks (see ``global_intra_relation``); the inter term is
    always computed on the local samples.

    Config (in a distiller's ``distill_losses``)::

        # ImageNet: CE + 2 * DIST
        loss_dist=dict(type='mmdistkd.DISTLoss', tau=1, loss_weight=2.0)
        # Cityscapes decode head (authors: no temperature, weight 1; 0.4 on the auxiliary head)
        loss_dist_seg=dict(type='mmdistkd.DISTLoss', tau=1, loss_weight=1.0, ignore_index=255)
        # RetinaNet, per FPN level, summed
        loss_dist_retina=dict(type='mmdistkd.DISTLoss', mode='sigmoid_anchor', num_classes=80)
        # Teacher scores at another resolution than the student's logits (Mask2Former -> DeepLabV3)
        loss_dist_seg=dict(type='mmdistkd.DISTLoss', tau=1, loss_weight=1.0, resize_teacher=True)
    """

    teacher_inputs = ('logits_T',)
    takes_data_samples = True
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
                 num_classes=None,
                 resize_teacher=False):
        super().__init__(teacher_detach)
        if mode not in MODES:
            raise ValueError(f'mode must be one of {MODES}, got {mode!r}')
        if mode == 'sigmoid_anchor' and not (isinstance(num_classes, int) and num_classes > 0):
            raise ValueError(f"mode='sigmoid_anchor' needs num_classes (a positive int), got {num_classes!r}")
        self.inter_loss_weight = inter_loss_weight
        self.intra_loss_weight = intra_loss_weight
        self.tau = tau
        self.loss_weight = loss_weight
        self.tau_square = tau_square
        self.mode = mode
        self.ignore_index = ignore_index
        self.exclude_ignored = exclude_ignored
        self.global_intra = global_intra
        self.num_classes = num_classes
        self.resize_teacher = resize_teacher

    def forward(self, logits_S, logits_T, data_samples=None):
        check_same_levels(logits_S, logits_T)
        if not isinstance(logits_S, (list, tuple)):
            return self.level_loss(logits_S, logits_T, data_samples)
        return sum(self.level_loss(s, t, data_samples) for s, t in zip(logits_S, logits_T))

    def level_loss(self, logits_S, logits_T, data_samples=None):
        logits_T = self.teacher_at_student_size(logits_S, logits_T)
        check_same_shape(logits_S, logits_T)
        scores_S, scores_T = self.class_scores(logits_S), self.class_scores(logits_T)
        valid = self.valid_pixels(logits_S, data_samples)
        if valid is not None:
            scores_S, scores_T = select_samples(scores_S, valid), select_samples(scores_T, valid)
        probability = PROBABILITY_OF_MODE[self.mode]
        inter, intra = pearson_relations(scores_S, scores_T, probability, self.tau)
        world_size = distributed_world_size()
        if self.global_intra and world_size > 1:
            intra = self.global_intra_relation(scores_S, scores_T, probability, world_size)
        scale = self.loss_weight * (self.tau**2 if self.tau_square else 1)
        return scale * (self.inter_loss_weight * inter + self.intra_loss_weight * intra)

    def teacher_at_student_size(self, logits_S, logits_T):
        """``logits_T`` resized (bilinear) to the spatial size of ``logits_S`` when ``resize_teacher`` is set and
        both are dense ``(N, C, H, W)`` of the same ``(N, C)``; else ``logits_T`` unchanged."""
        dense = logits_S.dim() == logits_T.dim() == 4 and logits_S.shape[:2] == logits_T.shape[:2]
        if not dense or logits_S.shape[-2:] == logits_T.shape[-2:]:
            return logits_T
        if not self.resize_teacher:
            raise ValueError(f'student predictions of shape {tuple(logits_S.shape)} and teacher predictions of '
                             f'shape {tuple(logits_T.shape)} differ in spatial size: set resize_teacher=True '
                             "to resize the teacher's to the student's (bilinear)")
        return F.interpolate(logits_T, size=logits_S.shape[-2:], mode='bilinear', align_corners=False)

    def class_scores(self, logits):
        """``(N, K, *spatial)`` logits as an ``(outer, classes, inner)`` view (no copy for contiguous
        logits) whose ``(outer, inner)`` positions are the samples: ``(N, K, spatial)``, and
        ``(N * anchors, num_classes, spatial)`` in ``'sigmoid_anchor'`` mode."""
        if logits.dim() < 2:
            raise ValueError(f'logits need a class axis (dim 1), got shape {tuple(logits.shape)}')
        num_images, channels = logits.shape[:2]
        if self.mode != 'sigmoid_anchor':
            return logits.reshape(num_images, channels, -1)
        if channels % self.num_classes:
            raise ValueError(f'{channels} channels of logits {tuple(logits.shape)} are not '
                             f'anchors * num_classes (num_classes={self.num_classes})')
        # Channel a*C + c of image n -> outer index n*A + a, class c.
        return logits.reshape(num_images * (channels // self.num_classes), self.num_classes, -1)

    def valid_pixels(self, logits, data_samples):
        """``(N, H*W)`` boolean mask, False where the pixel's label is ``ignore_index``; ``None`` when
        nothing is to be excluded (option off, no data samples, or no ``gt_sem_seg`` in them)."""
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
        return labels.reshape(logits.shape[0], -1) != self.ignore_index

    def global_intra_relation(self, scores_S, scores_T, probability, world_size):
        """Intra-class relation on all ranks' samples (``global_intra`` under torch.distributed).

        Each rank then computes the same global value, but its gradient reaches only its own samples:
        ``d intra / d theta`` summed over ranks is the single-process gradient on the concatenated
        batch, and DDP *averages* over the ``W`` ranks, giving ``1/W`` of it. So the backward is scaled
        by ``W`` (the forward value is unchanged), which makes the DDP-averaged gradient equal to the
        single-process gradient on the concatenated batch, for any per-rank sample counts. (The local
        inter term averaged by DDP equals the single-process one when ranks hold equally many samples.)
        """
        rows = [sample_rows(probabilities(scores, probability, self.tau)) for scores in (scores_S, scores_T)]
        all_rows_S, all_rows_T = gather_rows(*rows)
        _, intra = pearson_relations(all_rows_S[:, :, None], all_rows_T[:, :, None], probability=None)
        return intra + (world_size - 1) * (intra - intra.detach())


def sample_rows(scores):
    """``(outer, classes, inner)`` -> ``(samples, classes)``, a copy."""
    return scores.movedim(1, -1).reshape(-1, scores.shape[1])


def select_samples(scores, valid):
    """The samples of ``(N * A, classes, H*W)`` scores where the ``(N, H*W)`` pixel mask ``valid`` is True
    (every anchor of a pixel shares its label), as ``(selected, classes, 1)``."""
    valid = valid.repeat_interleave(scores.shape[0] // valid.shape[0], dim=0)
    return sample_rows(scores)[valid.reshape(-1)][:, :, None]
