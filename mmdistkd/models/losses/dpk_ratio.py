"""The DPK authors' prior-ratio rules, one per task (zongdaoming/dpk @7f66025), for ``DPKLoss(pi_from=...)``
(:mod:`.dpk`): each maps a student and a teacher feature batch to ``(pi, CKA)`` from the unbiased batch HSIC terms."""
import math

from .cka import unbiased_hsic_terms


def authors_imagenet_ratio(feat_s, feat_t):
    """The DPK authors' ImageNet rule: ``(pi, CKA)`` with the unbiased batch CKA; NaN, CKA <= 0.1 or
    CKA >= 1 give pi = 0.8, else ``max(1 - CKA, 0.1)``."""
    hsic_st, hsic_ss, hsic_tt = unbiased_hsic_terms(feat_s, feat_t)
    cka = float(hsic_st / (hsic_ss.sqrt() * hsic_tt.sqrt()))
    return (0.8 if not math.isfinite(cka) or cka <= 0.1 or cka >= 1 else max(1 - cka, 0.1)), cka


def authors_cifar_ratio(feat_s, feat_t):
    """The DPK authors' CIFAR rule: ``(pi, CKA)`` with ``CKA = (|HSIC(K,L)| + 1e-5) / (sqrt(HSIC(K,K) + 1e-5)
    sqrt(HSIC(L,L) + 1e-5))``; NaN, CKA <= 0.1 or CKA >= 1 give pi = 0.9, else ``max(1 - CKA, 0.15)``."""
    hsic_st, hsic_ss, hsic_tt = unbiased_hsic_terms(feat_s, feat_t)
    cka = float((hsic_st.abs() + 1e-5) / ((hsic_ss + 1e-5).sqrt() * (hsic_tt + 1e-5).sqrt()))
    return (0.9 if not math.isfinite(cka) or cka <= 0.1 or cka >= 1 else max(1 - cka, 0.15)), cka


def authors_detection_ratio(feat_s, feat_t):
    """The DPK authors' detection rule: ``(pi, CKA)`` with ``CKA = (|HSIC(K,L)| + 1e-5) /
    sqrt((|HSIC(K,K)| + 1e-5)(|HSIC(L,L)| + 1e-5))`` and ``pi = 1 - CKA``; NaN gives 0.5, pi >= 1 gives
    0.85, pi <= 0 gives 0.15."""
    hsic_st, hsic_ss, hsic_tt = unbiased_hsic_terms(feat_s, feat_t)
    cka = float((hsic_st.abs() + 1e-5) / ((hsic_ss.abs() + 1e-5) * (hsic_tt.abs() + 1e-5)).sqrt())
    ratio = 1 - cka
    if not math.isfinite(ratio):
        return 0.5, cka
    return (0.85 if ratio >= 1 else 0.15 if ratio <= 0 else ratio), cka


AUTHORS_RATIOS = {
    'authors_imagenet': authors_imagenet_ratio,
    'authors_cifar': authors_cifar_ratio,
    'authors_detection': authors_detection_ratio,
}
DEFAULT_PI_RANGE = (0.1, 0.85)
