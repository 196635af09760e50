"""PKDLoss against a float64 per-channel standardisation written out with ``Tensor.std``, and against the Pearson
correlation it stands for (PKD, Cao et al., arXiv 2207.02039)."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmdistkd.models.losses import PKDLoss


def reference_pkd(preds_S, preds_T, loss_weight):
    """``loss_weight * sum_levels mean((norm(S) - norm(T))^2) / 2``, standardising one channel at a time."""
    total = 0
    for pred_S, pred_T in zip(preds_S, preds_T):
        squared_error = 0
        for c in range(pred_S.shape[1]):
            values_S, values_T = pred_S[:, c].flatten(), pred_T[:, c].flatten()
            norm_S = (values_S - values_S.mean()) / (values_S.std() + 1e-6)
            norm_T = (values_T - values_T.mean()) / (values_T.std() + 1e-6)
            squared_error = squared_error + ((norm_S - norm_T)**2).sum()
        total = total + squared_error / pred_S.numel() / 2
    return loss_weight * total


def test_matches_float64_reference_on_levels():
    torch.manual_seed(0)
    levels_S = [(torch.randn(2, 4, 6, 5) * 3 + 1).requires_grad_(), torch.randn(2, 4, 3, 3).requires_grad_()]
    levels_T = [torch.randn(2, 4, 6, 5) * 10 - 4, torch.randn(2, 4, 3, 3)]
    loss = PKDLoss(loss_weight=6)(levels_S, levels_T)
    loss.backward()
    reference_S = [level.detach().double().requires_grad_() for level in levels_S]
    expected = reference_pkd(reference_S, [level.double() for level in levels_T], 6)
    expected.backward()
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss.double(), expected.detach(), atol=1e-6, rtol=1e-5)
    for level, reference in zip(levels_S, reference_S):
        torch.testing.assert_close(level.grad.double(), reference.grad, atol=1e-7, rtol=1e-4)


def test_is_one_minus_pearson_correlation():
    """Half the MSE of standardised features is ``(M - 1) / M * (1 - r)`` per channel (``M`` values)."""
    rng = np.random.default_rng(0)
    feat_S = rng.normal(size=(3, 2, 8, 8))
    feat_T = 0.5 * feat_S + rng.normal(size=feat_S.shape)
    values = feat_S.shape[0] * feat_S.shape[2] * feat_S.shape[3]
    correlations = [np.corrcoef(feat_S[:, c].ravel(), feat_T[:, c].ravel())[0, 1] for c in range(feat_S.shape[1])]
    expected = np.mean([(values - 1) / values * (1 - r) for r in correlations])
    loss = PKDLoss()(torch.from_numpy(feat_S), torch.from_numpy(feat_T))
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_teacher_is_detached_and_scale_does_not_matter():
    torch.manual_seed(1)
    feat_S, feat_T = torch.randn(2, 3, 4, 4).requires_grad_(), torch.randn(2, 3, 4, 4).requires_grad_()
    loss = PKDLoss()(feat_S, feat_T)
    loss.backward()
    assert feat_T.grad is None
    torch.testing.assert_close(PKDLoss()(feat_S.detach() * 100 + 3, feat_T * 0.01 - 5), loss.detach(), atol=1e-5,
                               rtol=1e-4)


@pytest.mark.parametrize('resize_stu', [True, False])
@pytest.mark.parametrize('size_S', [(8, 8), (4, 6), (4, 8)])  # both sides, only the width, only the height
def test_resizes_the_student_or_the_teacher(resize_stu, size_S):
    torch.manual_seed(2)
    feat_S, feat_T = torch.randn(2, 3, *size_S), torch.randn(2, 3, 4, 8)
    loss = PKDLoss(resize_stu=resize_stu)(feat_S, feat_T)
    if resize_stu:
        feat_S = F.interpolate(feat_S, size=(4, 8), mode='bilinear', align_corners=False)
    else:
        feat_T = F.interpolate(feat_T, size=size_S, mode='bilinear', align_corners=False)
    expected = reference_pkd([feat_S.double()], [feat_T.double()], 1.0)
    torch.testing.assert_close(loss.double(), expected, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize('feat_S, feat_T', [
    (torch.full((2, 3, 4, 4), 5.0), torch.randn(2, 3, 4, 4)),  # a constant student: zero variance
    (torch.randn(2, 3, 4, 4), torch.full((2, 3, 4, 4), -1.0)),  # a constant teacher
    (torch.zeros(2, 3, 4, 4), torch.zeros(2, 3, 4, 4)),
    (torch.randn(1, 3, 1, 1), torch.randn(1, 3, 1, 1)),  # one value per channel
])
def test_degenerate_features_give_finite_loss_and_gradients(feat_S, feat_T):
    feat_S = feat_S.clone().requires_grad_()
    loss = PKDLoss()(feat_S, feat_T)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(feat_S.grad).all()
    if feat_S.numel() > feat_S.shape[1]:  # several values per channel: the reference is defined
        expected = reference_pkd([feat_S.detach().double()], [feat_T.double()], 1.0)
        torch.testing.assert_close(loss.double(), expected, atol=1e-6, rtol=1e-5)


def test_half_precision_inputs_compute_in_float32():
    torch.manual_seed(3)
    feat_S, feat_T = torch.randn(2, 3, 4, 4).half(), torch.randn(2, 3, 4, 4).half()
    loss = PKDLoss()(feat_S, feat_T)
    assert loss.dtype == torch.float32
    expected = reference_pkd([feat_S.double()], [feat_T.double()], 1.0)
    torch.testing.assert_close(loss.double(), expected, atol=1e-6, rtol=1e-5)


def test_different_channels_name_both_shapes():
    with pytest.raises(ValueError, match=r'\(2, 3, 4, 4\).*\(2, 5, 4, 4\)'):
        PKDLoss()(torch.randn(2, 3, 4, 4), torch.randn(2, 5, 4, 4))
