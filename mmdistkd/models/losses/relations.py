"""DIST's two Pearson relations of student and teacher probabilities, computed in chunks by one autograd
function that keeps nothing of the size of its inputs.

Written with plain tensor ops, the relations keep every intermediate (both probability tensors and four
centred copies) alive for backward: on a RetinaNet head that is about five times the size of the logits at
the point where the student's activations peak. Here forward and backward walk the inputs in chunks,
recompute the probabilities there, and save only the inputs (which the caller holds anyway) and per-class
statistics.
"""
import torch

PROBABILITIES = ('softmax', 'sigmoid', None)
# Elements per chunk. On CPU 1 MiB of fp32: small beside a detection head's logits, large enough for fast
# loops (measured: no visible time cost). On a GPU every op of a chunk is a kernel launch of ~10 us, so chunks
# are 16 MiB: a few per FPN level at 1333x800, still small beside a GPU step's activations (not measured).
CPU_CHUNK_NUMEL = 2**18
ACCELERATOR_CHUNK_NUMEL = 2**22


def pearson_relations(scores_S, scores_T, probability, tau=1.0, eps=1e-8, chunk_numel=None):
    """``(inter, intra)`` relation losses of scores of shape ``(outer, classes, inner)``.

    A sample is an ``(outer, inner)`` position, and its probabilities over the classes are
    ``softmax(scores / tau)`` (over dim 1), ``sigmoid(scores / tau)``, or the scores themselves
    (``probability=None``). With ``pearson(x, y) = <x', y'> / (|x'| |y'| + eps)``, ``x' = x - mean(x)``:

    - ``inter = 1 - mean over samples of pearson(student row, teacher row)`` (across classes);
    - ``intra = 1 - mean over classes of pearson(student column, teacher column)`` (across samples).

    A constant row or column correlates as 0, not NaN. No sample gives two zeros still attached to the
    inputs, so backward runs. ``chunk_numel`` (elements per chunk) defaults by device (see above)."""
    if probability not in PROBABILITIES:
        raise ValueError(f'probability must be one of {PROBABILITIES}, got {probability!r}')
    if scores_S.dim() != 3 or scores_S.shape != scores_T.shape:
        raise ValueError(f'scores must both be (outer, classes, inner), got {tuple(scores_S.shape)} and '
                         f'{tuple(scores_T.shape)}')
    if scores_S.numel() == 0:
        zero = scores_S.sum() * 0 + scores_T.sum() * 0
        return zero, zero.clone()
    if chunk_numel is None:
        chunk_numel = CPU_CHUNK_NUMEL if scores_S.device.type == 'cpu' else ACCELERATOR_CHUNK_NUMEL
    return PearsonRelations.apply(scores_S, scores_T, probability, tau, eps, chunk_numel)


def probabilities(scores, probability, tau):
    """Class probabilities of ``(outer, classes, inner)`` scores (see ``pearson_relations``)."""
    if probability == 'softmax':
        return (scores / tau).softmax(1)
    if probability == 'sigmoid':
        return (scores / tau).sigmoid()
    return scores


def chunk_probabilities(scores_S, scores_T, chunk, probability, tau):
    """The probabilities of student and teacher scores at the index tuple ``chunk``."""
    return probabilities(scores_S[chunk], probability, tau), probabilities(scores_T[chunk], probability, tau)


def probabilities_backward(grad_probs, probs, probability, tau):
    """The gradient with respect to the scores, from the one with respect to their probabilities."""
    if probability == 'softmax':
        return probs * (grad_probs - (grad_probs * probs).sum(1, keepdim=True)) / tau
    if probability == 'sigmoid':
        return grad_probs * probs * (1 - probs) / tau
    return grad_probs


def pearson_gradient(centred_x, centred_y, dot, norm_x, norm_y, eps):
    """``d pearson / d x`` from the centred vectors and their statistics (broadcastable). It is already
    centred, so it is also the gradient before centring. Where ``|x'| = 0``, ``x' = 0`` and the norm's
    gradient is taken as zero, as torch's ``norm`` does."""
    denominator = norm_x * norm_y + eps
    norm_term = torch.where(norm_x > 0, dot * norm_y / (norm_x * denominator), torch.zeros_like(norm_x))
    return (centred_y - norm_term * centred_x) / denominator


def row_statistics(probs_S, probs_T):
    """Centred rows (over the class axis) and their ``dot, |x'|, |y'|``, each kept as ``(o, 1, i)``."""
    centred_S = probs_S - probs_S.mean(1, keepdim=True)
    centred_T = probs_T - probs_T.mean(1, keepdim=True)
    dot = (centred_S * centred_T).sum(1, keepdim=True)
    return centred_S, centred_T, dot, centred_S.norm(dim=1, keepdim=True), centred_T.norm(dim=1, keepdim=True)


