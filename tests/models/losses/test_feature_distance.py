"""L1Loss and L2Loss against float64 references written per element / per sample, and factor transfer's
pretraining phase (a Paraphraser-like connector on the teacher side) through the ConfigurableDistiller."""
import math

import numpy as np
import pytest
import torch
from torch import nn

from mmdistkd.models.distillers.configurable_distiller import ConfigurableDistiller
from mmdistkd.models.losses import L1Loss, L2Loss


def value_and_grad(loss, feat_S, feat_T):
    """The loss on float32 copies and the gradient it sends to the student."""
    feat_S = feat_S.detach().float().clone().requires_grad_()
    value = loss(feat_S, feat_T.float())
    value.sum().backward()
    return value.detach().double(), feat_S.grad.double()


def reference_value_and_grad(reference, feat_S, feat_T):
    feat_S = feat_S.detach().double().clone().requires_grad_()
    value = reference(feat_S, feat_T.double())
    value.sum().backward()
    return value.detach(), feat_S.grad


def reference_l1(feat_S, feat_T, loss_weight, reduction):
    elementwise = torch.stack([abs(s - t) for s, t in zip(feat_S.flatten(), feat_T.flatten())]).reshape(feat_S.shape)
    total = sum(elementwise.flatten())
    return loss_weight * {'none': elementwise, 'sum': total, 'mean': total / feat_S.numel()}[reduction]


def reference_l2(feat_S, feat_T, loss_weight=1.0, normalize=True, mult=1.0, div_element=False, dist=False):
    """One sample at a time: ``mult * x / sqrt(sum x^2)`` per flattened sample, then squared differences."""
    squared = 0
    for s, t in zip(feat_S, feat_T):
        s, t = s.flatten(), t.flatten()
        if normalize:
            s, t = mult * s / torch.sqrt((s * s).sum()), mult * t / torch.sqrt((t * t).sum())
        squared = squared + sum((a - b)**2 for a, b in zip(s, t))
    if dist:
        return loss_weight * torch.sqrt(squared)
    return loss_weight * squared / (feat_S.numel() if div_element else feat_S.shape[0])


