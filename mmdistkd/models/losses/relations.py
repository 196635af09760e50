"""DIST's two Pearson relations of student and teacher probabilities, computed in chunks by one autograd
function that keeps nothing of the size of its inputs.

Written with plain tensor ops, the relations keep every intermediate (both probability tensors and four
centred copies) alive for backward: on a RetinaNet head that is about five times the size of the logits at
the point where the student's activations peak. Here forward and backward walk the inputs in chunks,
recompute the probabilities there, and save only the inputs (which the caller holds anyway) and per-class
statistics.

The time goes into passes over each chunk, so every pass is a plain elementwise op or sum, and there are few:
norms over the class axis are square roots of sums of squares (on CPU, ``Tensor.norm`` over a dim that is not
the innermost is 6-180 times slower, the more so the fewer the classes), the per-class statistics come from
one forward pass (each chunk centred by its own means, the chunks merged exactly), and backward builds each
gradient in place from per-row and per-class coefficients.
"""
import torch

PROBABILITIES = ('softmax', 'sigmoid', None)
# Elements per chunk. On CPU 1 MiB of fp32: small beside a detection head's logits and cache-sized, so the
# passes over a chunk stay in cache (measured: no visible time cost). On a GPU every op of a chunk is a kernel
# launch of ~10 us, so chunks are 16 MiB: a few per FPN level at 1333x800, still small beside a GPU step's
# activations (not measured).
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
    if probability is None:
        return scores
    scaled = scores if tau == 1 else scores / tau
    return scaled.softmax(1) if probability == 'softmax' else scaled.sigmoid()


def chunk_probabilities(scores_S, scores_T, chunk, probability, tau):
    """The probabilities of student and teacher scores at the index tuple ``chunk``."""
    return probabilities(scores_S[chunk], probability, tau), probabilities(scores_T[chunk], probability, tau)


def probabilities_backward(grad_probs, probs, probability, out):
    """Writes to ``out`` the gradient with respect to the scaled scores ``scores / tau`` from the one with
    respect to the probabilities (the caller folds ``1 / tau`` in). Overwrites ``grad_probs``."""
    if probability == 'softmax':
        dot = (grad_probs * probs).sum(1, keepdim=True)
        torch.mul(probs, grad_probs.sub_(dot), out=out)
    elif probability == 'sigmoid':
        # sigmoid' = p (1 - p) = p - p * p
        torch.mul(grad_probs, torch.addcmul(probs, probs, probs, value=-1), out=out)
    else:
        out.copy_(grad_probs)


def row_statistics(probs_S, probs_T):
    """Centred rows (over the class axis) and their ``dot, |x'|, |y'|``, each kept as ``(o, 1, i)``; the
    norms as ``sqrt(sum of squares)``, not ``Tensor.norm`` (see the module's docstring)."""
    centred_S = probs_S - probs_S.mean(1, keepdim=True)
    centred_T = probs_T - probs_T.mean(1, keepdim=True)
    dot = (centred_S * centred_T).sum(1, keepdim=True)
    norm_S = centred_S.square().sum(1, keepdim=True).sqrt()
    return centred_S, centred_T, dot, norm_S, centred_T.square().sum(1, keepdim=True).sqrt()


def centred_column_moments(probs_S, probs_T):
    """Per class, over the chunk's samples: ``(count, mean_S, mean_T, co-moment, M2_S, M2_T)``, the sums
    centred by the chunk's own means; each ``(classes,)`` except the count."""
    count = probs_S.numel() // probs_S.shape[1]
    mean_S, mean_T = probs_S.sum((0, 2)) / count, probs_T.sum((0, 2)) / count
    centred_S, centred_T = probs_S - mean_S[:, None], probs_T - mean_T[:, None]
    return (count, mean_S, mean_T, (centred_S * centred_T).sum((0, 2)), centred_S.square().sum((0, 2)),
            centred_T.square().sum((0, 2)))


def merge_column_moments(chunk_moments):
    """Chunks' ``centred_column_moments`` merged into the whole's ``(mean_S, mean_T, co-moment, M2_S,
    M2_T)``: the sums centred by the overall means, exactly, as within-chunk sums plus ``count * (chunk mean -
    mean)`` terms, without the cancellation of raw second moments."""
    if len(chunk_moments) == 1:
        return chunk_moments[0][1:]
    counts, means_S, means_T, comoments, squares_S, squares_T = zip(*chunk_moments)
    counts = means_S[0].new_tensor(counts)[:, None]
    means_S, means_T = torch.stack(means_S), torch.stack(means_T)
    mean_S, mean_T = (counts * means_S).sum(0) / counts.sum(), (counts * means_T).sum(0) / counts.sum()
    shift_S, shift_T = means_S - mean_S, means_T - mean_T
    comoment = torch.stack(comoments).sum(0) + (counts * shift_S * shift_T).sum(0)
    square_S = torch.stack(squares_S).sum(0) + (counts * shift_S.square()).sum(0)
    square_T = torch.stack(squares_T).sum(0) + (counts * shift_T.square()).sum(0)
    return mean_S, mean_T, comoment, square_S, square_T


