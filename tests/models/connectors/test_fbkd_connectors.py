"""FBKDStudentConnector / FBKDTeacherConnector: attention masks, pooled features and the non-local relation
against a float64 reference written from the formulas (softmax as exp / sum, the non-local block as explicit
products, its double max-pooling as one max over blocks), and their tuples through FBKDLoss."""
import pytest
import torch
import torch.nn.functional as F

from mmdistkd.models.connectors import FBKDStudentConnector, FBKDTeacherConnector
from mmdistkd.models.losses import FBKDLoss

ARGS = dict(in_channels=8, reduction=2, mode='dot_product', sub_sample=True, maxpool_stride=2, spatial_T=0.5,
            channel_T=0.7)


def reference_masks(x, spatial_T, channel_T):
    n, c, h, w = x.shape
    spatial = x.abs().sum(1) / c  # (n, h, w)
    spatial_mask = h * w * (spatial / spatial_T).exp() / (spatial / spatial_T).exp().sum((1, 2), keepdim=True)
    channel = x.abs().sum((2, 3)) / (h * w)  # (n, c)
    channel_mask = c * (channel / channel_T).exp() / (channel / channel_T).exp().sum(1, keepdim=True)
    return spatial_mask.unsqueeze(1), channel_mask.view(n, c, 1, 1)


