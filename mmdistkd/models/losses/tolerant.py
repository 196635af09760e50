"""Tolerant teacher (Yang et al., "Knowledge Distillation in Generations: More Tolerant Teachers Educate
Better Students", AAAI 2019, arXiv:1805.05551); the dense-task extension is ours (docs/tolerant.md).

The first teacher of a generation chain is trained with ``eta * L_task + (1 - eta) * TSD``, where the
top score difference

    TSD = p[a_1] - 1/(K-1) * sum_{k=2..K} p[a_k]

is taken over the K largest probabilities of the prediction itself (not the ground truth). Minimising
it keeps some probability on a few secondary classes, which is what the later generations learn from.

``TopScoreDifferenceLoss`` is the bare term (softmax over logits, (N, C) or dense (N, C, H, W)).
``TolerantLoss`` wraps a head's own loss config so that a plain mmpretrain / mmdet / mmseg config trains
a tolerant teacher by replacing one loss dict; see its docstring for a config per task.

Both are task losses that a head calls (``pred, target, weight, avg_factor``), not distillation losses:
they have no teacher input to detach, take no data samples from the distiller and compare no student and
teacher scores, so they are ``Fp32Loss`` (the fp32 part of the loss contract), not ``DistillLoss``.
"""
import torch
import torch.nn as nn

from mmdistkd.registry import MODELS
from mmdistkd.utils.tasks import TASK_OF_PACKAGE, package_of

from .base import Fp32Loss

# The package a base loss comes from says which caller it serves, hence how TSD reads the inputs.
TASKS = ('cls', 'seg', 'det')


def top_score_difference(probs, k):
    """Per-sample TSD of probabilities ``probs (..., C)`` -> ``(...)``: top-1 minus the mean of ranks 2..k."""
    if not 2 <= k <= probs.size(-1):
        raise ValueError(f'TSD needs 2 <= k <= number of classes, got k={k} with {probs.size(-1)} classes')
    top = probs.topk(k, dim=-1).values
    return top[..., 0] - top[..., 1:].mean(dim=-1)


def reduce_per_sample(values, valid=None, weight=None, avg_factor=None, reduction='mean'):
    """Reduces per-sample ``values`` over the samples where ``valid`` holds, each scaled by ``weight``, with
    mmdet's ``weight_reduce_loss`` (the reduction mmdet's own losses use).

    ``'mean'`` divides the sum by ``avg_factor`` when given (the caller's normaliser, as mmdet and
    mmpretrain losses do), else by the number of valid samples; no valid sample gives 0, never NaN
    (mmdet's helper adds eps to ``avg_factor``, which is why it serves and mmpretrain's does not).
    ``'none'`` returns the per-sample values with invalid samples zeroed. ``'sum'`` with an ``avg_factor``
    is an error, as in mmdet.
    """
    # Imported here: mmdet.models imports every mmdet model, which classification runs do not need.
    from mmdet.models.losses.utils import weight_reduce_loss

    if reduction not in ('none', 'sum', 'mean'):
        raise ValueError(f"reduction must be 'none', 'sum' or 'mean', got {reduction!r}")
    if valid is not None:
        # where, not multiply: a masked-out sample must not pass a NaN or inf on
        values = torch.where(valid.reshape(values.shape), values, values.new_zeros(()))
    if weight is not None:
        weight = weight.reshape(values.shape).to(values.dtype)
    if reduction == 'mean' and avg_factor is None:
        # The mean over valid samples; at least 1, so that no sample (or no valid one) gives 0.
        avg_factor = valid.sum().clamp(min=1) if valid is not None else max(values.numel(), 1)
    return weight_reduce_loss(values, weight, reduction, avg_factor)


def classes_last(scores):
    """``(N, C)`` stays; dense ``(N, C, *spatial)`` -> ``(N, *spatial, C)``: every position is a sample."""
    return scores if scores.dim() == 2 else scores.movedim(1, -1)


