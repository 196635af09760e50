"""FTLoss against factor transfer's loss (Kim et al., arXiv 1802.04977, ``p = 1``) written per sample in float64."""
import numpy as np
import pytest
import torch

from mmdistkd.models.losses import FTLoss


def reference_ft(feat_S, feat_T, loss_weight=1.0):
    """``mean |F_S / ||F_S|| - F_T / ||F_T|||`` with each sample's factor flattened and normalised by its norm."""
    total, count = 0, 0
    for s, t in zip(feat_S, feat_T):
        s, t = s.flatten(), t.flatten()
        s, t = s / torch.sqrt((s * s).sum()), t / torch.sqrt((t * t).sum())
        total = total + sum(abs(a - b) for a, b in zip(s, t))
        count += s.numel()
    return loss_weight * total / count


@pytest.mark.parametrize('batch', [1, 2])
def test_matches_reference_value_and_gradient(batch):
    torch.manual_seed(batch)
    feat_S = torch.randn(batch, 6, 3, 3).requires_grad_()
    feat_T = torch.randn(batch, 6, 3, 3) * 4 + 1
    loss = FTLoss(loss_weight=2.0)(feat_S, feat_T)
    loss.backward()
    reference_S = feat_S.detach().double().requires_grad_()
    expected = reference_ft(reference_S, feat_T.double(), loss_weight=2.0)
    expected.backward()
    torch.testing.assert_close(loss.double(), expected.detach(), atol=1e-7, rtol=1e-5)
    torch.testing.assert_close(feat_S.grad.double(), reference_S.grad, atol=1e-7, rtol=1e-4)


def test_factors_are_compared_up_to_scale_and_the_teacher_is_detached():
    rng = np.random.default_rng(0)
    factor = torch.from_numpy(rng.normal(size=(2, 4, 2, 2))).float()
    feat_T = (factor * 3).requires_grad_()
    loss = FTLoss()((factor * 0.1).requires_grad_(), feat_T)
    loss.backward()
    assert loss.item() == pytest.approx(0, abs=1e-7) and feat_T.grad is None


@pytest.mark.parametrize('batch', [1, 2])
def test_zero_factors_stay_finite(batch):
    feat_S = torch.zeros(batch, 4, 2, 2, requires_grad=True)
    feat_T = torch.randn(batch, 4, 2, 2)
    loss = FTLoss()(feat_S, feat_T)
    loss.backward()
    # The zero factor normalises to zero: the loss is the mean |unit teacher factor|.
    expected = np.mean([np.abs(t.numpy().ravel() / np.linalg.norm(t.numpy())).mean() for t in feat_T])
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert (feat_S.grad == 0).all()


def test_half_precision_inputs_compute_in_float32():
    torch.manual_seed(3)
    feat_S, feat_T = torch.randn(2, 16, 4, 4).half(), torch.randn(2, 16, 4, 4).half()
    loss = FTLoss()(feat_S, feat_T)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss.double(), reference_ft(feat_S.double(), feat_T.double()), atol=1e-7, rtol=1e-5)


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r'\(2, 512, 4, 4\) and teacher predictions of shape \(2, 1024, 4, 4\)'):
        FTLoss()(torch.randn(2, 512, 4, 4), torch.randn(2, 1024, 4, 4))
