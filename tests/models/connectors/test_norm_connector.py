"""NormConnector: the normalisation layer of norm_cfg against float64 formulas written out."""
import pytest
import torch

from mmdistkd.models.connectors import NormConnector


def test_batch_norm_standardises_each_channel_over_the_batch():
    torch.manual_seed(0)
    feature = torch.randn(4, 3, 5, 5) * 3 + 1
    output = NormConnector(in_channels=3, norm_cfg=dict(type='BN', affine=False))(feature)
    x = feature.double()
    for c in range(3):
        values = x[:, c].flatten()
        mean = values.sum() / values.numel()
        var = ((values - mean)**2).sum() / values.numel()
        torch.testing.assert_close(output[:, c].double(), (x[:, c] - mean) / (var + 1e-5).sqrt(), rtol=1e-5,
                                   atol=1e-5)


def test_group_norm_is_trained():
    torch.manual_seed(1)
    connector = NormConnector(in_channels=4, norm_cfg=dict(type='GN', num_groups=2))
    feature = torch.randn(2, 4, 3, 3)
    output = connector(feature)
    groups = feature.double().view(2, 2, -1)
    expected = ((groups - groups.mean(2, keepdim=True)) / (groups.var(2, unbiased=False, keepdim=True) + 1e-5).sqrt())
    torch.testing.assert_close(output.double(), expected.view(2, 4, 3, 3), rtol=1e-5, atol=1e-5)
    (output * torch.randn_like(output)).sum().backward()
    assert connector.norm.weight.grad.any() and connector.norm.bias.grad.any()


def test_wrong_in_channels_name_the_fix():
    with pytest.raises(ValueError, match=r'in_channels=8.*\(1, 4, 2, 2\).*set in_channels=4'):
        NormConnector(8, dict(type='BN'))(torch.randn(1, 4, 2, 2))
