import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmdistkd.models.losses.kd import KLDivergence


def numpy_softmax_kl(logits_S, logits_T, tau):
    """Elementwise ``p_T * log(p_T / p_S)`` in float64, softmax over axis 1."""
    def softmax(z):
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    p_S = softmax(logits_S.detach().double().numpy() / tau)
    p_T = softmax(logits_T.detach().double().numpy() / tau)
    return p_T * np.log(p_T / p_S)


def numpy_binary_kl(logits_S, logits_T, tau):
    """Elementwise binary KL between ``sigmoid(T / tau)`` and ``sigmoid(S / tau)`` in float64."""
    p_S = 1 / (1 + np.exp(-logits_S.detach().double().numpy() / tau))
    p_T = 1 / (1 + np.exp(-logits_T.detach().double().numpy() / tau))
    return p_T * np.log(p_T / p_S) + (1 - p_T) * np.log((1 - p_T) / (1 - p_S))


@pytest.mark.filterwarnings('ignore:reduction:UserWarning')  # F.kl_div's note on its own 'mean'
@pytest.mark.parametrize('reduction', ['none', 'batchmean', 'sum', 'mean'])
def test_2d_matches_mmrazor_kl_div(reduction):
    torch.manual_seed(0)
    logits_S, logits_T = torch.randn(6, 5, requires_grad=True), torch.randn(6, 5)
    loss = KLDivergence(tau=3.0, reduction=reduction, loss_weight=0.7)(logits_S, logits_T)
    # MMRazor's formula, written with F.kl_div on probabilities (not log-probabilities).
    expected = 0.7 * 9.0 * F.kl_div(
        F.log_softmax(logits_S.double() / 3, dim=1), F.softmax(logits_T.double() / 3, dim=1), reduction=reduction)
    assert loss.shape == expected.shape
    torch.testing.assert_close(loss.double(), expected, atol=1e-6, rtol=1e-6)


def test_2d_gradient_matches_reference():
    torch.manual_seed(1)
    logits_S, logits_T = torch.randn(4, 7, requires_grad=True), torch.randn(4, 7)
    KLDivergence(tau=2.0)(logits_S, logits_T).backward()
    reference_S = logits_S.detach().double().requires_grad_()
    log_p_S = reference_S / 2 - torch.logsumexp(reference_S / 2, dim=1, keepdim=True)
    p_T = torch.exp(logits_T.double() / 2) / torch.exp(logits_T.double() / 2).sum(1, keepdim=True)
    (4.0 * (p_T * (p_T.log() - log_p_S)).sum() / 4).backward()
    torch.testing.assert_close(logits_S.grad.double(), reference_S.grad, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize('reduction', ['none', 'batchmean', 'sum', 'mean'])
def test_dense_every_pixel_is_a_sample(reduction):
    torch.manual_seed(2)
    logits_S, logits_T = torch.randn(2, 4, 3, 5), torch.randn(2, 4, 3, 5)
    loss = KLDivergence(tau=2.0, reduction=reduction)(logits_S, logits_T)
    kl = 4.0 * numpy_softmax_kl(logits_S, logits_T, tau=2.0)
    expected = {'none': kl, 'sum': kl.sum(), 'mean': kl.mean(), 'batchmean': kl.sum() / (2 * 3 * 5)}[reduction]
    np.testing.assert_allclose(loss.numpy(), expected, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize('reduction', ['none', 'batchmean', 'sum', 'mean'])
def test_sigmoid_binary_kl(reduction):
    torch.manual_seed(3)
    logits_S, logits_T = torch.randn(2, 6, 3, 4) * 3, torch.randn(2, 6, 3, 4) * 3  # e.g. A=2 anchors, C=3
    loss = KLDivergence(tau=1.5, reduction=reduction, sigmoid=True)(logits_S, logits_T)
    kl = 1.5**2 * numpy_binary_kl(logits_S, logits_T, tau=1.5)
    # batchmean: summed over all channels (anchors x classes), averaged over the N*H*W positions.
    expected = {'none': kl, 'sum': kl.sum(), 'mean': kl.mean(), 'batchmean': kl.sum() / (2 * 3 * 4)}[reduction]
    np.testing.assert_allclose(loss.numpy(), expected, atol=1e-6, rtol=1e-6)


def test_list_of_levels_is_summed():
    torch.manual_seed(4)
    levels_S = [torch.randn(2, 3, 4, 4), torch.randn(2, 3, 2, 2)]
    levels_T = [torch.randn(2, 3, 4, 4), torch.randn(2, 3, 2, 2)]
    kd = KLDivergence(sigmoid=True)
    torch.testing.assert_close(kd(levels_S, levels_T), kd(levels_S[0], levels_T[0]) + kd(levels_S[1], levels_T[1]))
    per_level = KLDivergence(reduction='none')(levels_S, levels_T)
    assert [level.shape for level in per_level] == [level.shape for level in levels_S]


def test_teacher_detached_and_identical_inputs_give_zero():
    logits_S = torch.randn(3, 4, requires_grad=True)
    logits_T = logits_S.detach().clone().requires_grad_()
    loss = KLDivergence()(logits_S, logits_T)
    loss.backward()
    assert abs(loss.item()) < 1e-7
    assert logits_T.grad is None
    KLDivergence(teacher_detach=False)(logits_S, logits_T * 2).backward()
    assert logits_T.grad is not None


def test_fp32_under_autocast():
    logits_S, logits_T = torch.randn(4, 10).bfloat16(), torch.randn(4, 10).bfloat16()
    for sigmoid in (False, True):
        with torch.autocast('cpu', dtype=torch.bfloat16):
            loss = KLDivergence(sigmoid=sigmoid)(logits_S, logits_T)
        assert loss.dtype == torch.float32
        torch.testing.assert_close(loss, KLDivergence(sigmoid=sigmoid)(logits_S.float(), logits_T.float()))


def test_extreme_logits_stay_finite():
    logits_S = torch.tensor([[100.0, -100.0, 0.0]], requires_grad=True)
    logits_T = torch.tensor([[-100.0, 100.0, 0.0]])
    for sigmoid in (False, True):
        loss = KLDivergence(sigmoid=sigmoid)(logits_S, logits_T)
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(logits_S.grad).all()


def test_errors():
    with pytest.raises(ValueError, match=r'\(2, 3\).*\(2, 4\)'):
        KLDivergence()(torch.randn(2, 3), torch.randn(2, 4))
    with pytest.raises(ValueError, match='levels'):
        KLDivergence()([torch.randn(2, 3)], [torch.randn(2, 3)] * 2)
    with pytest.raises(ValueError, match='reduction'):
        KLDivergence(reduction='avg')
