import numpy as np
import pytest
import torch

from mmdistkd.models.losses.kd_soft_ce import KDSoftCELoss


def numpy_soft_ce(logits_S, logits_T, tau):
    """Per-sample ``-sum_c q_c log p_c`` with tempered softmaxes, in float64 NumPy."""
    s, t = logits_S.detach().double().numpy() / tau, logits_T.detach().double().numpy() / tau
    log_p_S = s - s.max(-1, keepdims=True) - np.log(np.exp(s - s.max(-1, keepdims=True)).sum(-1, keepdims=True))
    q_T = np.exp(t - t.max(-1, keepdims=True))
    q_T /= q_T.sum(-1, keepdims=True)
    return torch.from_numpy(-(q_T * log_p_S).sum(-1))


def reference_gradient(logits_S, logits_T, tau, sample_weights):
    """d/dS of ``sum_i w_i CE_i``: ``w_i (softmax(S_i / tau) - softmax(T_i / tau)) / tau``, in float64."""
    p_S = torch.softmax(logits_S.detach().double() / tau, -1)
    p_T = torch.softmax(logits_T.detach().double() / tau, -1)
    return sample_weights[..., None] * (p_S - p_T) / tau


def random_logits(shape=(6, 5), seed=0):
    generator = torch.Generator().manual_seed(seed)
    return ((3 * torch.randn(shape, generator=generator)).requires_grad_(),
            (3 * torch.randn(shape, generator=generator)).requires_grad_())


@pytest.mark.parametrize('reduction', ['mean', 'sum', 'none', None])
@pytest.mark.parametrize('weighted', [False, True])
def test_value_and_student_gradient_match_float64_reference(reduction, weighted):
    logits_S, logits_T = random_logits()
    weight = torch.linspace(0.5, 2.0, 6) if weighted else None
    loss = KDSoftCELoss(tau=3.0, reduction=reduction, loss_weight=0.5)(logits_S, logits_T, weight)
    per_sample = 0.5 * 9 * numpy_soft_ce(logits_S, logits_T, 3.0) * (1 if weight is None else weight.double())
    expected = {'mean': per_sample.mean(), 'sum': per_sample.sum()}.get(reduction, per_sample)
    torch.testing.assert_close(loss.double(), expected, rtol=1e-5, atol=1e-6)
    # The gradient of the reduced loss: d loss / d CE_i is the per-sample factor below.
    factor = 0.5 * 9 * (torch.ones(6, dtype=torch.float64) if weight is None else weight.double())
    if reduction == 'mean':
        factor = factor / 6
    loss.sum().backward()
    torch.testing.assert_close(logits_S.grad.double(), reference_gradient(logits_S, logits_T, 3.0, factor),
                               rtol=1e-5, atol=1e-6)
    assert logits_T.grad is None


def test_avg_factor_and_reduction_override_follow_mmpretrains_soft_cross_entropy():
    logits_S, logits_T = random_logits()
    per_sample = 4 * numpy_soft_ce(logits_S, logits_T, 2.0)
    loss = KDSoftCELoss(tau=2.0)
    torch.testing.assert_close(loss(logits_S, logits_T, avg_factor=4).double(), per_sample.sum() / 4)
    torch.testing.assert_close(loss(logits_S, logits_T, avg_factor=4, reduction_override='none').double(),
                               per_sample)
    torch.testing.assert_close(loss(logits_S, logits_T, reduction_override='sum').double(), per_sample.sum())
    with pytest.raises(ValueError, match='avg_factor'):
        loss(logits_S, logits_T, avg_factor=4, reduction_override='sum')


def test_without_temperature_square():
    logits_S, logits_T = random_logits(seed=1)
    loss = KDSoftCELoss(tau=4.0, mult_tem_square=False)(logits_S, logits_T)
    loss.backward()
    torch.testing.assert_close(loss.double(), numpy_soft_ce(logits_S, logits_T, 4.0).mean(), rtol=1e-5, atol=1e-6)
    factor = torch.full((6, ), 1 / 6, dtype=torch.float64)
    torch.testing.assert_close(logits_S.grad.double(), reference_gradient(logits_S, logits_T, 4.0, factor),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('case', ['constant', 'saturated', 'single_sample', 'one_class'])
def test_degenerate_inputs_give_finite_values_and_gradients(case):
    shape = {'constant': (3, 4), 'saturated': (2, 3), 'single_sample': (1, 4), 'one_class': (3, 1)}[case]
    logits_S, logits_T = random_logits(shape)
    if case == 'constant':
        logits_S, logits_T = torch.zeros(shape, requires_grad=True), torch.zeros(shape)
    elif case == 'saturated':
        logits_S = torch.tensor([[1e4, 0, -1e4], [0, 0, 5e3]], requires_grad=True)
        logits_T = torch.tensor([[-1e4, 0, 1e4], [0, 0, 5e3]])
    loss = KDSoftCELoss(tau=2.0)(logits_S, logits_T)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits_S.grad).all()
    if case != 'saturated':
        torch.testing.assert_close(loss.double(), 4 * numpy_soft_ce(logits_S, logits_T, 2.0).mean(),
                                   rtol=1e-5, atol=1e-6)


def test_half_precision_inputs_are_computed_in_float32():
    logits_S, logits_T = random_logits()
    half_S, half_T = logits_S.detach().half(), logits_T.detach().half()
    loss = KDSoftCELoss(tau=2.0)(half_S, half_T)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss.double(), 4 * numpy_soft_ce(half_S, half_T, 2.0).mean(), rtol=1e-5, atol=1e-6)


def test_wrong_inputs_fail_with_messages_naming_them():
    logits_S, logits_T = random_logits()
    with pytest.raises(ValueError, match=r'\(6, 5\).*\(6, 4\)'):
        KDSoftCELoss()(logits_S, logits_T[:, :4])
    with pytest.raises(ValueError, match=r'one weight per sample, of shape \(6,\).*got \(6, 1\)'):
        KDSoftCELoss()(logits_S, logits_T, weight=torch.ones(6, 1))
    with pytest.raises(ValueError, match='reduction'):
        KDSoftCELoss(reduction='batchmean')
    with pytest.raises(ValueError, match='reduction'):
        KDSoftCELoss()(logits_S, logits_T, reduction_override='batchmean')