def reference_relation(block, x):
    """``x + BN(W_out (theta^T phi / Q) g)`` of a dot-product non-local block in eval mode, whose ``g`` and ``phi``
    see the 1x1 projections max-pooled over 4x4 blocks (mmcv's pool by 2, then ``maxpool_stride=2``)."""
    p = {name: value.detach().double() for name, value in block.named_parameters()}
    bn = block.conv_out.bn
    n, c, h, w = x.shape

    def project(name):  # a 1x1 conv as a product over channels: (n, k, h, w)
        return torch.einsum('kc,nchw->nkhw', p[f'{name}.weight'].flatten(1), x) + p[f'{name}.bias'].view(1, -1, 1, 1)

    def pool_4x4(t):  # (n, k, h, w) -> (n, k, h/4 * w/4)
        k = t.shape[1]
        return t.reshape(n, k, h // 4, 4, w // 4, 4).amax((3, 5)).flatten(2)

    theta = project('theta.conv').flatten(2)  # (n, k, hw)
    phi = pool_4x4(project('phi.0.0.conv'))  # (n, k, q)
    g = pool_4x4(project('g.0.0.conv'))  # (n, k, q)
    pairwise = torch.einsum('nkp,nkq->npq', theta, phi) / phi.shape[2]
    y = torch.einsum('npq,nkq->nkp', pairwise, g)
    out = torch.einsum('ck,nkp->ncp', p['conv_out.conv.weight'].flatten(1), y).view(n, c, h, w)
    scale = p['conv_out.bn.weight'] / (bn.running_var.double() + bn.eps).sqrt()
    out = (out - bn.running_mean.double().view(1, -1, 1, 1)) * scale.view(1, -1, 1, 1)
    return x + out + p['conv_out.bn.bias'].view(1, -1, 1, 1)


def randomise_non_local_output(block):
    """Random BN statistics and affine weights: zeros_init would make the relation the identity."""
    bn = block.conv_out.bn
    for tensor in (bn.weight, bn.bias, bn.running_mean):
        tensor.data.normal_()
    bn.running_var.data.uniform_(0.5, 2)


def test_student_tuple_matches_float64_reference_with_input_gradient():
    torch.manual_seed(0)
    connector = FBKDStudentConnector(**ARGS).eval()
    randomise_non_local_output(connector.student_non_local)
    x = torch.randn(2, 8, 8, 8, requires_grad=True)
    outputs = connector(x)
    weights = [torch.randn_like(o) for o in outputs]
    sum((o * wt).sum() for o, wt in zip(outputs, weights)).backward()

    x64 = x.detach().double().requires_grad_()
    p = {name: value.detach().double() for name, value in connector.named_parameters()}
    spatial_mask, channel_mask = reference_masks(x64, 0.5, 0.7)
    channel_pool = torch.einsum('dc,nc->nd', p['channel_wise_adaptation.weight'], x64.sum((2, 3)) / 64)
    spatial_pool = F.conv2d(x64.sum(1, keepdim=True) / 8, p['spatial_wise_adaptation.weight'],
                            p['spatial_wise_adaptation.bias'], padding=1)
    relation = reference_relation(connector.student_non_local, x64)

    def conv1x1(name, t):
        return torch.einsum('dc,nchw->ndhw', p[f'{name}.weight'].flatten(1), t) + p[f'{name}.bias'].view(1, -1, 1, 1)

    expected = (spatial_mask, channel_mask, channel_pool + p['channel_wise_adaptation.bias'], spatial_pool,
                conv1x1('non_local_adaptation', relation), conv1x1('adaptation_layers', x64))
    sum((e * wt.double()).sum() for e, wt in zip(expected, weights)).backward()
    assert [o.shape for o in outputs] == [(2, 1, 8, 8), (2, 8, 1, 1), (2, 8), (2, 1, 8, 8), (2, 8, 8, 8), (2, 8, 8, 8)]
    for output, reference in zip(outputs, expected):
        torch.testing.assert_close(output.double(), reference.detach(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(x.grad.double(), x64.grad, rtol=1e-4, atol=1e-5)


def test_teacher_tuple_matches_float64_reference():
    torch.manual_seed(1)
    connector = FBKDTeacherConnector(**ARGS).eval()
    randomise_non_local_output(connector.teacher_non_local)
    x = torch.randn(2, 8, 8, 4)
    outputs = connector(x)
    x64 = x.double()
    expected = (*reference_masks(x64, 0.5, 0.7), x64.sum(1, keepdim=True) / 8,
                reference_relation(connector.teacher_non_local, x64), x64)
    assert len(outputs) == 5
    for output, reference in zip(outputs, expected):
        torch.testing.assert_close(output.double(), reference, rtol=1e-5, atol=1e-5)


def test_fbkd_loss_trains_both_connectors():
    torch.manual_seed(2)
    student, teacher = FBKDStudentConnector(**ARGS, zeros_init=False), FBKDTeacherConnector(**ARGS, zeros_init=False)
    loss = FBKDLoss()(student(torch.randn(2, 8, 8, 8)), teacher(torch.randn(2, 8, 8, 8)))
    loss.backward()
    assert torch.isfinite(loss)
    for connector in (student, teacher):
        no_gradient = [name for name, p in connector.named_parameters() if p.grad is None or not p.grad.any()]
        assert not no_gradient


def test_masks_average_one_and_stay_finite_on_a_zero_feature():
    outputs = FBKDTeacherConnector(**ARGS)(torch.zeros(1, 8, 4, 4))
    torch.testing.assert_close(outputs[0], torch.ones(1, 1, 4, 4))
    torch.testing.assert_close(outputs[1], torch.ones(1, 8, 1, 1))
    assert all(torch.isfinite(o).all() for o in outputs)


@pytest.mark.parametrize('connector_type', [FBKDStudentConnector, FBKDTeacherConnector])
def test_wrong_in_channels_name_the_fix(connector_type):
    with pytest.raises(ValueError, match=r'in_channels=256.*\(1, 64, 8, 8\).*set in_channels=64'):
        connector_type(in_channels=256)(torch.randn(1, 64, 8, 8))


@pytest.mark.parametrize('mode', ['gaussian', 'embedded_gaussian', 'concatenation'])
def test_other_non_local_modes_with_sub_sampling(mode):
    # In gaussian mode MMRazor pools g and phi to different grids and fails; here both are pooled alike.
    args = dict(ARGS, mode=mode, zeros_init=False)
    relation = FBKDTeacherConnector(**args)(torch.randn(2, 8, 8, 8))[3]
    relation_adapt = FBKDStudentConnector(**args)(torch.randn(2, 8, 8, 8))[4]
    assert relation.shape == relation_adapt.shape == (2, 8, 8, 8)
    assert torch.isfinite(relation).all() and torch.isfinite(relation_adapt).all()
