"""ABLoss against the activation-boundary loss of Heo et al. (arXiv 1811.03233) written per element in float64."""
import pytest
import torch

from mmdistkd.models.losses import ABLoss


def reference_ab(feat_S, feat_T, loss_weight=1.0, margin=1.0):
    """Per element: ``(s + m)^2`` if the teacher neuron is off and ``s > -m``, ``(s - m)^2`` if it is on and
    ``s <= m``, else 0; summed, times ``3 / (1000 N)``."""
    total = 0
    for s, t in zip(feat_S.flatten(), feat_T.flatten()):
        if t <= 0 and s > -margin:
            total = total + (s + margin)**2
        elif t > 0 and s <= margin:
            total = total + (s - margin)**2
    return loss_weight * total * 3 / 1000 / feat_S.shape[0]


@pytest.mark.parametrize('kwargs', [dict(), dict(loss_weight=0.125, margin=0.5), dict(margin=2.0)])
@pytest.mark.parametrize('batch', [1, 2])
def test_matches_reference_value_and_gradient(kwargs, batch):
    torch.manual_seed(batch)
    feat_S = (torch.randn(batch, 4, 3, 3) * 1.5).requires_grad_()
    feat_T = torch.randn(batch, 4, 3, 3)
    loss = ABLoss(**kwargs)(feat_S, feat_T)
    loss.backward()
    reference_S = feat_S.detach().double().requires_grad_()
    expected = reference_ab(reference_S, feat_T.double(), **kwargs)
    expected.backward()
    torch.testing.assert_close(loss.double(), expected.detach(), atol=1e-7, rtol=1e-6)
    torch.testing.assert_close(feat_S.grad.double(), reference_S.grad, atol=1e-8, rtol=1e-5)


def test_no_loss_once_the_student_is_beyond_the_margin_on_the_teachers_side():
    feat_T = torch.tensor([[2.0, -1.0, 0.0, 0.3]])
    assert ABLoss()(torch.tensor([[1.5, -1.0, -3.0, 1.0]]), feat_T).item() == 0
    # One element on the wrong side: (0.5 - 1)^2 for the first, scaled by 3 / 1000.
    assert ABLoss()(torch.tensor([[0.5, -1.0, -3.0, 1.0]]), feat_T).item() == pytest.approx(0.25 * 3 / 1000)


def test_zero_features_are_finite_and_the_teacher_is_detached():
    feat_S, feat_T = torch.zeros(2, 3, 2, 2, requires_grad=True), torch.zeros(2, 3, 2, 2, requires_grad=True)
    loss = ABLoss()(feat_S, feat_T)
    loss.backward()
    # Every teacher neuron is off: each of the 24 elements costs (0 + 1)^2; 2 images.
    assert loss.item() == pytest.approx(24 * 3 / 1000 / 2)
    assert torch.isfinite(feat_S.grad).all() and feat_T.grad is None


def test_half_precision_inputs_compute_in_float32():
    torch.manual_seed(3)
    feat_S, feat_T = torch.randn(2, 8, 4, 4).half(), torch.randn(2, 8, 4, 4).half()
    loss = ABLoss()(feat_S, feat_T)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss.double(), reference_ab(feat_S.double(), feat_T.double()), atol=1e-7, rtol=1e-6)


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r'\(2, 512, 7, 7\) and teacher predictions of shape \(2, 2048, 7, 7\)'):
        ABLoss()(torch.randn(2, 512, 7, 7), torch.randn(2, 2048, 7, 7))
