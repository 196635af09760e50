"""Linear CKA between a student and a teacher feature map, the similarity that drives DPK's prior ratio.

Two estimators, chosen by what counts as a *sample*:

``token_linear_cka`` (ours): every spatial position of every image is a sample, its channel vector the
features (``X = (B*H*W, Cs)``, ``Y = (B*H*W, Ct)``). Batch-sample CKA is useless at the batch sizes of
detection: with biased HSIC, two centred samples are collinear, so CKA is exactly 1 at B = 2, and it stays
above 0.99 for unrelated features at B = 3..8; the unbiased estimator is undefined below B = 4. Positions
give thousands of samples even at B = 2 and separate related from unrelated features. It is computed in the
feature-space form ``||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F)``, which equals the Gram-matrix form
``tr(KHLH) / sqrt(tr(KHKH) tr(LHLH))`` but costs ``O(samples * C^2)`` instead of ``O(samples^2 * C)``.

``unbiased_hsic_terms`` / ``batch_unbiased_cka`` (the DPK authors'): every image is a sample (its whole
flattened map), with the unbiased HSIC estimator of Song et al. (2012) on Gram matrices with zeroed
diagonals. Undefined (NaN) below 4 images. The authors combine the three HSIC terms differently per task
(see ``mmdistkd.models.losses.dpk``), so the terms are exposed as well as their plain CKA.

All run in float64: the centred sums span many orders of magnitude, and TF32 matmuls would be too coarse.
A constant feature map has no variance and gives NaN; callers must handle it.
"""
import torch


def token_linear_cka(feat_s, feat_t):
    """Linear CKA of ``feat_s (B, Cs, H, W)`` and ``feat_t (B, Ct, H, W)`` (same B, H, W) with
    spatial positions of all images as samples. Returns a 0-dim float64 tensor (NaN if a side is
    constant)."""
    x = feat_s.detach().double().permute(0, 2, 3, 1).flatten(0, 2)
    y = feat_t.detach().double().permute(0, 2, 3, 1).flatten(0, 2)
    x = x - x.mean(0)
    y = y - y.mean(0)
    cross = torch.linalg.matrix_norm(y.T @ x) ** 2
    return cross / (torch.linalg.matrix_norm(x.T @ x) * torch.linalg.matrix_norm(y.T @ y))


def _unbiased_hsic(gram_k, gram_l):
    """Unbiased HSIC (Song et al., 2012) of two Gram matrices, diagonals already zeroed."""
    n = gram_k.shape[0]
    ones = gram_k.new_ones(n)
    trace = (gram_k * gram_l).sum()
    sums = (ones @ gram_k @ ones) * (ones @ gram_l @ ones) / ((n - 1) * (n - 2))
    cross = 2 / (n - 2) * (ones @ gram_k @ gram_l @ ones)
    return (trace + sums - cross) / (n * (n - 3))


def unbiased_hsic_terms(feat_s, feat_t):
    """``(HSIC(K, L), HSIC(K, K), HSIC(L, L))`` with the images as samples: ``K`` and ``L`` are the linear
    Gram matrices of the flattened student and teacher maps (which may differ in every dimension but the
    batch). Three 0-dim float64 tensors; all NaN for fewer than 4 images, where the estimator is undefined."""
    if feat_s.shape[0] < 4:
        nan = feat_s.new_tensor(float('nan'), dtype=torch.float64)
        return nan, nan, nan
    x = feat_s.detach().double().flatten(1)
    y = feat_t.detach().double().flatten(1)
    gram_k = (x @ x.T).fill_diagonal_(0)
    gram_l = (y @ y.T).fill_diagonal_(0)
    return _unbiased_hsic(gram_k, gram_l), _unbiased_hsic(gram_k, gram_k), _unbiased_hsic(gram_l, gram_l)


def batch_unbiased_cka(feat_s, feat_t):
    """Linear CKA with the images as samples, ``HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))`` from
    ``unbiased_hsic_terms``. A 0-dim float64 tensor; NaN for fewer than 4 images."""
    hsic_st, hsic_ss, hsic_tt = unbiased_hsic_terms(feat_s, feat_t)
    return hsic_st / torch.sqrt(hsic_ss * hsic_tt)
