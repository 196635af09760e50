"""ATLoss against the attention-transfer loss (Zagoruyko and Komodakis, arXiv 1612.03928) written per image and
position in float64."""
import pytest
import torch

from mmdistkd.models.losses import ATLoss


def reference_attention(feature):
    """Per image: ``a_p = sum_c x_cp^2 / C`` at every position ``p``, divided by ``sqrt(sum_p a_p^2)``."""
    maps = []
    for image in feature:
        channels = image.shape[0]
        attention = [sum(image[c].flatten()[p]**2 for c in range(channels)) / channels
                     for p in range(image[0].numel())]
        norm = torch.sqrt(sum(a**2 for a in attention))
        maps.append([a / norm for a in attention])
    return maps


def reference_at(feat_S, feat_T, loss_weight=1.0):
    maps_S, maps_T = reference_attention(feat_S), reference_attention(feat_T)
    squares = [(s - t)**2 for image_S, image_T in zip(maps_S, maps_T) for s, t in zip(image_S, image_T)]
    return loss_weight * sum(squares) / len(squares)


@pytest.mark.parametrize('batch', [1, 2])
def test_matches_reference_with_different_channel_counts(batch):
    torch.manual_seed(batch)
    feat_S = torch.randn(batch, 3, 4, 3).requires_grad_()
    feat_T = torch.randn(batch, 8, 4, 3) * 5
    loss = ATLoss(loss_weight=250.0)(feat_S, feat_T)
    loss.backward()
    reference_S = feat_S.detach().double().requires_grad_()
    expected = reference_at(reference_S, feat_T.double(), loss_weight=250.0)
    expected.backward()
    torch.testing.assert_close(loss.double(), expected.detach(), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(feat_S.grad.double(), reference_S.grad, atol=1e-6, rtol=1e-4)


def test_attention_ignores_the_feature_scale_and_the_teacher_is_detached():
    torch.manual_seed(3)
    feat_S, feat_T = torch.randn(2, 4, 5, 5, requires_grad=True), torch.randn(2, 6, 5, 5, requires_grad=True)
    loss = ATLoss()(feat_S, feat_T)
    loss.backward()
    assert feat_T.grad is None
    torch.testing.assert_close(ATLoss()(feat_S.detach() * 7, feat_T), loss.detach())


@pytest.mark.parametrize('batch', [1, 2])
def test_zero_features_give_finite_loss_and_gradient(batch):
    feat_S = torch.zeros(batch, 3, 4, 4, requires_grad=True)
    loss = ATLoss()(feat_S, torch.zeros(batch, 3, 4, 4))
    loss.backward()
    assert loss.item() == 0 and (feat_S.grad == 0).all()
    # Against a teacher: the zero map differs by the teacher's unit map, (sum_p a_p^2 = 1) / (H W) per image.
    feat_S.grad = None
    loss = ATLoss()(feat_S, torch.randn(batch, 5, 4, 4))
    loss.backward()
    assert loss.item() == pytest.approx(1 / 16, rel=1e-5) and torch.isfinite(feat_S.grad).all()


def test_half_precision_inputs_compute_in_float32():
    torch.manual_seed(4)
    feat_S, feat_T = torch.randn(2, 4, 3, 3).half(), torch.randn(2, 4, 3, 3).half()
    loss = ATLoss()(feat_S, feat_T)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss.double(), reference_at(feat_S.double(), feat_T.double()), atol=1e-7,
                               rtol=1e-5)


@pytest.mark.parametrize('shape_T', [(2, 4, 8, 8), (3, 4, 4, 4)])
def test_resolution_or_batch_mismatch_names_both_shapes(shape_T):
    with pytest.raises(ValueError, match=r'got student \(2, 4, 4, 4\) and teacher \(\d, 4, \d, \d\)'):
        ATLoss()(torch.randn(2, 4, 4, 4), torch.randn(*shape_T))
