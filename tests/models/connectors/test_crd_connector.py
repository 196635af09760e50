"""CRDConnector: the CRD embedding (linear, then L2 normalisation per sample) against a float64 reference that
normalises row by row."""
import pytest
import torch

from mmdistkd.models.connectors import CRDConnector


def reference_embedding(feature, weight, bias):
    """``v / ||v||`` per sample, ``v = W flatten(x) + b``, with the norm summed element by element."""
    rows = []
    for sample in feature.flatten(1):
        v = weight @ sample + bias
        norm = sum(value**2 for value in v)**0.5
        rows.append(v / norm)
    return torch.stack(rows)


def test_matches_float64_reference_with_gradients():
    torch.manual_seed(0)
    connector = CRDConnector(dim_in=2 * 3 * 3, dim_out=5)
    feature = torch.randn(4, 2, 3, 3, requires_grad=True)
    embedding = connector(feature)
    weights = torch.randn(4, 5)
    (embedding * weights).sum().backward()

    feature64 = feature.detach().double().requires_grad_()
    weight64 = connector.linear.weight.detach().double().requires_grad_()
    bias64 = connector.linear.bias.detach().double().requires_grad_()
    expected = reference_embedding(feature64, weight64, bias64)
    (expected * weights.double()).sum().backward()

    assert embedding.shape == (4, 5)
    torch.testing.assert_close(embedding.double(), expected.detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(connector.linear.weight.grad.double(), weight64.grad, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(connector.linear.bias.grad.double(), bias64.grad, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(feature.grad.double(), feature64.grad, rtol=1e-4, atol=1e-6)


def test_zero_embedding_stays_zero_without_nan():
    connector = CRDConnector(dim_in=3, dim_out=2)
    torch.nn.init.zeros_(connector.linear.weight)
    torch.nn.init.zeros_(connector.linear.bias)
    feature = torch.randn(2, 3, requires_grad=True)
    embedding = connector(feature)
    embedding.sum().backward()
    assert torch.equal(embedding, torch.zeros(2, 2))
    assert torch.isfinite(connector.linear.weight.grad).all() and torch.isfinite(feature.grad).all()


def test_half_precision_features_are_normalised_in_float32():
    torch.manual_seed(1)
    connector = CRDConnector(dim_in=64, dim_out=16).half()
    # Squares of these values overflow float16 (max 65504) when summed.
    feature = (torch.randn(2, 64) * 50).half()
    embedding = connector(feature)
    assert embedding.dtype == torch.float32
    expected = reference_embedding(feature.double(), connector.linear.weight.double(), connector.linear.bias.double())
    # The projection itself runs in float16.
    torch.testing.assert_close(embedding.double(), expected, rtol=0, atol=2e-3)
    torch.testing.assert_close(embedding.norm(dim=1), torch.ones(2))


def test_wrong_dim_in_names_the_fix():
    with pytest.raises(ValueError, match=r'dim_in=2048.*\(2, 512, 1, 1\).*set dim_in=512'):
        CRDConnector(dim_in=2048)(torch.randn(2, 512, 1, 1))