def sample_chunks(outer, num_classes, inner, chunk_numel):
    """Index tuples that split ``(outer, classes, inner)`` into blocks of whole class vectors, about
    ``chunk_numel`` elements each: several outer indices at a time, or pieces of one's inner positions."""
    samples_per_chunk = max(1, chunk_numel // num_classes)
    if inner <= samples_per_chunk:
        step = samples_per_chunk // inner
        return [(slice(start, start + step), ) for start in range(0, outer, step)]
    return [(slice(index, index + 1), slice(None), slice(start, start + samples_per_chunk))
            for index in range(outer) for start in range(0, inner, samples_per_chunk)]


class PearsonRelations(torch.autograd.Function):
    """See ``pearson_relations``. Saves the two score tensors and five class-sized vectors."""

    @staticmethod
    def forward(ctx, scores_S, scores_T, probability, tau, eps, chunk_numel):
        outer, num_classes, inner = scores_S.shape
        chunks = sample_chunks(outer, num_classes, inner, chunk_numel)

        # Pass 1: the inter relation, and the class means that the intra relation centres by.
        inter_sum = scores_S.new_zeros(())
        sum_S, sum_T = scores_S.new_zeros(num_classes), scores_S.new_zeros(num_classes)
        for chunk in chunks:
            probs_S, probs_T = chunk_probabilities(scores_S, scores_T, chunk, probability, tau)
            _, _, dot, norm_S, norm_T = row_statistics(probs_S, probs_T)
            inter_sum += (dot / (norm_S * norm_T + eps)).sum()
            sum_S += probs_S.sum((0, 2))
            sum_T += probs_T.sum((0, 2))
        num_samples = outer * inner
        mean_S, mean_T = (sum_S / num_samples)[:, None], (sum_T / num_samples)[:, None]

        # Pass 2: the intra relation's per-class statistics.
        dot_c, square_S, square_T = (scores_S.new_zeros(num_classes, 1) for _ in range(3))
        for chunk in chunks:
            probs_S, probs_T = chunk_probabilities(scores_S, scores_T, chunk, probability, tau)
            centred_S, centred_T = probs_S - mean_S, probs_T - mean_T
            dot_c += (centred_S * centred_T).sum((0, 2))[:, None]
            square_S += centred_S.square().sum((0, 2))[:, None]
            square_T += centred_T.square().sum((0, 2))[:, None]
        norm_S, norm_T = square_S.sqrt(), square_T.sqrt()

        ctx.save_for_backward(scores_S, scores_T, mean_S, mean_T, dot_c, norm_S, norm_T)
        ctx.settings = probability, tau, eps, chunks
        inter = 1 - inter_sum / num_samples
        intra = 1 - (dot_c / (norm_S * norm_T + eps)).mean()
        return inter, intra

    @staticmethod
    def backward(ctx, grad_inter, grad_intra):
        scores_S, scores_T, mean_S, mean_T, dot_c, norm_c_S, norm_c_T = ctx.saved_tensors
        probability, tau, eps, chunks = ctx.settings
        outer, num_classes, inner = scores_S.shape
        # d inter / d pearson_row = -1 / samples, d intra / d pearson_class = -1 / classes.
        scale_inter, scale_intra = -grad_inter / (outer * inner), -grad_intra / num_classes
        want_S, want_T = ctx.needs_input_grad[:2]
        grad_S = torch.empty_like(scores_S) if want_S else None
        grad_T = torch.empty_like(scores_T) if want_T else None
        for chunk in chunks:
            probs_S, probs_T = chunk_probabilities(scores_S, scores_T, chunk, probability, tau)
            row_S, row_T, dot, norm_S, norm_T = row_statistics(probs_S, probs_T)
            column_S, column_T = probs_S - mean_S, probs_T - mean_T
            if want_S:
                grad_probs = scale_inter * pearson_gradient(row_S, row_T, dot, norm_S, norm_T, eps) \
                    + scale_intra * pearson_gradient(column_S, column_T, dot_c, norm_c_S, norm_c_T, eps)
                grad_S[chunk] = probabilities_backward(grad_probs, probs_S, probability, tau)
            if want_T:
                grad_probs = scale_inter * pearson_gradient(row_T, row_S, dot, norm_T, norm_S, eps) \
                    + scale_intra * pearson_gradient(column_T, column_S, dot_c, norm_c_T, norm_c_S, eps)
                grad_T[chunk] = probabilities_backward(grad_probs, probs_T, probability, tau)
        return grad_S, grad_T, None, None, None, None
