"""Relational knowledge distillation, "Relational Knowledge Distillation" (Park et al., CVPR 2019, arXiv
1904.05068).

The student matches the structure of the teacher's embeddings of a batch rather than the embeddings: the
pairwise distances, each divided by the mean distance of its own batch (distance-wise), and the cosines of the
angles that every triplet of embeddings forms (angle-wise), both compared with the Huber (smooth L1) loss.
Student and teacher embeddings may differ in dimension.
"""
import torch
import torch.nn.functional as F

from mmdistkd.registry import MODELS

from .base import DistillLoss
from .feature_distance import unit_vectors


def normalized_distances(embeddings, eps=1e-12):
    """``(N, D)`` -> ``(N, N)`` Euclidean distances divided by their mean over the ``N (N - 1)`` pairs ``i != j``.

    The differences are taken directly (not from the Gram matrix, whose cancellation leaves identical unit
    embeddings ~5e-4 apart in float32), so identical embeddings are 0 apart, with zero gradient. Without a positive mean
    (one embedding, or all identical) every distance is 0."""
    distances = torch.cdist(embeddings, embeddings, compute_mode='donot_use_mm_for_euclid_dist')
    num_pairs = max(embeddings.shape[0] * (embeddings.shape[0] - 1), 1)
    return distances / (distances.sum() / num_pairs).clamp_min(eps)


def triplet_cosines(embeddings):
    """``(N, D)`` -> ``(N, N, N)``: entry ``[i, j, k]`` is the cosine of the angle at ``x_i`` between ``x_j - x_i``
    and ``x_k - x_i``; 0 where either difference is zero (the angle is undefined there), with zero gradient."""
    directions = unit_vectors(embeddings[None] - embeddings[:, None])
    return directions @ directions.transpose(1, 2)


class RelationalKD(DistillLoss):
    """``loss_weight * smooth_l1(relation(S), relation(T))``, averaged over the relation's entries, on the
    ``(N, ...)`` predictions flattened per sample and, with ``with_l2_norm``, scaled to unit L2 norm."""

    teacher_inputs = ('preds_T', )
    relation = None

    def __init__(self, loss_weight, with_l2_norm=True, teacher_detach=True):
        super().__init__(teacher_detach)
        self.loss_weight = loss_weight
        self.with_l2_norm = with_l2_norm

    def forward(self, preds_S, preds_T):
        if preds_S.shape[0] != preds_T.shape[0]:
            raise ValueError(f'{type(self).__name__} relates the samples of one batch: student predictions '
                             f'{tuple(preds_S.shape)} and teacher predictions {tuple(preds_T.shape)} must have the '
                             'same batch size (dim 0)')
        relation_S, relation_T = (self.relation(self.embeddings(preds)) for preds in (preds_S, preds_T))
        return self.loss_weight * F.smooth_l1_loss(relation_S, relation_T)

    def embeddings(self, preds):
        embeddings = preds.reshape(preds.shape[0], -1)
        return unit_vectors(embeddings) if self.with_l2_norm else embeddings


@MODELS.register_module()
class DistanceWiseRKD(RelationalKD):
    """RKD's distance-wise loss (``normalized_distances``), averaged over all ``N^2`` entries, the diagonal included.

    MMRazor's ``DistanceWiseRKD`` (same arguments and defaults; the authors' code). MMRazor clamps squared distances
    at 1e-12 (identical embeddings count as 1e-6 apart) and gives NaN for a batch of one; here they are 0 apart and
    a batch of one gives 0.

    Config (in a distiller's ``distill_losses``)::

        loss_dw=dict(type='DistanceWiseRKD', with_l2_norm=True, loss_weight=25)
    """

    relation = staticmethod(normalized_distances)

    def __init__(self, loss_weight=25.0, with_l2_norm=True, teacher_detach=True):
        super().__init__(loss_weight, with_l2_norm, teacher_detach)


@MODELS.register_module()
class AngleWiseRKD(RelationalKD):
    """RKD's angle-wise loss (``triplet_cosines``), averaged over all ``N^3`` entries, those with an undefined
    angle (0 on both sides) included.

    MMRazor's ``AngleWiseRKD`` (same arguments and defaults; the authors' code). It holds ``(N, N, D)``
    differences, so map large feature maps to embeddings first (MMRazor's config uses the pooled neck output).

    Config (in a distiller's ``distill_losses``)::

        loss_aw=dict(type='AngleWiseRKD', with_l2_norm=True, loss_weight=50)
    """

    relation = staticmethod(triplet_cosines)

    def __init__(self, loss_weight=50.0, with_l2_norm=True, teacher_detach=True):
        super().__init__(loss_weight, with_l2_norm, teacher_detach)
