"""ChannelWiseDivergence against the CWD paper's loss (Shu et al., arXiv 2011.13256) written out per channel in
float64."""

import pytest
import torch

from mmdistkd.models.losses import ChannelWiseDivergence


def reference_cwd(preds_S, preds_T, tau, loss_weight):
    """``loss_weight * tau^2 / (N * C) * sum_{n,c} sum_i p_T,i * log(p_T,i / p_S,i)``, one channel at a time."""
    num_images, channels = preds_S.shape[:2]
    total = 0
    for n in range(num_images):
        for c in range(channels):
            exp_S, exp_T = torch.exp(preds_S[n, c].flatten() / tau), torch.exp(preds_T[n, c].flatten() / tau)
            p_S, p_T = exp_S / exp_S.sum(), exp_T / exp_T.sum()
            total = total + sum(p_T[i] * torch.log(p_T[i] / p_S[i]) if p_T[i] > 0 else 0 for i in range(p_T.numel()))
    return loss_weight * tau**2 * total / (num_images * channels)


def check_against_reference(loss_module, preds_S, preds_T):
    preds_S = preds_S.clone().requires_grad_()
    preds_T = preds_T.clone().requires_grad_()
    loss = loss_module(preds_S, preds_T)
    loss.backward()
    reference_S = preds_S.detach().double().requires_grad_()
    expected = reference_cwd(reference_S, preds_T.detach().double(), loss_module.tau, loss_module.loss_weight)
    expected.backward()
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss.double(), expected.detach(), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(preds_S.grad.double(), reference_S.grad, atol=1e-7, rtol=1e-4)
    assert preds_T.grad is None  # the teacher is detached


@pytest.mark.parametrize('tau', [1.0, 4.0])
def test_matches_float64_reference(tau):
    torch.manual_seed(0)
    check_against_reference(ChannelWiseDivergence(tau=tau, loss_weight=5),
                            torch.randn(2, 3, 4, 5) * 3, torch.randn(2, 3, 4, 5) * 3)


def test_levels_are_summed():
    torch.manual_seed(1)
    levels_S = [torch.randn(2, 3, 4, 4), torch.randn(2, 3, 2, 2)]
    levels_T = [torch.randn(2, 3, 4, 4), torch.randn(2, 3, 2, 2)]
    loss = ChannelWiseDivergence(tau=2.0)(levels_S, levels_T)
    expected = sum(reference_cwd(s.double(), t.double(), 2.0, 1.0) for s, t in zip(levels_S, levels_T))
    torch.testing.assert_close(loss.double(), expected, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize('preds_S, preds_T', [
    (torch.full((2, 3, 4, 4), 7.0), torch.full((2, 3, 4, 4), -2.0)),  # constant maps: uniform distributions
    (torch.zeros(2, 3, 4, 4), torch.zeros(2, 3, 4, 4)),
    (torch.randn(1, 3, 1, 1), torch.randn(1, 3, 1, 1)),  # one image, one position: a single-point distribution
])
def test_degenerate_maps_give_zero_and_finite_gradients(preds_S, preds_T):
    preds_S = preds_S.clone().requires_grad_()
    loss = ChannelWiseDivergence(loss_weight=10)(preds_S, preds_T)
    loss.backward()
    assert abs(loss.item()) < 1e-6
    assert torch.isfinite(preds_S.grad).all()


def test_extreme_logits_stay_finite():
    preds_S = torch.randn(2, 3, 4, 4) * 1e4
    preds_S.requires_grad_()
    loss = ChannelWiseDivergence()(preds_S, torch.randn(2, 3, 4, 4) * 1e4)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(preds_S.grad).all()


def test_half_precision_inputs_compute_in_float32():
    torch.manual_seed(2)
    preds_S, preds_T = torch.randn(2, 3, 4, 4).half(), torch.randn(2, 3, 4, 4).half()
    loss = ChannelWiseDivergence()(preds_S, preds_T)
    assert loss.dtype == torch.float32
    expected = reference_cwd(preds_S.double(), preds_T.double(), 1.0, 1.0)
    torch.testing.assert_close(loss.double(), expected, atol=1e-6, rtol=1e-5)


def test_different_channels_name_both_shapes():
    with pytest.raises(ValueError, match=r'\(2, 3, 4, 4\).*\(2, 5, 4, 4\)'):
        ChannelWiseDivergence()(torch.randn(2, 3, 4, 4), torch.randn(2, 5, 4, 4))
