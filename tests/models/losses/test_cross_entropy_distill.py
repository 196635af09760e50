import math

import pytest
import torch

from mmdistkd.models.losses.cross_entropy import CrossEntropyLoss


def reference_hard_label_ce(logits_S, logits_T):
    """Mean over samples (and positions) of ``-log softmax(S)[argmax T]``, with explicit loops in float64; the
    class axis is dim 1, ties go to the first class as ``torch.argmax``'s."""
    rows_S = logits_S.double().movedim(1, -1).reshape(-1, logits_S.shape[1])
    rows_T = logits_T.double().movedim(1, -1).reshape(-1, logits_T.shape[1])
    total = 0
    for s, t in zip(rows_S, rows_T):
        t = t.tolist()
        label = t.index(max(t))
        total = total - (s[label] - torch.log(torch.exp(s - s.max()).sum()) - s.max())
    return total / len(rows_S)


@pytest.mark.parametrize('shape', [(6, 5), (2, 4, 3, 3)])
def test_value_and_student_gradient_match_float64_reference(shape):
    generator = torch.Generator().manual_seed(0)
    logits_S = (3 * torch.randn(shape, generator=generator)).requires_grad_()
    logits_T = (3 * torch.randn(shape, generator=generator)).requires_grad_()
    loss = CrossEntropyLoss(loss_weight=0.5)(logits_S, logits_T)
    loss.backward()
    reference_S = logits_S.detach().double().requires_grad_()
    expected = 0.5 * reference_hard_label_ce(reference_S, logits_T.detach())
    expected.backward()
    torch.testing.assert_close(loss.double(), expected.detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(logits_S.grad.double(), reference_S.grad, rtol=1e-5, atol=1e-6)
    assert logits_T.grad is None


@pytest.mark.parametrize('case', ['constant', 'saturated', 'single_sample', 'one_class'])
def test_degenerate_inputs_give_finite_values_and_gradients(case):
    logits_S, logits_T = {
        'constant': (torch.zeros(3, 4), torch.zeros(3, 4)),
        'saturated': (torch.tensor([[1e4, 0.0, -1e4]]), torch.tensor([[-1e4, 0.0, 1e4]])),
        'single_sample': (torch.tensor([[0.5, -1.0, 2.0]]), torch.tensor([[3.0, 1.0, 0.0]])),
        'one_class': (torch.randn(4, 1), torch.randn(4, 1)),
    }[case]
    logits_S.requires_grad_()
    loss = CrossEntropyLoss()(logits_S, logits_T)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits_S.grad).all()
    expected = {'constant': math.log(4), 'saturated': 2e4, 'one_class': 0.0}.get(
        case, reference_hard_label_ce(logits_S.detach(), logits_T).item())
    assert loss.item() == pytest.approx(expected, rel=1e-6, abs=1e-6)


def test_half_precision_inputs_are_computed_in_float32():
    generator = torch.Generator().manual_seed(1)
    half_S, half_T = torch.randn(6, 5, generator=generator).half(), torch.randn(6, 5, generator=generator).half()
    loss = CrossEntropyLoss()(half_S, half_T)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss.double(), reference_hard_label_ce(half_S, half_T), rtol=1e-5, atol=1e-6)


def test_wrong_inputs_fail_with_messages_naming_them():
    with pytest.raises(ValueError, match=r'\(6, 5\).*\(6, 4\)'):
        CrossEntropyLoss()(torch.randn(6, 5), torch.randn(6, 4))
    with pytest.raises(ValueError, match='class axis'):
        CrossEntropyLoss()(torch.randn(6), torch.randn(6))
