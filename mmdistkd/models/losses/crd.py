"""CRD, "Contrastive Representation Distillation" (Tian et al., ICLR 2020, arXiv 1910.10699).

Student and teacher embeddings of the same image are a positive pair, embeddings of other training images
negatives. Negatives come from two memory banks holding one embedding per training image, a momentum average
of past embeddings: the student's bank scores the teacher's embedding and the teacher's bank the student's. A
noise-contrastive estimation (NCE) loss tells each positive from ``neg_num`` negatives.
"""
import math

import torch
import torch.nn.functional as F

from mmdistkd.registry import MODELS

from .base import DistillLoss


def nce_loss(log_scores, noise_ratio, eps):
    """NCE loss (the paper's Eq. 18) of ``(B, 1 + K)`` log scores ``log P``, the positive first:
    ``-(sum_b log(P_b0 / (P_b0 + c)) + sum_{b,k} log(r / (P_bk + c))) / B`` with ``r = noise_ratio`` (``K``
    times the noise probability ``1 / sample_n``) and ``c = r + eps``, in log space (no overflow of ``P``)."""
    log_c = math.log(noise_ratio + eps)
    shifted = log_scores - log_c
    positive = F.logsigmoid(shifted[:, 0])  # log(P / (P + c))
    negative = math.log(noise_ratio) - log_c - F.softplus(shifted[:, 1:])  # log(r / (P + c))
    return -(positive.sum() + negative.sum()) / log_scores.shape[0]


