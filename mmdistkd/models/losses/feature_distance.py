"""Feature distances as MMRazor's ``L1Loss`` and ``L2Loss`` compute them.

``L2Loss`` with a student connector is FitNets' hint loss ("FitNets: Hints for Thin Deep Nets", Romero et al.,
arXiv 1412.6550); with ``dist=True`` it is the feature term of BYOT ("Be Your Own Teacher", Zhang et al., arXiv
1905.08094); with a Paraphraser on the teacher side it pretrains factor transfer's paraphraser (arXiv 1802.04977,
see ``L2Loss``). ``L1Loss`` is the student and generator loss of DFAD ("Data-Free Adversarial Distillation",
Fang et al., arXiv 1912.11006).

Both keep the teacher argument attached by default (``teacher_detach=False``), unlike the other losses: MMRazor's
never detach, and two of its configs train through the ``t_feature`` argument (factor transfer's pretraining
trains the Paraphraser connector applied to the teacher feature; DFAD's generator is trained through the
teacher's response to its images). A frozen teacher's records carry no graph, so elsewhere this changes nothing.
"""
import torch
import torch.nn.functional as F

from mmdistkd.registry import MODELS

from .base import DistillLoss, check_same_shape

L1_REDUCTIONS = ('none', 'mean', 'sum')


def unit_vectors(x, dim=-1, eps=1e-12):
    """``x / max(||x||, eps)`` along ``dim``, as ``F.normalize``, but an all-zero vector maps to zero with zero
    gradient (``F.normalize`` passes ``1 / eps`` times the incoming gradient to it)."""
    norm = torch.linalg.vector_norm(x, dim=dim, keepdim=True)
    return x * (norm > 0) / norm.clamp_min(eps)


def same_shape_but_singletons(s_feature, t_feature):
    """``t_feature`` in the shape of ``s_feature`` when the two differ only in dimensions of size 1 (BYOT compares
    a connector's ``(N, C)`` feature with the teacher's pooled ``(N, C, 1, 1)``); other shapes must agree."""
    if s_feature.shape != t_feature.shape and \
            [d for d in s_feature.shape if d != 1] == [d for d in t_feature.shape if d != 1]:
        return t_feature.reshape(s_feature.shape)
    check_same_shape(s_feature, t_feature)
    return t_feature


def legacy_reduction(size_average, reduce, reduction):
    """torch's rule for its deprecated ``size_average`` / ``reduce`` arguments: either one given overrides
    ``reduction`` (a missing one counts as True)."""
    if size_average is None and reduce is None:
        return reduction
    if reduce is False:
        return 'none'
    return 'sum' if size_average is False else 'mean'


@MODELS.register_module()
class L1Loss(DistillLoss):
    """``loss_weight * |s_feature - t_feature|``, reduced by ``reduction`` (``'none'``, ``'mean'``, ``'sum'``), or
    by torch's deprecated ``size_average`` / ``reduce`` when either is given, as ``F.l1_loss`` does.

    MMRazor's ``L1Loss`` (same arguments); its ``'batchmean'`` passes its check and then fails inside
    ``F.l1_loss``, so here it is refused when the loss is built. Shapes must agree (``F.l1_loss`` broadcasts).

    Config (in a distiller's ``distill_losses``)::

        loss_l1=dict(type='L1Loss', loss_weight=-1.0)  # DFAD's generator maximises the discrepancy
    """

    teacher_inputs = ('t_feature', )

    def __init__(self, loss_weight=1.0, size_average=None, reduce=None, reduction='mean', teacher_detach=False):
        super().__init__(teacher_detach)
        if reduction not in L1_REDUCTIONS:
            raise ValueError(f'L1Loss reduction must be one of {L1_REDUCTIONS}, got {reduction!r}')
        self.loss_weight = loss_weight
        self.reduction = legacy_reduction(size_average, reduce, reduction)

    def forward(self, s_feature, t_feature):
        check_same_shape(s_feature, t_feature)
        return self.loss_weight * F.l1_loss(s_feature, t_feature, reduction=self.reduction)


@MODELS.register_module()
class L2Loss(DistillLoss):
    """``loss_weight * sum((s - t)^2) / N`` for ``(N, ...)`` features ``s``, ``t`` of the same shape.

    - ``normalize`` (default True): ``s`` and ``t`` are first flattened per sample and scaled to L2 norm ``mult``;
    - ``div_element``: divide by the number of elements instead of ``N``;
    - ``dist``: ``loss_weight * ||s - t||_2`` over the whole batch (``torch.dist``), no division.

    MMRazor's ``L2Loss`` (same arguments and maths), except that an all-zero sample normalises to zero and a zero
    distance under ``dist`` has zero gradient, where MMRazor gives NaN, and that features differing only in
    dimensions of size 1 are compared sample by sample: MMRazor's BYOT config gives ``(N, C)`` against
    ``(N, C, 1, 1)``, which MMRazor broadcasts to ``(N, C, N, C)``, every sample against every other.

    Factor transfer's pretraining (MMRazor's ``factor-transfer_..._pretrain`` config) maps the teacher feature
    ``x`` to ``s_feature`` and the Paraphraser's reconstruction ``P(x)`` to ``t_feature``. The teacher is frozen
    and the student not trained (``student_trainable=False``), so the only gradient of that phase goes through
    ``t_feature`` into the Paraphraser, as in MMRazor, whose ``L2Loss`` does not detach. Hence ``teacher_detach``
    defaults to False: detaching ``t_feature`` would leave that phase training nothing. With ``normalize`` it
    trains ``P(x)`` to reconstruct ``x`` up to a per-sample scale (the paper's reconstruction loss is
    ``||x - P(x)||^2``; pass ``normalize=False`` for it).

    Config (in a distiller's ``distill_losses``)::

        loss_s4=dict(type='L2Loss', loss_weight=10)  # FitNets
        loss_fet_1=dict(type='L2Loss', normalize=False, loss_weight=0.03, dist=True)  # BYOT
    """

    teacher_inputs = ('t_feature', )

    def __init__(self, loss_weight=1.0, normalize=True, mult=1.0, div_element=False, dist=False,
                 teacher_detach=False):
        super().__init__(teacher_detach)
        self.loss_weight = loss_weight
        self.normalize = normalize
        self.mult = mult
        self.div_element = div_element
        self.dist = dist

    def forward(self, s_feature, t_feature):
        t_feature = same_shape_but_singletons(s_feature, t_feature)
        if self.normalize:
            s_feature, t_feature = self.normalized(s_feature), self.normalized(t_feature)
        difference = s_feature - t_feature
        if self.dist:
            # vector_norm's gradient at zero is zero; sqrt of the summed squares would give NaN there.
            return self.loss_weight * torch.linalg.vector_norm(difference)
        squared = difference.pow(2).sum()
        return self.loss_weight * squared / max(difference.numel() if self.div_element else difference.shape[0], 1)

    def normalized(self, feature):
        """Each sample flattened and scaled to L2 norm ``mult``."""
        return unit_vectors(feature.reshape(feature.shape[0], -1)) * self.mult
