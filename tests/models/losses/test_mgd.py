"""MGDLoss against the MGD paper's distillation loss (Yang et al., arXiv 2205.01529) summed element by element in
float64."""
import pytest
import torch

from mmdistkd.models.losses import MGDLoss


def reference_mgd(generated_S, feat_T, alpha_mgd):
    """``alpha_mgd * sum_{n,c,h,w} (G(S) - T)^2 / N``."""
    total = 0
    for value_S, value_T in zip(generated_S.flatten(), feat_T.flatten()):
        total = total + (value_S - value_T)**2
    return alpha_mgd * total / generated_S.shape[0]


def test_matches_float64_reference_and_detaches_the_teacher():
    torch.manual_seed(0)
    generated_S = (torch.randn(2, 3, 4, 5) * 20).requires_grad_()
    feat_T = (torch.randn(2, 3, 4, 5) * 20).requires_grad_()
    loss = MGDLoss(alpha_mgd=2e-5)(generated_S, feat_T)
    loss.backward()
    reference_S = generated_S.detach().double().requires_grad_()
    expected = reference_mgd(reference_S, feat_T.detach().double(), 2e-5)
    expected.backward()
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss.double(), expected.detach(), atol=1e-7, rtol=1e-5)
    torch.testing.assert_close(generated_S.grad.double(), reference_S.grad, atol=1e-9, rtol=1e-5)
    assert feat_T.grad is None


@pytest.mark.parametrize('generated_S, feat_T', [
    (torch.zeros(2, 3, 4, 4), torch.zeros(2, 3, 4, 4)),
    (torch.full((1, 3, 1, 1), 2.0), torch.full((1, 3, 1, 1), -1.0)),  # one image, one position
])
def test_degenerate_features(generated_S, feat_T):
    generated_S = generated_S.clone().requires_grad_()
    loss = MGDLoss(alpha_mgd=1.0)(generated_S, feat_T)
    loss.backward()
    torch.testing.assert_close(loss.double(), reference_mgd(generated_S.detach().double(), feat_T.double(), 1.0))
    assert torch.isfinite(generated_S.grad).all()


def test_half_precision_inputs_compute_in_float32():
    torch.manual_seed(1)
    # Large enough that the squared sum overflows float16 (max 65504).
    generated_S, feat_T = (torch.randn(2, 8, 8, 8) * 100).half(), (torch.randn(2, 8, 8, 8) * 100).half()
    loss = MGDLoss(alpha_mgd=1.0)(generated_S, feat_T)
    assert loss.dtype == torch.float32
    expected = reference_mgd(generated_S.double(), feat_T.double(), 1.0)
    torch.testing.assert_close(loss.double(), expected, rtol=1e-5, atol=0)


def test_different_shapes_name_both():
    with pytest.raises(ValueError, match=r'\(2, 3, 4, 4\).*\(2, 3, 8, 8\)'):
        MGDLoss()(torch.randn(2, 3, 4, 4), torch.randn(2, 3, 8, 8))