@MODELS.register_module()
class CRDLoss(DistillLoss):
    """``loss_weight * (NCE(student embeddings vs teacher bank) + NCE(teacher embeddings vs student bank))``.

    Inputs: ``s_feats`` and ``t_feats``, ``(B, dim_out)`` embeddings (``CRDConnector``'s L2-normalised linear
    projections of the two models' pooled features), and ``data_samples``, whose ``sample_idx`` (the image's
    index in the training set, ``< sample_n``) addresses the banks. When the samples carry
    ``contrast_sample_idxs`` (``1 + neg_num`` indices, the positive first: MMRazor's ``CRDDataset``), those are the
    contrasted images; otherwise ``neg_num`` negatives are drawn uniformly from the bank with the global torch
    RNG (MMRazor's alias sampler over uniform weights is the same distribution).

    The score of an embedding ``f`` against bank entry ``m`` is ``P = exp(m . f / temperature) / Z`` with ``Z``
    fixed at the first step to ``mean(exp(m . f / temperature)) * sample_n`` over that step's scores, one ``Z``
    per side (MMRazor, and the authors' RepDistiller). After the scores, each image's bank entries become
    ``normalize(momentum * entry + (1 - momentum) * embedding)``. Banks and ``Z`` are buffers, so they are saved
    in and resumed from checkpoints; under distributed training every process keeps its own banks, as MMRazor.

    MMRazor's ``CRDLoss`` (same arguments; RepDistiller's ``nce_k``, ``nce_t``, ``nce_mom`` and ``n_data`` are
    ``neg_num``, ``temperature``, ``momentum`` and ``sample_n``), with one difference: MMRazor stores
    ``loss_weight`` but never applies it (its loss always has weight 1); here it scales the loss, as its CRD
    config (``loss_weight=0.8``) and RepDistiller's CRD runs (``-b 0.8``) intend. The distiller passes the
    batch's ``data_samples`` (``takes_data_samples``): a config does not map them, where MMRazor's maps them from
    a ``ModuleInputs`` recorder on the whole model.

    Config (in a distiller's ``distill_losses``; ``s_feats`` / ``t_feats`` mapped through ``CRDConnector``)::

        loss_crd=dict(type='CRDLoss', loss_weight=0.8, neg_num=16384, sample_n=50000, dim_out=128)
    """

    takes_data_samples = True

    def __init__(self, loss_weight=1.0, temperature=0.07, neg_num=16384, sample_n=50000, dim_out=128, momentum=0.5,
                 eps=1e-7):
        # The teacher's embeddings are not detached: the teacher-side connector trains through this loss.
        super().__init__()
        self.loss_weight = loss_weight
        self.temperature = temperature
        self.neg_num = neg_num
        self.sample_n = sample_n
        self.dim_out = dim_out
        self.momentum = momentum
        self.eps = eps
        # Entries uniform in +-sqrt(3 / dim_out): unit expected squared norm, as RepDistiller starts its banks.
        bound = math.sqrt(3 / dim_out)
        self.register_buffer('memory_S', torch.empty(sample_n, dim_out).uniform_(-bound, bound))
        self.register_buffer('memory_T', torch.empty(sample_n, dim_out).uniform_(-bound, bound))
        # log Z of the student and the teacher side; NaN until the first step sets them.
        self.register_buffer('log_normalizers', torch.full((2, ), math.nan))

    def forward(self, s_feats, t_feats, data_samples):
        feat_S, feat_T = self.embeddings(s_feats, t_feats)
        sample_idx, contrast_idx = self.contrast_indices(data_samples, feat_S.shape[0], feat_S.device)
        # (B, 1 + K, dim_out) bank entries of the contrasted images: copies, so updating the banks below
        # leaves this step's scores alone.
        logits_S = torch.einsum('bkd,bd->bk', self.memory_T[contrast_idx], feat_S) / self.temperature
        logits_T = torch.einsum('bkd,bd->bk', self.memory_S[contrast_idx], feat_T) / self.temperature
        log_normalizers = self.fixed_log_normalizers(logits_S, logits_T)
        noise_ratio = (contrast_idx.shape[1] - 1) / self.sample_n
        loss = (nce_loss(logits_S - log_normalizers[0], noise_ratio, self.eps) +
                nce_loss(logits_T - log_normalizers[1], noise_ratio, self.eps))
        self.update_memory(sample_idx, feat_S, feat_T)
        return self.loss_weight * loss

    def embeddings(self, s_feats, t_feats):
        feat_S, feat_T = s_feats.flatten(1), t_feats.flatten(1)
        if feat_S.shape != (feat_T.shape[0], self.dim_out) or feat_T.shape[1] != self.dim_out:
            raise ValueError(f'CRDLoss(dim_out={self.dim_out}) takes (batch, {self.dim_out}) student and teacher '
                             f'embeddings, got {tuple(s_feats.shape)} and {tuple(t_feats.shape)}: give both '
                             f'CRDConnectors dim_out={self.dim_out}, or set the loss\'s dim_out to theirs')
        return feat_S, feat_T

    def contrast_indices(self, data_samples, batch_size, device):
        """``(B, )`` bank indices of the batch's images and ``(B, 1 + K)`` indices of the contrasted ones (the
        positive first)."""
        if data_samples is None or len(data_samples) != batch_size:
            got = 'no data samples' if data_samples is None else f'{len(data_samples)} data samples'
            raise ValueError(f'CRDLoss needs one data sample per embedding, got {got} for {batch_size} embeddings')
        if any(getattr(sample, 'sample_idx', None) is None for sample in data_samples):
            raise ValueError('CRDLoss needs each data sample\'s sample_idx (its index in the training set, as '
                             'mmengine datasets set it) to address the memory banks')
        sample_idx = torch.stack([torch.as_tensor(sample.sample_idx).reshape(()) for sample in data_samples])
        sample_idx = sample_idx.to(device=device, dtype=torch.long)
        if all(getattr(sample, 'contrast_sample_idxs', None) is not None for sample in data_samples):
            contrast_idx = torch.stack([torch.as_tensor(sample.contrast_sample_idxs) for sample in data_samples])
            contrast_idx = contrast_idx.to(device=device, dtype=torch.long)
            if contrast_idx.shape[1:] != (self.neg_num + 1, ):
                raise ValueError(f'contrast_sample_idxs of shape {tuple(contrast_idx.shape)} for CRDLoss('
                                 f'neg_num={self.neg_num}): give the dataset and the loss the same neg_num')
        else:
            contrast_idx = torch.randint(self.sample_n, (batch_size, self.neg_num + 1), device=device)
            contrast_idx[:, 0] = sample_idx
        # One host sync for both bounds, instead of an index error deep in a CUDA kernel.
        low, high = torch.stack(torch.cat([contrast_idx.flatten(), sample_idx]).aminmax()).tolist()
        if low < 0 or high >= self.sample_n:
            raise ValueError(f'CRDLoss(sample_n={self.sample_n}) got sample indices in [{low}, {high}]: '
                             'set sample_n to the length of the training set')
        return sample_idx, contrast_idx

    @torch.no_grad()
    def fixed_log_normalizers(self, logits_S, logits_T):
        """``log Z`` of both sides: set from this step's scores at the first step, then kept."""
        log_mean_scores = torch.stack(
            [torch.logsumexp(logits.flatten(), 0) - math.log(logits.numel()) for logits in (logits_S, logits_T)])
        first = log_mean_scores + math.log(self.sample_n)
        self.log_normalizers.copy_(torch.where(self.log_normalizers.isnan(), first, self.log_normalizers))
        return self.log_normalizers.clone()

    @torch.no_grad()
    def update_memory(self, sample_idx, feat_S, feat_T):
        for memory, feat in ((self.memory_S, feat_S), (self.memory_T, feat_T)):
            mixed = memory[sample_idx] * self.momentum + feat * (1 - self.momentum)
            # F.normalize: a zero entry stays zero where MMRazor's division gives NaN.
            memory.index_copy_(0, sample_idx, F.normalize(mixed, dim=1))
