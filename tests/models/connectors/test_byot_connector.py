"""BYOTConnector: (feature, logits) of the shallow classifier against a float64 reference written from the layout
(separable convs with batch-statistics BN written out, bilinear x2 upsampling as an interpolation matrix, sigmoid
attention, average pooling as a block mean)."""
import pytest
import torch
import torch.nn.functional as F

from mmdistkd.models.connectors import BYOTConnector

ARGS = dict(in_channel=4, out_channel=16, num_classes=5, expansion=2, pool_size=2, kernel_size=3, stride=2)


def batch_norm(x, weight, bias, eps=1e-5):
    mean = x.mean((0, 2, 3), keepdim=True)
    var = ((x - mean)**2).mean((0, 2, 3), keepdim=True)
    return (x - mean) / (var + eps).sqrt() * weight.view(1, -1, 1, 1) + bias.view(1, -1, 1, 1)


def sep_conv(x, p, prefix, stride):
    """ReLU, depthwise 3x3 (stride), pointwise, BN; ReLU, grouped 3x3 to the output channels, pointwise, BN."""
    x = F.conv2d(x.clamp(min=0), p[f'{prefix}.conv1.1.weight'], stride=stride, padding=1, groups=x.shape[1])
    x = batch_norm(F.conv2d(x, p[f'{prefix}.conv1.2.weight']), p[f'{prefix}.conv1.3.weight'],
                   p[f'{prefix}.conv1.3.bias'])
    x = F.conv2d(x.clamp(min=0), p[f'{prefix}.conv2.1.weight'], padding=1, groups=x.shape[1])
    return batch_norm(F.conv2d(x, p[f'{prefix}.conv2.2.weight']), p[f'{prefix}.conv2.3.weight'],
                      p[f'{prefix}.conv2.3.bias'])


def bilinear_x2_matrix(size):
    """(2 * size, size) weights of PyTorch's bilinear upsampling by 2 (align_corners=False) along one axis."""
    matrix = torch.zeros(2 * size, size, dtype=torch.float64)
    for i in range(2 * size):
        source = max((i + 0.5) / 2 - 0.5, 0.0)
        low = min(int(source), size - 1)
        high = min(low + 1, size - 1)
        matrix[i, low] += 1 - (source - low)
        matrix[i, high] += source - low
    return matrix


def reference_byot(connector, feature):
    p = {name: value.detach().double() for name, value in connector.named_parameters()}
    x = feature.double()
    a = sep_conv(x, p, 'attention.0', stride=2)
    a = batch_norm(a, p['attention.1.weight'], p['attention.1.bias']).clamp(min=0)
    rows, cols = bilinear_x2_matrix(a.shape[2]), bilinear_x2_matrix(a.shape[3])
    a = torch.einsum('ih,nchw,jw->ncij', rows, a, cols)
    feat = x / (1 + torch.exp(-a))
    feat = sep_conv(feat, p, 'scala.0', stride=2)
    feat = sep_conv(feat, p, 'scala.1', stride=2)
    n, c, h, w = feat.shape
    feat = feat.reshape(n, c, h // 2, 2, w // 2, 2).mean((3, 5)).flatten(1)
    return feat, feat @ p['fc.weight'].T + p['fc.bias']


def test_matches_float64_reference_and_trains_every_parameter():
    torch.manual_seed(0)
    connector = BYOTConnector(**ARGS)
    for module in connector.modules():  # non-trivial BN affine parameters
        if isinstance(module, torch.nn.BatchNorm2d):
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.normal_(0, 0.1)
    feature = torch.randn(3, 8, 8, 8)
    feat, logits = connector(feature)
    expected_feat, expected_logits = reference_byot(connector, feature)
    assert feat.shape == (3, 32) and logits.shape == (3, 5)
    torch.testing.assert_close(feat.double(), expected_feat, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(logits.double(), expected_logits, rtol=1e-4, atol=1e-5)

    ((feat * torch.randn_like(feat)).sum() + (logits * torch.randn_like(logits)).sum()).backward()
    assert not [name for name, p in connector.named_parameters() if p.grad is None or not p.grad.any()]


def test_same_channels_have_no_separable_conv_stage():
    feat, logits = BYOTConnector(in_channel=8, out_channel=8, num_classes=3, expansion=1,
                                 pool_size=4)(torch.randn(2, 8, 4, 4))
    assert feat.shape == (2, 8) and logits.shape == (2, 3)


@pytest.mark.parametrize('args, message', [
    (dict(in_channel=64, out_channel=192), r'power of 2.*in_channel=64, out_channel=192'),
    (dict(in_channel=64, out_channel=512, stride=1), r'stride=1.*set stride=2'),
])
def test_build_errors_say_what_to_change(args, message):
    with pytest.raises(ValueError, match=message):
        BYOTConnector(num_classes=10, **args)


@pytest.mark.parametrize('shape, message', [
    ((2, 4, 8, 8), r'in_channel \* expansion=8.*\(2, 4, 8, 8\)'),
    ((2, 8, 7, 7), r'attention map \(2, 8, 8, 8\).*feature \(2, 8, 7, 7\).*even height and width'),
    ((2, 8, 16, 16), r'\(4, 4\) map.*pool_size=2.*128 values per sample.*expansion = 32: set pool_size=\(4, 4\)'),
])
def test_feature_errors_say_what_to_change(shape, message):
    with pytest.raises(ValueError, match=message):
        BYOTConnector(**ARGS)(torch.randn(shape))