@MODELS.register_module()
class TopScoreDifferenceLoss(Fp32Loss):
    """``loss_weight * mean TSD`` over the softmax of ``logits`` (N, C) or (N, C, H, W) (each pixel a sample).

    Args:
        k: number of top classes; ranks 2..k are the "secondary" classes kept alive.
        loss_weight: multiplies the loss.
    """

    def __init__(self, k=3, loss_weight=1.0):
        super().__init__()
        self.k = k
        self.loss_weight = loss_weight

    def forward(self, logits, weight=None, valid_mask=None, avg_factor=None, reduction_override=None):
        """``weight`` and ``valid_mask`` have the sample shape ((N,) or (N, H, W)); see
        :func:`reduce_per_sample` for ``avg_factor`` and ``reduction_override``."""
        tsd = top_score_difference(classes_last(logits).softmax(dim=-1), self.k)
        return self.loss_weight * reduce_per_sample(
            tsd, valid_mask, weight, avg_factor, reduction_override or 'mean')


@MODELS.register_module()
class TolerantLoss(Fp32Loss):
    """``eta * base_loss + (1 - eta) * loss_weight * TSD``: a drop-in for a head's classification loss.

    Both parts are normalised alike (the caller's ``avg_factor`` when it passes one), so each counted
    sample contributes ``eta * L_i + (1 - eta) * TSD_i``. TSD is on the base loss's own activation:
    sigmoid if ``base_loss.use_sigmoid`` else softmax, over the logits the head passes.

    How the caller is served (``task``, by default read from the package of the built base loss):

    - ``'cls'`` (mmpretrain, ``ClsHead.loss_module(cls_score, target, avg_factor=N)``): every sample
      counts; ``target`` may be labels (N,) or soft scores (N, C) (mixup / cutmix) and only reaches
      the base loss::

          head=dict(type='LinearClsHead', num_classes=1000, in_channels=512,
                    loss=dict(type='mmdistkd.TolerantLoss', eta=0.9, k=3,
                              base_loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))

    - ``'seg'`` (mmseg ``loss_decode`` entry, called with (N, C, H, W) logits, (N, H, W) labels,
      ``weight=``, ``ignore_index=``): TSD per pixel, averaged over pixels whose label is not
      ``ignore_index``; ``loss_name`` must be unique among the head's entries and start with ``loss_``::

          decode_head=dict(..., loss_decode=dict(
              type='mmdistkd.TolerantLoss',  # loss_name='loss_tolerant' by default
              base_loss=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)))

    - ``'det'`` (mmdet, ``loss_cls(cls_score (M, C_out), labels (M,), label_weights (M,), avg_factor=)``;
      background label = num_classes): TSD only on positive samples (``0 <= label < num_classes``),
      weighted by ``label_weights`` and divided by the loss's ``avg_factor``; background samples get no
      TSD gradient (raising their secondary scores would make false positives); zero positives give 0.

      * sigmoid heads (RetinaNet, ATSS, FCOS focal loss): TSD over the C sigmoid scores. mmdet's dense heads read
        ``use_sigmoid`` from the *config* dict before building the loss (and silently add a background
        channel without it), so the wrapper dict must say ``use_sigmoid=True`` too; it is checked
        against the base loss::

            bbox_head=dict(type='RetinaHead', ..., loss_cls=dict(
                type='mmdistkd.TolerantLoss', use_sigmoid=True,
                base_loss=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25,
                               loss_weight=1.0)))

      * quality focal loss heads (RTMDet, GFL: ``loss_cls(cls_score, (labels, iou_scores), weight=,
        avg_factor=)``, or a (M, C) soft-score target): TSD over the C sigmoid scores (the given
        probabilities with ``activated=True``) of the positives, which the labels mark (a score target:
        a non-zero entry). Both parts take the caller's ``avg_factor``: GFL passes its positives' count,
        RTMDet passes 1.0 and divides each level's loss by its own factor afterwards, which then scales
        both parts alike. ``use_sigmoid=True`` in the wrapper dict, as above::

            bbox_head=dict(type='RTMDetSepBNHead', ..., loss_cls=dict(
                type='mmdistkd.TolerantLoss', use_sigmoid=True,
                base_loss=dict(type='QualityFocalLoss', use_sigmoid=True, beta=2.0, loss_weight=1.0)))

      * softmax heads (two-stage RoI heads, C+1 outputs): softmax over all C+1 outputs, as the
        cross-entropy sees them, then TSD over the top-K of the C foreground probabilities (the
        background is no class to be tolerant about), positive proposals only::

            roi_head=dict(bbox_head=dict(..., loss_cls=dict(
                type='mmdistkd.TolerantLoss',
                base_loss=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0))))

    ``base_loss`` is built from mmdistkd's registry under the current default scope (the runner sets
    it from the config's ``default_scope``), so an unprefixed type resolves in the config's own
    package; a prefixed one (``'mmdet.FocalLoss'``) resolves anywhere.

    Args:
        base_loss: config dict (or module) of the head's own loss.
        eta: weight of the base loss; ``1 - eta`` weighs TSD (``eta = 1``: a strict teacher). The default
            0.9 comes from a sweep on the demo classification data (docs/tolerant.md: one seed, a small
            CNN): the teacher and its generation-1 student were best at 0.9, and both lost accuracy
            steadily as eta fell to 0.7, 0.6, 0.5. The paper's value was not retrieved; sweep it on real data.
        k: number of top classes in TSD. The default 3 (two secondary classes): k = 2, 3, 5 did not differ
            beyond noise in that sweep.
        loss_weight: scale of the TSD term; None takes the base loss's ``loss_weight`` (e.g. 0.4 on an
            auxiliary head), so the whole loss is ``w * (eta * L + (1 - eta) * TSD)``.
        task: ``'cls'``, ``'seg'`` or ``'det'``; None infers it from the base loss's package.
        use_sigmoid: must equal the base loss's ``use_sigmoid``; exists because mmdet heads read it
            from the config dict (see above).
        class_weight: must equal the base loss's ``class_weight`` when given; exists because mmdet's
            MaskFormer / Mask2Former heads read it from their ``loss_cls`` config dict.
        loss_name: the key mmseg returns the loss under (unique per head, starting with ``loss_``).
        ignore_index: label excluded from TSD for ``'seg'`` when the caller passes none.
    """

    def __init__(self, base_loss, eta=0.9, k=3, loss_weight=None, task=None, use_sigmoid=None,
                 loss_name='loss_tolerant', ignore_index=255, class_weight=None):
        super().__init__()
        if not 0.0 <= eta <= 1.0:
            raise ValueError(f'eta must lie in [0, 1], got {eta}')
        if k < 2:
            raise ValueError(f'k must be at least 2, got {k}')
        self.base_loss = build_base_loss(base_loss)
        base_name = type(self.base_loss).__name__
        # Custom class channels / activations (e.g. mmdet's SeesawLoss) change what the logits mean.
        if any(getattr(self.base_loss, flag, False) for flag in ('custom_cls_channels', 'custom_activation')):
            raise NotImplementedError(f'TolerantLoss cannot wrap {base_name}: it uses custom class channels')

        self.use_sigmoid = bool(getattr(self.base_loss, 'use_sigmoid', False))
        self.activated = bool(getattr(self.base_loss, 'activated', False))
        if bool(use_sigmoid) != self.use_sigmoid:
            raise ValueError(
                f'TolerantLoss(use_sigmoid={use_sigmoid}) but its base loss {base_name} has use_sigmoid='
                f'{self.use_sigmoid}: set use_sigmoid={self.use_sigmoid} in the TolerantLoss config dict '
                'itself (mmdet heads read it from there to choose their number of class outputs)')
        base_class_weight = getattr(self.base_loss, 'class_weight', None)
        if class_weight is not None and list(class_weight) != list(base_class_weight or []):
            raise ValueError(f'TolerantLoss(class_weight={class_weight}) but its base loss {base_name} has '
                             f'class_weight={base_class_weight}: give both the same')

        package = package_of(self.base_loss)
        self.task = task or TASK_OF_PACKAGE.get(package)
        if self.task not in TASKS:
            raise ValueError(f'task must be one of {TASKS} (cannot infer it for {base_name} from '
                             f'package {package!r}), got {task!r}')

        self.eta = eta
        self.k = k
        self.loss_weight = getattr(self.base_loss, 'loss_weight', 1.0) if loss_weight is None else loss_weight
        self.ignore_index = ignore_index
        if not loss_name.startswith('loss_'):
            raise ValueError(f"loss_name must start with 'loss_' (or it is not optimised), got {loss_name!r}")
        self._loss_name = loss_name

    @property
    def loss_name(self):
        """mmseg's decode heads log each ``loss_decode`` entry under this key."""
        return self._loss_name

    def forward(self, pred, target, weight=None, avg_factor=None, reduction_override=None, **kwargs):
        """Same call as the wrapped loss; extra keyword arguments go to it unchanged."""
        base = self.base_loss(pred, target, weight=weight, avg_factor=avg_factor,
                              reduction_override=reduction_override, **kwargs)
        tsd = self.tsd_term(pred, target, weight, avg_factor, reduction_override, kwargs.get('ignore_index'))
        if tsd.dim() != base.dim():
            raise ValueError(f"reduction 'none': {type(self.base_loss).__name__} returns shape "
                             f'{tuple(base.shape)}, per-sample TSD is {tuple(tsd.shape)}')
        return self.eta * base + (1.0 - self.eta) * self.loss_weight * tsd

    def tsd_term(self, pred, target, weight, avg_factor, reduction_override, ignore_index):
        """The reduced TSD term, before ``(1 - eta) * loss_weight``."""
        scores = classes_last(pred)
        if self.activated:  # e.g. mmdet FocalLoss(activated=True) is given probabilities
            probs = scores
        else:
            probs = scores.sigmoid() if self.use_sigmoid else scores.softmax(dim=-1)
        valid = None
        if self.task == 'seg':
            valid = target != (self.ignore_index if ignore_index is None else ignore_index)
        elif self.task == 'det':
            if not self.use_sigmoid:
                probs = probs[..., :-1]  # drop the background column (the last one in mmdet)
            num_classes = probs.size(-1)
            if isinstance(target, (tuple, list)):  # QualityFocalLoss: (labels, IoU scores); labels decide
                target = target[0]
            if target.dim() == pred.dim():  # one-hot / score targets: a positive has a foreground entry
                valid = (target[..., :num_classes] > 0).any(dim=-1)
            else:
                valid = (target >= 0) & (target < num_classes)
        per_sample = top_score_difference(probs, self.k)
        if weight is not None and weight.numel() != per_sample.numel():
            raise ValueError(f'TolerantLoss takes one weight per sample (shape {tuple(per_sample.shape)}), '
                             f'got {tuple(weight.shape)}')
        return reduce_per_sample(per_sample, valid, weight, avg_factor, reduction_override or 'mean')


def build_base_loss(cfg):
    """Builds the wrapped loss: an unprefixed type resolves under the current default scope, a prefixed
    one (``'mmdet.FocalLoss'``) in its own package's registry (mmengine imports it on demand)."""
    if isinstance(cfg, nn.Module):
        return cfg
    try:
        return MODELS.build(cfg)
    except (KeyError, RuntimeError) as error:
        raise type(error)(
            f'{error}\nTolerantLoss: if base_loss type {cfg.get("type")!r} was not found, give its package '
            "scope (e.g. type='mmdet.FocalLoss') or set the config's default_scope") from error
