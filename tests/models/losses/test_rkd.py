"""DistanceWiseRKD and AngleWiseRKD against the relational potentials of Park et al. (arXiv 1904.05068) written
with explicit loops over pairs and triplets in float64."""
import itertools

import pytest
import torch

from mmdistkd.models.losses import AngleWiseRKD, DistanceWiseRKD


def huber(x):
    return 0.5 * x**2 if abs(x) < 1 else abs(x) - 0.5


def embeddings(preds, with_l2_norm):
    rows = [p.flatten() for p in preds]
    return [r / torch.sqrt((r * r).sum()) for r in rows] if with_l2_norm else rows


def distance_potentials(rows):
    """``psi_D(i, j) = ||x_i - x_j|| / mu``, ``mu`` the mean distance over the pairs ``i != j``."""
    n = len(rows)
    distance = {(i, j): torch.sqrt(((rows[i] - rows[j])**2).sum()) if i != j else torch.zeros((), dtype=torch.double)
                for i, j in itertools.product(range(n), repeat=2)}
    mu = sum(distance.values()) / (n * (n - 1))
    return [distance[i, j] / mu for i, j in itertools.product(range(n), repeat=2)]


def angle_potentials(rows):
    """``psi_A(i, j, k) = cos`` of the angle at ``x_i`` between ``x_j`` and ``x_k``; 0 when undefined."""

    def direction(i, j):
        difference = rows[j] - rows[i]
        norm_squared = (difference * difference).sum()
        return difference / torch.sqrt(norm_squared) if norm_squared > 0 else torch.zeros_like(difference)

    n = len(rows)
    return [(direction(i, j) * direction(i, k)).sum() for i, j, k in itertools.product(range(n), repeat=3)]


def reference_rkd(potentials, preds_S, preds_T, loss_weight, with_l2_norm=True):
    psi_S = potentials(embeddings(preds_S, with_l2_norm))
    psi_T = potentials(embeddings(preds_T, with_l2_norm))
    return loss_weight * sum(huber(s - t) for s, t in zip(psi_S, psi_T)) / len(psi_S)


CASES = [(DistanceWiseRKD, distance_potentials, 25.0), (AngleWiseRKD, angle_potentials, 50.0)]
IDS = ['distance', 'angle']


@pytest.mark.parametrize('loss_type, potentials, default_weight', CASES, ids=IDS)
@pytest.mark.parametrize('with_l2_norm', [True, False])
@pytest.mark.parametrize('batch', [2, 5])
def test_matches_reference_value_and_gradient(loss_type, potentials, default_weight, with_l2_norm, batch):
    torch.manual_seed(batch)
    # Student and teacher embeddings of different sizes, the student's from a feature map.
    preds_S = torch.randn(batch, 2, 2, 2).requires_grad_()
    preds_T = torch.randn(batch, 12) * 3
    loss = loss_type(with_l2_norm=with_l2_norm)(preds_S, preds_T)
    loss.backward()
    reference_S = preds_S.detach().double().requires_grad_()
    expected = reference_rkd(potentials, reference_S, preds_T.double(), default_weight, with_l2_norm)
    expected.backward()
    torch.testing.assert_close(loss.double(), expected.detach(), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(preds_S.grad.double(), reference_S.grad, atol=1e-6, rtol=1e-4)


def test_large_differences_use_the_linear_part_of_the_huber_loss():
    """Unnormalised distances far apart in relative terms reach ``|x| >= 1``."""
    preds_S = torch.tensor([[0.0], [1.0], [100.0]], requires_grad=True)
    preds_T = torch.tensor([[0.0], [99.0], [100.0]])
    loss = DistanceWiseRKD(loss_weight=1.0, with_l2_norm=False)(preds_S, preds_T)
    expected = reference_rkd(distance_potentials, preds_S.detach().double(), preds_T.double(), 1.0, False)
    torch.testing.assert_close(loss.double(), expected, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize('loss_type', [DistanceWiseRKD, AngleWiseRKD], ids=IDS)
def test_relations_ignore_the_scale_and_the_teacher_is_detached(loss_type):
    torch.manual_seed(0)
    preds_S, preds_T = torch.randn(4, 6, requires_grad=True), torch.randn(4, 3, requires_grad=True)
    loss = loss_type(with_l2_norm=False)(preds_S, preds_T)
    loss.backward()
    assert preds_T.grad is None
    torch.testing.assert_close(loss_type(with_l2_norm=False)(preds_S.detach() * 20, preds_T), loss.detach())


@pytest.mark.parametrize('loss_type', [DistanceWiseRKD, AngleWiseRKD], ids=IDS)
def test_a_batch_of_one_has_no_relations(loss_type):
    """MMRazor's distance loss gives NaN (the mean of no positive distance); here both relations are empty."""
    preds_S = torch.randn(1, 8, requires_grad=True)
    loss = loss_type()(preds_S, torch.randn(1, 8))
    loss.backward()
    assert loss.item() == 0 and (preds_S.grad == 0).all()


@pytest.mark.parametrize('loss_type', [DistanceWiseRKD, AngleWiseRKD], ids=IDS)
@pytest.mark.parametrize('with_l2_norm', [True, False])
def test_identical_or_zero_embeddings_are_finite(loss_type, with_l2_norm):
    """Identical points are 0 apart and form no angle; all-zero rows normalise to zero."""
    torch.manual_seed(1)
    distinct = torch.randn(4, 5)
    for preds_S, preds_T in [(torch.ones(4, 5), distinct), (torch.zeros(4, 5), distinct),
                             (torch.zeros(4, 5), torch.zeros(4, 5)), (distinct, torch.ones(4, 5))]:
        preds_S = preds_S.clone().requires_grad_()
        loss = loss_type(with_l2_norm=with_l2_norm)(preds_S, preds_T)
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(preds_S.grad).all()


@pytest.mark.parametrize('loss_type, potentials, default_weight', CASES, ids=IDS)
def test_duplicate_samples_match_the_reference_with_bounded_gradient(loss_type, potentials, default_weight):
    """Two equal student embeddings among distinct ones: distance 0 and an undefined angle (counted as 0, as
    MMRazor's F.normalize gives), whose gradient is 0 rather than F.normalize's 1 / eps = 1e12."""
    torch.manual_seed(2)
    preds_S = torch.randn(4, 6)
    preds_S[3] = preds_S[1]
    preds_S.requires_grad_()
    preds_T = torch.randn(4, 6)
    loss = loss_type()(preds_S, preds_T)
    loss.backward()
    expected = reference_rkd(potentials, preds_S.detach().double(), preds_T.double(), default_weight)
    torch.testing.assert_close(loss.double(), expected, atol=1e-5, rtol=1e-5)
    assert preds_S.grad.abs().max() < 100


@pytest.mark.parametrize('loss_type, potentials, default_weight', CASES, ids=IDS)
def test_half_precision_inputs_compute_in_float32(loss_type, potentials, default_weight):
    torch.manual_seed(3)
    preds_S, preds_T = torch.randn(6, 32).half(), torch.randn(6, 64).half()
    loss = loss_type()(preds_S, preds_T)
    assert loss.dtype == torch.float32
    expected = reference_rkd(potentials, preds_S.double(), preds_T.double(), default_weight)
    torch.testing.assert_close(loss.double(), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('loss_type', [DistanceWiseRKD, AngleWiseRKD], ids=IDS)
def test_batch_mismatch_names_both_shapes(loss_type):
    with pytest.raises(ValueError, match=r'student predictions \(4, 512\) and teacher predictions \(2, 512\)'):
        loss_type()(torch.randn(4, 512), torch.randn(2, 512))
