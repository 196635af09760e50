"""TorchFunctionalConnector / TorchNNConnector: the named function or layer, against float64 formulas written out,
and the error for a name outside MMRazor's lists."""
import pytest
import torch

from mmdistkd.models.connectors import TorchFunctionalConnector, TorchNNConnector


def test_functional_average_pooling_is_the_block_mean():
    feature = torch.randn(2, 3, 8, 8)
    pooled = TorchFunctionalConnector(function_name='avg_pool2d', func_args=dict(kernel_size=4))(feature)
    expected = torch.empty(2, 3, 2, 2, dtype=torch.float64)
    for i in range(2):
        for j in range(2):
            expected[:, :, i, j] = feature.double()[:, :, 4 * i:4 * i + 4, 4 * j:4 * j + 4].sum((2, 3)) / 16
    torch.testing.assert_close(pooled.double(), expected)


def test_functional_normalize_takes_its_arguments():
    feature = torch.tensor([[3.0, 4.0]])
    normalised = TorchFunctionalConnector(function_name='normalize', func_args=dict(dim=1))(feature)
    torch.testing.assert_close(normalised, torch.tensor([[0.6, 0.8]]))


def test_nn_linear_is_trained_and_checkpointed():
    torch.manual_seed(0)
    connector = TorchNNConnector(module_name='Linear', module_args=dict(in_features=4, out_features=3))
    feature = torch.randn(5, 4)
    output = connector(feature)
    weight, bias = connector.func.weight.double(), connector.func.bias.double()
    expected = torch.stack([torch.stack([sum(weight[o, i] * x[i] for i in range(4)) + bias[o] for o in range(3)])
                            for x in feature.double()])
    torch.testing.assert_close(output.double(), expected)
    output.sum().backward()
    assert connector.func.weight.grad is not None and set(connector.state_dict()) == {'func.weight', 'func.bias'}


@pytest.mark.parametrize('connector_type, arg_name, name', [
    (TorchFunctionalConnector, 'function_name', 'gelu'),
    (TorchFunctionalConnector, 'function_name', None),
    (TorchNNConnector, 'module_name', 'LayerNorm'),
])
def test_unknown_name_lists_the_allowed_ones(connector_type, arg_name, name):
    message = rf"{arg_name}={name!r} is not one of the allowed names .*'(avg_pool2d|Conv2d)'"
    with pytest.raises(ValueError, match=message):
        connector_type(**{arg_name: name})
