"""ConvModuleConnector: conv / BN / activation in MMRazor's configurations against a float64 reference with the
convolution as a sum over kernel offsets and batch-statistics BN written out."""
import pytest
import torch

from mmdistkd.models.connectors import ConvModuleConnector


def reference_conv(x, weight, bias, padding):
    """Cross-correlation as a sum over kernel offsets of channel products of shifted windows."""
    x = torch.nn.functional.pad(x, (padding, ) * 4)
    k = weight.shape[2]
    h, w = x.shape[2] - k + 1, x.shape[3] - k + 1
    out = sum(torch.einsum('nchw,oc->nohw', x[:, :, i:i + h, j:j + w], weight[:, :, i, j])
              for i in range(k) for j in range(k))
    return out if bias is None else out + bias.view(1, -1, 1, 1)


def reference_bn(x, weight, bias, eps=1e-5):
    mean = x.mean((0, 2, 3), keepdim=True)
    var = ((x - mean)**2).mean((0, 2, 3), keepdim=True)
    return (x - mean) / (var + eps).sqrt() * weight.view(1, -1, 1, 1) + bias.view(1, -1, 1, 1)


@pytest.mark.parametrize('args, with_bn, with_relu', [
    (dict(norm_cfg=dict(type='BN'), act_cfg=None), True, False),  # OFD's and AB's student connectors
    (dict(norm_cfg=dict(type='BN')), True, True),  # FitNets'
    (dict(kernel_size=3, padding=1), False, True),  # the defaults: conv with bias, then ReLU
])
def test_matches_float64_reference_and_trains_every_parameter(args, with_bn, with_relu):
    torch.manual_seed(0)
    connector = ConvModuleConnector(in_channel=3, out_channel=5, **args)
    if with_bn:
        connector.conv_module.bn.weight.data.uniform_(0.5, 1.5)
        connector.conv_module.bn.bias.data.normal_()
    feature = torch.randn(4, 3, 6, 6)
    output = connector(feature)
    p = {name: value.detach().double() for name, value in connector.named_parameters()}
    expected = reference_conv(feature.double(), p['conv_module.conv.weight'], p.get('conv_module.conv.bias'),
                              args.get('padding', 0))
    if with_bn:
        expected = reference_bn(expected, p['conv_module.bn.weight'], p['conv_module.bn.bias'])
    if with_relu:
        expected = expected.clamp(min=0)
    torch.testing.assert_close(output.double(), expected, rtol=1e-5, atol=1e-5)
    (output * torch.randn_like(output)).sum().backward()
    assert not [name for name, p in connector.named_parameters() if p.grad is None or not p.grad.any()]


def test_wrong_in_channel_names_the_fix():
    with pytest.raises(ValueError, match=r'in_channel=32.*\(2, 16, 8, 8\).*set in_channel=16'):
        ConvModuleConnector(in_channel=32, out_channel=64)(torch.randn(2, 16, 8, 8))
