"""DAFL's generator losses, "Data-Free Learning of Student Networks" (Chen et al., ICCV 2019, arXiv 1904.01186).

The generator is trained so that the teacher, fed its images, responds as to real data: confident one-hot
predictions (``OnehotLikeLoss``), every class equally often over the batch (``InformationEntropyLoss``) and
strong features (``ActivationLoss``). The losses read only the teacher's outputs, and the generator learns
through them: nothing is detached (``teacher_inputs`` is empty), the "student" of these losses is the generator.
They are the authors' code's formulas, which MMRazor keeps (log10, mean absolute activation).
"""
import torch
import torch.distributed as dist
import torch.nn.functional as F

from mmdistkd.registry import MODELS

from .base import DistillLoss

ACTIVATION_NORMS = ('abs', 'norm')


class AllGatherRows(torch.autograd.Function):
    """Every rank's rows (the same shape on every rank) concatenated in rank order. Backward sums, over the
    ranks, the gradients their losses send to this rank's rows (as MMRazor's ``GatherTensors``)."""

    @staticmethod
    def forward(ctx, rows):
        gathered = [torch.empty_like(rows) for _ in range(dist.get_world_size())]
        dist.all_gather(gathered, rows.contiguous())
        return torch.cat(gathered)

    @staticmethod
    def backward(ctx, grad):
        grad = grad.contiguous()
        dist.all_reduce(grad)
        return grad.chunk(dist.get_world_size())[dist.get_rank()]


def check_class_scores(loss, preds_T):
    if preds_T.dim() != 2:
        raise ValueError(f'{type(loss).__name__} takes (N, C) class scores of the teacher, got shape '
                         f'{tuple(preds_T.shape)}: record the teacher head\'s fc')


@MODELS.register_module()
class OnehotLikeLoss(DistillLoss):
    """``loss_weight * CE(preds_T, argmax_c preds_T)``: small when every prediction is confident.

    Config (MMRazor's ``dafl_logits_resnet34_resnet18_8xb256_cifar10``, in ``generator_distiller``)::

        loss_res34_oh=dict(type='OnehotLikeLoss', loss_weight=0.05)
    """

    def __init__(self, loss_weight=1.0):
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, preds_T):
        check_class_scores(self, preds_T)
        return self.loss_weight * F.cross_entropy(preds_T, preds_T.argmax(1))


@MODELS.register_module()
class InformationEntropyLoss(DistillLoss):
    """``loss_weight * sum_c p_c log10 p_c`` with ``p = mean_i softmax(preds_T_i)``, the batch's class
    frequencies: minimising it maximises their entropy, i.e. balances the classes.

    ``gather=True`` computes ``p`` over the whole distributed batch (every rank must hold the same number of
    samples); the gradient of every rank's loss reaches every rank's samples, as MMRazor's ``GatherTensors``.

    Config::

        loss_res34_ie=dict(type='InformationEntropyLoss', loss_weight=5)
    """

    def __init__(self, gather=True, loss_weight=1.0):
        super().__init__()
        self.gather = gather
        self.loss_weight = loss_weight

    def forward(self, preds_T):
        check_class_scores(self, preds_T)
        if self.gather and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            preds_T = AllGatherRows.apply(preds_T)
        # log p from log-softmaxes: a class no sample predicts gives 0 * finite, where log(p) would give 0 * -inf.
        log_class_freq = preds_T.log_softmax(1).logsumexp(0) - torch.log(preds_T.new_tensor(len(preds_T)))
        return self.loss_weight * (log_class_freq.exp() * log_class_freq).sum() / torch.log(preds_T.new_tensor(10.))


@MODELS.register_module()
class ActivationLoss(DistillLoss):
    """``-loss_weight * mean |feat_T|`` (``norm_type='abs'``) or ``-loss_weight * ||feat_T||_2`` over the whole
    batch (``norm_type='norm'``): small when the teacher's features are strong. The DAFL paper divides the
    per-sample L1 norm by the batch size; ``'abs'`` (the authors' code) also divides it by the feature size.

    Config::

        loss_res34_ac=dict(type='ActivationLoss', loss_weight=0.01)  # feat_T <- the teacher's neck.gap output
    """

    def __init__(self, loss_weight=1.0, norm_type='abs'):
        super().__init__()
        if norm_type not in ACTIVATION_NORMS:
            raise ValueError(f'norm_type must be one of {ACTIVATION_NORMS}, got {norm_type!r}')
        self.loss_weight = loss_weight
        self.norm_type = norm_type

    def forward(self, feat_T):
        if not torch.is_tensor(feat_T):
            raise TypeError(f'ActivationLoss takes one feature tensor, got a {type(feat_T).__name__}: record a '
                            'module that returns a tensor (e.g. neck.gap, not neck) or pick one with data_idx')
        strength = feat_T.abs().mean() if self.norm_type == 'abs' else feat_T.norm()
        return -self.loss_weight * strength
