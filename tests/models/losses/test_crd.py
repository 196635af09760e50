"""CRDLoss against a float64 reference of CRD's NCE objective and memory update (Tian et al., arXiv 1910.10699;
the authors' RepDistiller, as MMRazor's CRDLoss computes it: exp scores, Z fixed at the first step)."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.structures import BaseDataElement

from mmdistkd.models.losses import CRDLoss

BATCH, NEG_NUM, SAMPLE_N, DIM = 3, 5, 7, 4
SETTINGS = dict(temperature=0.5, neg_num=NEG_NUM, sample_n=SAMPLE_N, dim_out=DIM, momentum=0.3, eps=1e-7)


def samples(sample_idx, contrast_idx=None):
    """Data samples as MMRazor's PackCRDClsInputs packs them: tensors ``sample_idx`` and ``contrast_sample_idxs``."""
    if contrast_idx is None:
        return [BaseDataElement(sample_idx=torch.tensor(i)) for i in sample_idx]
    return [BaseDataElement(sample_idx=torch.tensor(i), contrast_sample_idxs=torch.tensor(row))
            for i, row in zip(sample_idx, contrast_idx)]


def embeddings(seed, batch=BATCH, dim=DIM):
    generator = torch.Generator().manual_seed(seed)
    feat_S = F.normalize(torch.randn(batch, dim, generator=generator), dim=1).requires_grad_()
    feat_T = F.normalize(torch.randn(batch, dim, generator=generator), dim=1).requires_grad_()
    return feat_S, feat_T


def reference_nce_side(feats, memory, contrast_idx, temperature, sample_n, eps, normalizer=None):
    """``-(sum_b log(P_b0 / (P_b0 + m/n + eps)) + sum_{b,k>0} log((m/n) / (P_bk + m/n + eps))) / B`` with
    ``P = exp(memory[j] . f / T) / Z`` and ``Z = mean(exp(...)) * n`` unless given. Returns (loss, Z)."""
    batch, columns = len(contrast_idx), len(contrast_idx[0])
    noise = (columns - 1) / sample_n
    exp_scores = [[torch.exp(torch.dot(memory[contrast_idx[b][k]], feats[b]) / temperature) for k in range(columns)]
                  for b in range(batch)]
    if normalizer is None:
        normalizer = sum(float(score.detach()) for row in exp_scores for score in row) / (batch * columns) * sample_n
    total = 0
    for b in range(batch):
        for k in range(columns):
            score = exp_scores[b][k] / normalizer
            total = total + (torch.log(score / (score + noise + eps)) if k == 0 else
                             torch.log(noise / (score + noise + eps)))
    return -total / batch, normalizer


def reference_update(memory, sample_idx, feats, momentum):
    memory = memory.copy()
    for i, feat in zip(sample_idx, feats):
        mixed = momentum * memory[i] + (1 - momentum) * feat
        memory[i] = mixed / np.sqrt((mixed**2).sum())
    return memory