@pytest.mark.parametrize('kwargs, reduction', [
    (dict(loss_weight=2.0), 'mean'),
    (dict(reduction='sum'), 'sum'),
    (dict(reduction='none', loss_weight=-1.0), 'none'),
    (dict(size_average=False), 'sum'),  # torch's deprecated arguments override reduction
    (dict(reduce=False, reduction='sum'), 'none'),
    (dict(size_average=True, reduce=True, reduction='sum'), 'mean'),
])
def test_l1_matches_reference(kwargs, reduction):
    torch.manual_seed(0)
    feat_S, feat_T = torch.randn(3, 4, 2, 2), torch.randn(3, 4, 2, 2)
    value, grad = value_and_grad(L1Loss(**kwargs), feat_S, feat_T)
    loss_weight = kwargs.get('loss_weight', 1.0)
    expected, expected_grad = reference_value_and_grad(
        lambda s, t: reference_l1(s, t, loss_weight, reduction), feat_S, feat_T)
    torch.testing.assert_close(value, expected, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(grad, expected_grad, atol=1e-7, rtol=1e-6)


@pytest.mark.parametrize('kwargs', [
    dict(),
    dict(loss_weight=10, mult=3.0),
    dict(normalize=True, div_element=True),
    dict(normalize=False),
    dict(normalize=False, div_element=True, loss_weight=0.5),
    dict(normalize=False, dist=True, loss_weight=0.03),
    dict(normalize=True, dist=True),
])
def test_l2_matches_reference(kwargs):
    torch.manual_seed(1)
    feat_S, feat_T = torch.randn(2, 3, 4, 4) * 2, torch.randn(2, 3, 4, 4) + 1
    value, grad = value_and_grad(L2Loss(**kwargs), feat_S, feat_T)
    expected, expected_grad = reference_value_and_grad(lambda s, t: reference_l2(s, t, **kwargs), feat_S, feat_T)
    torch.testing.assert_close(value, expected, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(grad, expected_grad, atol=1e-7, rtol=1e-4)


def test_l2_dist_is_torch_dist_of_byot_features():
    torch.manual_seed(2)
    feat_S, feat_T = torch.randn(4, 512), torch.randn(4, 512)
    value = L2Loss(normalize=False, dist=True, loss_weight=0.03)(feat_S, feat_T)
    expected = 0.03 * np.linalg.norm(feat_S.double().numpy() - feat_T.double().numpy())
    assert value.item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize('loss', [L1Loss(), L2Loss()], ids=['L1Loss', 'L2Loss'])
def test_gradient_reaches_the_teacher_side_unless_detached(loss):
    """MMRazor's L1Loss / L2Loss never detach: DFAD's generator and FT's Paraphraser train through t_feature."""
    feat_S, feat_T = torch.randn(2, 5, requires_grad=True), torch.randn(2, 5, requires_grad=True)
    loss(feat_S, feat_T).backward()
    assert feat_T.grad is not None and feat_T.grad.abs().sum() > 0
    detaching = type(loss)(teacher_detach=True)
    feat_T.grad = None
    detaching(feat_S, feat_T).backward()
    assert feat_T.grad is None


@pytest.mark.parametrize('kwargs', [dict(), dict(dist=True), dict(normalize=False, dist=True), dict(mult=2.0)])
@pytest.mark.parametrize('batch', [1, 2])
def test_l2_degenerate_inputs_stay_finite(kwargs, batch):
    """All-zero samples (MMRazor: NaN from 0 / 0) and identical features (sqrt's gradient at 0)."""
    for feat_S, feat_T in [(torch.zeros(batch, 3, 2, 2), torch.randn(batch, 3, 2, 2)),
                           (torch.zeros(batch, 3, 2, 2), torch.zeros(batch, 3, 2, 2)),
                           (torch.ones(batch, 3, 2, 2), torch.ones(batch, 3, 2, 2))]:
        feat_S = feat_S.requires_grad_()
        value = L2Loss(**kwargs)(feat_S, feat_T)
        value.backward()
        assert torch.isfinite(value) and torch.isfinite(feat_S.grad).all()


@pytest.mark.parametrize('batch', [1, 2])
def test_l2_zero_sample_normalises_to_zero(batch):
    """Its squared distance to a teacher sample of norm ``mult`` is ``mult^2``; the mean over samples too."""
    feat_S = torch.zeros(batch, 3, requires_grad=True)
    value = L2Loss(mult=2.0)(feat_S, torch.randn(batch, 3))
    value.backward()
    assert value.item() == pytest.approx(4.0, rel=1e-6)
    assert (feat_S.grad == 0).all()


@pytest.mark.parametrize('loss', [L1Loss(), L2Loss(), L2Loss(normalize=False, dist=True)])
def test_half_precision_inputs_compute_in_float32(loss):
    torch.manual_seed(3)
    feat_S, feat_T = torch.randn(2, 64).half(), torch.randn(2, 64).half()
    value = loss(feat_S, feat_T)
    assert value.dtype == torch.float32
    torch.testing.assert_close(value, loss(feat_S.float(), feat_T.float()))


def test_l1_refuses_reductions_it_cannot_compute():
    with pytest.raises(ValueError, match="one of \\('none', 'mean', 'sum'\\), got 'batchmean'"):
        L1Loss(reduction='batchmean')


@pytest.mark.parametrize('loss', [L1Loss(), L2Loss(), L2Loss(normalize=False)])
def test_shape_mismatch_names_both_shapes(loss):
    with pytest.raises(ValueError, match=r'shape \(2, 512\) and teacher predictions of shape \(2, 2048\)'):
        loss(torch.randn(2, 512), torch.randn(2, 2048))


class TeacherNet(nn.Module):

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 6, 3, padding=1)
        self.layer = nn.Conv2d(6, 6, 3, padding=1)

    def forward(self, x):
        return self.layer(self.stem(x).relu())


def test_factor_transfer_pretrain_trains_the_teacher_side_connector():
    """MMRazor's FT pretrain mapping: s_feature = teacher feature x, t_feature = connector(x) (its Paraphraser),
    teacher frozen (run under no_grad). The only trainable part is the connector, reached through t_feature;
    a few steps make it reconstruct x (up to scale, L2Loss normalises)."""
    torch.manual_seed(4)
    teacher = TeacherNet().requires_grad_(False)
    feature = dict(type='mmdistkd.ModuleOutputs', source='layer')
    distiller = ConfigurableDistiller(
        teacher_recorders=dict(bb_s4=feature),
        connectors=dict(loss_s4_tfeat=dict(type=nn.Conv2d, in_channels=6, out_channels=6, kernel_size=3,
                                           padding=1)),
        distill_losses=dict(loss_s4_pretrain=dict(type='mmdistkd.L2Loss', loss_weight=1.0)),
        loss_forward_mappings=dict(loss_s4_pretrain=dict(
            s_feature=dict(from_student=False, recorder='bb_s4'),
            t_feature=dict(from_student=False, recorder='bb_s4', connector='loss_s4_tfeat'))))
    distiller.prepare_from_teacher(teacher)
    paraphraser = distiller.connectors['loss_s4_tfeat']
    optimizer = torch.optim.Adam(paraphraser.parameters(), lr=0.01)
    images = torch.randn(4, 3, 8, 8)
    losses = []
    for _ in range(30):
        with distiller.teacher_recorders, torch.no_grad():
            teacher(images)
        loss = distiller.compute_distill_losses()['loss_s4_pretrain']
        optimizer.zero_grad()
        loss.backward()
        assert paraphraser.weight.grad.abs().sum() > 0
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]

    # Detaching t_feature (our losses' usual default) would leave this phase with nothing to train.
    distiller.distill_losses['loss_s4_pretrain'].teacher_detach = True
    with distiller.teacher_recorders, torch.no_grad():
        teacher(images)
    assert not distiller.compute_distill_losses()['loss_s4_pretrain'].requires_grad


def test_l2_compares_features_differing_in_singleton_dims_sample_by_sample():
    """BYOT: a connector's (N, C) feature against the teacher's pooled (N, C, 1, 1), as per-sample distances
    (MMRazor broadcasts them to (N, C, N, C))."""
    s_feature = torch.randn(3, 5, dtype=torch.float64)
    t_feature = torch.randn(3, 5, 1, 1, dtype=torch.float64)
    loss = L2Loss(normalize=False, dist=True)(s_feature, t_feature)
    expected = math.sqrt(sum((s_feature[n, c] - t_feature[n, c, 0, 0]).item()**2 for n in range(3) for c in range(5)))
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match=r'\(3, 5\).*\(3, 4, 1, 1\)'):
        L2Loss()(s_feature, torch.randn(3, 4, 1, 1))
