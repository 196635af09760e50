import pytest
import torch

from mmdistkd.models.losses.relations import pearson_relations


def reference_relations(scores_S, scores_T, probability, tau):
    """Plain autograd in float64 on ``(samples, classes)`` rows."""
    def rows(scores):
        rows = scores.double().movedim(1, -1).reshape(-1, scores.shape[1]) / tau
        return {'softmax': rows.softmax(-1), 'sigmoid': rows.sigmoid(), None: rows * tau}[probability]

    def pearson(a, b):
        a, b = a - a.mean(-1, keepdim=True), b - b.mean(-1, keepdim=True)
        return (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1) + 1e-8)

    probs_S, probs_T = rows(scores_S), rows(scores_T)
    return 1 - pearson(probs_S, probs_T).mean(), 1 - pearson(probs_S.T, probs_T.T).mean()


def check_against_reference(scores_S, scores_T, probability, tau, chunk_numel, value_tol, grad_tol):
    """Both relations and both inputs' gradients (of ``0.3 * inter + 0.7 * intra``) against
    ``reference_relations`` on float64 copies; ``value_tol`` and ``grad_tol`` are ``(atol, rtol)``."""
    scores_S, scores_T = scores_S.detach().requires_grad_(), scores_T.detach().requires_grad_()
    inter, intra = pearson_relations(scores_S, scores_T, probability, tau=tau, chunk_numel=chunk_numel)
    (0.3 * inter + 0.7 * intra).backward()

    reference_S = scores_S.detach().double().requires_grad_()
    reference_T = scores_T.detach().double().requires_grad_()
    expected_inter, expected_intra = reference_relations(reference_S, reference_T, probability, tau=tau)
    (0.3 * expected_inter + 0.7 * expected_intra).backward()
    atol, rtol = value_tol
    torch.testing.assert_close(inter.double(), expected_inter.detach(), atol=atol, rtol=rtol)
    torch.testing.assert_close(intra.double(), expected_intra.detach(), atol=atol, rtol=rtol)
    atol, rtol = grad_tol
    for grad, expected in ((scores_S.grad, reference_S.grad), (scores_T.grad, reference_T.grad)):
        torch.testing.assert_close(grad.double(), expected, atol=atol(expected) if callable(atol) else atol,
                                   rtol=rtol)


@pytest.mark.parametrize('probability', ['softmax', 'sigmoid', None])
@pytest.mark.parametrize('chunk_numel', [1, 20, 40, 2**18])  # per sample, inner pieces, outer blocks, one
def test_matches_autograd_reference_for_both_inputs(probability, chunk_numel):
    generator = torch.Generator().manual_seed(0)
    scores_S = torch.randn(6, 5, 7, generator=generator)
    scores_T = torch.randn(6, 5, 7, generator=generator)
    if probability is None:  # probabilities given: rows of a softmax
        scores_S, scores_T = scores_S.softmax(1), scores_T.softmax(1)
    check_against_reference(scores_S, scores_T, probability, 1.5, chunk_numel, value_tol=(1e-6, 1e-6),
                            grad_tol=(1e-6, 1e-5))


# A dense detection head's case: 3 classes, 8000 samples; inner pieces, uneven pieces, outer blocks, one chunk.
FEW_CLASSES_CHUNKINGS = [3 * 500, 3 * 700, 2 * 3 * 2000, 2**18]


@pytest.mark.parametrize('probability', ['sigmoid', 'softmax', None])
@pytest.mark.parametrize('chunk_numel', FEW_CLASSES_CHUNKINGS)
def test_few_classes_many_samples_in_float64(probability, chunk_numel):
    """In float64 the chunked passes, the merged per-chunk moments and the gradient formula must agree with
    plain autograd to rounding; fp32 would hide a wrong term behind its conditioning (rows of 3 nearly
    equal probabilities)."""
    generator = torch.Generator().manual_seed(0)
    scores_S = torch.randn(4, 3, 2000, generator=generator, dtype=torch.float64)
    scores_T = torch.randn(4, 3, 2000, generator=generator, dtype=torch.float64)
    if probability is None:
        scores_S, scores_T = scores_S.sigmoid(), scores_T.sigmoid()
    check_against_reference(scores_S, scores_T, probability, 2.0, chunk_numel, value_tol=(1e-12, 1e-12),
                            grad_tol=(lambda expected: 1e-12 * expected.abs().max().item(), 1e-10))


@pytest.mark.parametrize('chunk_numel', FEW_CLASSES_CHUNKINGS)
def test_few_classes_near_the_focal_prior_in_fp32(chunk_numel):
    """Logits of a RetinaNet head at its prior (sigmoid about 0.01) with a small spread: second moments from
    raw sums would cancel there (errors of about 1e-5 in intra); the merged centred moments keep fp32
    precision."""
    generator = torch.Generator().manual_seed(0)
    scores_S = torch.randn(4, 3, 2000, generator=generator) * 0.05 - 4.6
    scores_T = scores_S + torch.randn(4, 3, 2000, generator=generator) * 0.05
    inter, intra = pearson_relations(scores_S, scores_T, 'sigmoid', chunk_numel=chunk_numel)
    expected_inter, expected_intra = reference_relations(scores_S, scores_T, 'sigmoid', tau=1.0)
    torch.testing.assert_close(inter.double(), expected_inter, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(intra.double(), expected_intra, atol=1e-6, rtol=1e-6)


def test_saves_only_the_inputs_and_class_statistics():
    scores_S = torch.randn(4, 10, 50, requires_grad=True)
    scores_T = torch.randn(4, 10, 50)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda tensor: saved.append(tensor) or tensor, lambda x: x):
        inter, intra = pearson_relations(scores_S, scores_T, 'sigmoid')
    large = [tensor for tensor in saved if tensor.numel() >= scores_S.numel()]
    assert len(large) == 2 and all(tensor.data_ptr() in (scores_S.data_ptr(), scores_T.data_ptr())
                                   for tensor in large)
    assert all(tensor.numel() <= 10 for tensor in saved if tensor.numel() < scores_S.numel())


def test_errors_and_empty_input():
    with pytest.raises(ValueError, match='probability'):
        pearson_relations(torch.zeros(1, 2, 1), torch.zeros(1, 2, 1), 'log_softmax')
    with pytest.raises(ValueError, match=r'\(2, 3\)'):
        pearson_relations(torch.zeros(2, 3), torch.zeros(2, 3), 'softmax')
    scores_S = torch.zeros(0, 4, 1, requires_grad=True)
    inter, intra = pearson_relations(scores_S, torch.zeros(0, 4, 1), 'softmax')
    (inter + intra).backward()
    assert inter.item() == intra.item() == 0 and scores_S.grad.shape == scores_S.shape