def pearson_coefficients(dot, norm_x, norm_y, eps, scale):
    """``(u, v)`` with ``scale * d pearson(x, y) / d x = u * y' + v * x'`` (broadcastable statistics). The
    gradient is already centred, so it is also the one before centring. Where ``|x'| = 0``, ``x' = 0`` and
    the norm's gradient is taken as zero, as torch's ``norm`` does."""
    denominator = norm_x * norm_y + eps
    u = scale / denominator
    v = -u * torch.where(norm_x > 0, dot * norm_y / (norm_x * denominator), torch.zeros_like(norm_x))
    return u, v


def relation_gradient(probs_x, probs_y, row_x, row_y, mean_x, mean_y, column, row):
    """The gradient of both relations with respect to ``probs_x``: ``u_r y' + v_r x'`` of the rows
    (centred by the row means) plus ``u_c (y - mean_y) + v_c (x - mean_x)`` of the columns, with the
    ``(u, v)`` of ``pearson_coefficients``; five passes over the chunk, the column centring as a constant."""
    (u_row, v_row), (u_column, v_column) = row, column
    grad = torch.mul(row_y, u_row).addcmul_(row_x, v_row)
    grad.addcmul_(probs_y, u_column).addcmul_(probs_x, v_column)
    return grad.sub_(u_column * mean_y + v_column * mean_x)


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

        # One pass: the inter relation, and per chunk the moments that the intra relation merges.
        inter_sum = scores_S.new_zeros(())
        chunk_moments = []
        for chunk in chunks:
            probs_S, probs_T = chunk_probabilities(scores_S, scores_T, chunk, probability, tau)
            _, _, dot, norm_S, norm_T = row_statistics(probs_S, probs_T)
            inter_sum += (dot / (norm_S * norm_T + eps)).sum()
            chunk_moments.append(centred_column_moments(probs_S, probs_T))
        mean_S, mean_T, dot_c, square_S, square_T = (
            moment[:, None] for moment in merge_column_moments(chunk_moments))
        norm_S, norm_T = square_S.sqrt(), square_T.sqrt()

        ctx.save_for_backward(scores_S, scores_T, mean_S, mean_T, dot_c, norm_S, norm_T)
        ctx.settings = probability, tau, eps, chunks
        inter = 1 - inter_sum / (outer * inner)
        intra = 1 - (dot_c / (norm_S * norm_T + eps)).mean()
        return inter, intra

    @staticmethod
    def backward(ctx, grad_inter, grad_intra):
        scores_S, scores_T, mean_S, mean_T, dot_c, norm_c_S, norm_c_T = ctx.saved_tensors
        probability, tau, eps, chunks = ctx.settings
        outer, num_classes, inner = scores_S.shape
        # d inter / d pearson_row = -1 / samples, d intra / d pearson_class = -1 / classes; d probs / d scores
        # carries 1 / tau.
        to_scores = 1 if probability is None else 1 / tau
        scale_inter, scale_intra = -grad_inter * to_scores / (outer * inner), -grad_intra * to_scores / num_classes
        # The intra relation's coefficients are per class, the same in every chunk.
        column_S = pearson_coefficients(dot_c, norm_c_S, norm_c_T, eps, scale_intra)
        column_T = pearson_coefficients(dot_c, norm_c_T, norm_c_S, eps, scale_intra)
        want_S, want_T = ctx.needs_input_grad[:2]
        grad_S = torch.empty_like(scores_S) if want_S else None
        grad_T = torch.empty_like(scores_T) if want_T else None
        for chunk in chunks:
            probs_S, probs_T = chunk_probabilities(scores_S, scores_T, chunk, probability, tau)
            row_S, row_T, dot, norm_S, norm_T = row_statistics(probs_S, probs_T)
            if want_S:
                grad_probs = relation_gradient(
                    probs_S, probs_T, row_S, row_T, mean_S, mean_T, column_S,
                    pearson_coefficients(dot, norm_S, norm_T, eps, scale_inter))
                probabilities_backward(grad_probs, probs_S, probability, out=grad_S[chunk])
            if want_T:
                grad_probs = relation_gradient(
                    probs_T, probs_S, row_T, row_S, mean_T, mean_S, column_T,
                    pearson_coefficients(dot, norm_T, norm_S, eps, scale_inter))
                probabilities_backward(grad_probs, probs_T, probability, out=grad_T[chunk])
        return grad_S, grad_T, None, None, None, None