def test_matches_float64_reference_over_two_steps():
    torch.manual_seed(0)
    loss_module = CRDLoss(loss_weight=0.8, **SETTINGS)
    memory_S, memory_T = loss_module.memory_S.double().numpy(), loss_module.memory_T.double().numpy()
    normalizers = None
    # Indices at both ends of the bank; the second step revisits images, so it reads updated entries.
    steps = [([0, SAMPLE_N - 1, 3], [[0, 1, 2, 6, 6, 5], [6, 0, 0, 1, 2, 3], [3, 4, 5, 6, 0, 1]]),
             ([6, 2, 0], [[6, 5, 4, 3, 2, 1], [2, 0, 6, 6, 1, 3], [0, 6, 5, 2, 2, 2]])]
    for step, (sample_idx, contrast_idx) in enumerate(steps):
        feat_S, feat_T = embeddings(step)
        loss = loss_module(feat_S, feat_T, samples(sample_idx, contrast_idx))
        loss.backward()

        reference_S, reference_T = feat_S.detach().double().requires_grad_(), feat_T.detach().double().requires_grad_()
        side_S, normalizer_S = reference_nce_side(reference_S, torch.from_numpy(memory_T), contrast_idx,
                                                  SETTINGS['temperature'], SAMPLE_N, SETTINGS['eps'],
                                                  normalizers and normalizers[0])
        side_T, normalizer_T = reference_nce_side(reference_T, torch.from_numpy(memory_S), contrast_idx,
                                                  SETTINGS['temperature'], SAMPLE_N, SETTINGS['eps'],
                                                  normalizers and normalizers[1])
        normalizers = normalizers or (normalizer_S, normalizer_T)  # fixed at the first step
        expected = 0.8 * (side_S + side_T)
        expected.backward()
        assert loss.dtype == torch.float32
        torch.testing.assert_close(loss.double(), expected.detach(), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(feat_S.grad.double(), reference_S.grad, atol=1e-5, rtol=1e-4)
        # The teacher's embedding is not detached: its connector trains through this loss.
        torch.testing.assert_close(feat_T.grad.double(), reference_T.grad, atol=1e-5, rtol=1e-4)

        memory_S = reference_update(memory_S, sample_idx, feat_S.detach().double().numpy(), SETTINGS['momentum'])
        memory_T = reference_update(memory_T, sample_idx, feat_T.detach().double().numpy(), SETTINGS['momentum'])
        np.testing.assert_allclose(loss_module.memory_S.numpy(), memory_S, atol=1e-6)
        np.testing.assert_allclose(loss_module.memory_T.numpy(), memory_T, atol=1e-6)


def test_positive_may_differ_from_the_updated_image():
    """MMRazor's CRDDataset in 'random' mode picks another image of the class as the positive: scores use
    contrast_sample_idxs, the update uses sample_idx."""
    torch.manual_seed(1)
    loss_module = CRDLoss(**SETTINGS)
    memory_S = loss_module.memory_S.double().numpy()
    feat_S, feat_T = embeddings(2)
    contrast_idx = [[1, 2, 3, 4, 5, 6]] * BATCH
    loss_module(feat_S, feat_T, samples([0, 4, 5], contrast_idx))
    expected = reference_update(memory_S, [0, 4, 5], feat_S.detach().double().numpy(), SETTINGS['momentum'])
    np.testing.assert_allclose(loss_module.memory_S.numpy(), expected, atol=1e-6)


def test_draws_negatives_uniformly_with_the_global_rng():
    """Without contrast_sample_idxs, the contrasted images are ``torch.randint(sample_n, (B, 1 + neg_num))`` from
    the global generator with the positive, the image itself, first."""
    settings = dict(SETTINGS, neg_num=40, sample_n=3)  # a tiny dataset: negatives repeat
    feat_S, feat_T = embeddings(3)
    torch.manual_seed(5)
    drawing = CRDLoss(**settings)
    given = CRDLoss(**settings)
    given.load_state_dict(drawing.state_dict())
    torch.manual_seed(6)
    loss = drawing(feat_S, feat_T, samples([2, 0, 2]))
    torch.manual_seed(6)
    contrast_idx = torch.randint(3, (BATCH, 41))
    contrast_idx[:, 0] = torch.tensor([2, 0, 2])
    torch.testing.assert_close(loss, given(feat_S, feat_T, samples([2, 0, 2], contrast_idx.tolist())))


def test_state_dict_resumes_banks_and_normalizers():
    torch.manual_seed(2)
    trained = CRDLoss(**SETTINGS)
    contrast_idx = [[0, 1, 2, 3, 4, 5]] * BATCH
    trained(*embeddings(4), samples([0, 1, 2], contrast_idx))
    resumed = CRDLoss(**SETTINGS)
    resumed.load_state_dict(trained.state_dict())
    assert torch.isfinite(resumed.log_normalizers).all()
    next_step = (*embeddings(5), samples([3, 4, 6], [[6, 5, 4, 3, 2, 1]] * BATCH))
    torch.testing.assert_close(resumed(*next_step), trained(*next_step))


def test_sample_idx_as_an_int_in_metainfo():
    """mmpretrain's PackInputs leaves sample_idx as an int in the metainfo."""
    torch.manual_seed(3)
    as_tensors, as_ints = CRDLoss(**SETTINGS), CRDLoss(**SETTINGS)
    as_ints.load_state_dict(as_tensors.state_dict())
    feat_S, feat_T = embeddings(6)
    contrast_idx = [[1, 2, 3, 4, 5, 6]] * BATCH
    metainfo_samples = [BaseDataElement(metainfo=dict(sample_idx=i), contrast_sample_idxs=torch.tensor(row))
                        for i, row in zip([1, 2, 3], contrast_idx)]
    torch.testing.assert_close(as_ints(feat_S, feat_T, metainfo_samples),
                               as_tensors(feat_S, feat_T, samples([1, 2, 3], contrast_idx)))


@pytest.mark.parametrize('zero_banks', [False, True])
def test_zero_embeddings_are_finite(zero_banks):
    loss_module = CRDLoss(**SETTINGS)
    if zero_banks:
        loss_module.memory_S.zero_()
        loss_module.memory_T.zero_()
    feat_S, feat_T = torch.zeros(1, DIM, requires_grad=True), torch.zeros(1, DIM, requires_grad=True)  # batch of 1
    loss = loss_module(feat_S, feat_T, samples([SAMPLE_N - 1]))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(feat_S.grad).all() and torch.isfinite(feat_T.grad).all()
    assert torch.isfinite(loss_module.memory_S).all() and torch.isfinite(loss_module.memory_T).all()


def test_large_scores_do_not_overflow():
    """Unnormalised embeddings at a low temperature: exp(score / T) overflows float32, log-space scores do not."""
    loss_module = CRDLoss(**dict(SETTINGS, temperature=0.01))
    feat_S, feat_T = embeddings(7)
    feat_S = (feat_S.detach() * 100).requires_grad_()
    loss = loss_module(feat_S, feat_T * 100, samples([0, 1, 2]))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(feat_S.grad).all()


def test_half_precision_embeddings_compute_in_float32():
    torch.manual_seed(4)
    loss_module, reference = CRDLoss(**SETTINGS), CRDLoss(**SETTINGS)
    reference.load_state_dict(loss_module.state_dict())
    feat_S, feat_T = (value.detach().half() for value in embeddings(8))
    contrast_idx = [[1, 2, 3, 4, 5, 6]] * BATCH
    loss = loss_module(feat_S, feat_T, samples([0, 1, 2], contrast_idx))
    assert loss.dtype == torch.float32 and loss_module.memory_S.dtype == torch.float32
    torch.testing.assert_close(loss, reference(feat_S.float(), feat_T.float(), samples([0, 1, 2], contrast_idx)))


def test_configuration_mismatches_are_explained():
    loss_module = CRDLoss(**SETTINGS)
    feat_S, feat_T = embeddings(9)
    with pytest.raises(ValueError, match=f'sample_n={SAMPLE_N}.*\\[0, {SAMPLE_N}\\]'):
        loss_module(feat_S, feat_T, samples([0, 1, SAMPLE_N]))
    with pytest.raises(ValueError, match='neg_num=5'):
        loss_module(feat_S, feat_T, samples([0, 1, 2], [[0, 1, 2]] * BATCH))
    with pytest.raises(ValueError, match=r'dim_out=4.*\(3, 4\) and \(3, 8\)'):
        loss_module(feat_S, torch.randn(BATCH, 8), samples([0, 1, 2]))
    with pytest.raises(ValueError, match='2 data samples for 3 embeddings'):
        loss_module(feat_S, feat_T, samples([0, 1]))
    with pytest.raises(ValueError, match='sample_idx'):
        loss_module(feat_S, feat_T, [BaseDataElement()] * BATCH)
