"""OFDLoss against the partial L2 distance of Heo et al. (arXiv 1904.01866) written per element in float64."""
import pytest
import torch

from mmdistkd.models.losses import OFDLoss


def reference_ofd(feat_S, feat_T, loss_weight=1.0, mul_factor=1000.):
    """The paper's ``d_p``: 0 where ``S <= T <= 0``, else ``(T - S)^2``; summed, over ``N * mul_factor``."""
    total = 0
    for s, t in zip(feat_S.flatten(), feat_T.flatten()):
        if not (s <= t and t <= 0):
            total = total + (t - s)**2
    return loss_weight * total / feat_S.shape[0] / mul_factor


def margin_clipped(feature, margin):
    """The teacher as OFDTeacherConnector gives it: ``max(feature, margin)`` per channel (margin < 0)."""
    return torch.maximum(feature, margin.reshape(1, -1, 1, 1))


@pytest.mark.parametrize('kwargs', [dict(), dict(loss_weight=0.25), dict(loss_weight=0.5, mul_factor=10.)])
@pytest.mark.parametrize('batch', [1, 2])
def test_matches_reference_value_and_gradient(kwargs, batch):
    torch.manual_seed(batch)
    feat_S = (torch.randn(batch, 4, 3, 3) * 2).requires_grad_()
    feat_T = margin_clipped(torch.randn(batch, 4, 3, 3) * 2, -torch.rand(4))
    loss = OFDLoss(**kwargs)(feat_S, feat_T)
    loss.backward()
    reference_S = feat_S.detach().double().requires_grad_()
    expected = reference_ofd(reference_S, feat_T.double(), **kwargs)
    expected.backward()
    torch.testing.assert_close(loss.double(), expected.detach(), atol=1e-8, rtol=1e-6)
    torch.testing.assert_close(feat_S.grad.double(), reference_S.grad, atol=1e-9, rtol=1e-5)


def test_student_below_a_negative_teacher_costs_nothing():
    feat_T = torch.tensor([[-0.5, -0.5, 0.5, 0.0]])
    # Below a negative teacher: free; above it, or anywhere against a positive teacher: squared error.
    loss = OFDLoss(mul_factor=1.)(torch.tensor([[-2.0, 0.5, 2.5, -1.0]]), feat_T)
    assert loss.item() == pytest.approx(1.0**2 + 2.0**2)


def test_zero_features_are_finite_and_the_teacher_is_detached():
    feat_S, feat_T = torch.zeros(1, 3, 2, 2, requires_grad=True), torch.zeros(1, 3, 2, 2, requires_grad=True)
    loss = OFDLoss()(feat_S, feat_T)
    loss.backward()
    assert loss.item() == 0 and (feat_S.grad == 0).all() and feat_T.grad is None


def test_half_precision_inputs_compute_in_float32():
    torch.manual_seed(3)
    feat_S, feat_T = torch.randn(2, 8, 4, 4).half(), torch.randn(2, 8, 4, 4).half()
    loss = OFDLoss()(feat_S, feat_T)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss.double(), reference_ofd(feat_S.double(), feat_T.double()), atol=1e-8,
                               rtol=1e-6)


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r'\(2, 32, 8, 8\) and teacher predictions of shape \(2, 64, 8, 8\)'):
        OFDLoss()(torch.randn(2, 32, 8, 8), torch.randn(2, 64, 8, 8))
