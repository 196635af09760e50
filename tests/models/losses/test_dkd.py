import pytest
import torch
import torch.nn.functional as F
from mmpretrain.models.heads import LinearClsHead
from mmpretrain.structures import DataSample
from torch import nn

from mmdistkd.models.distillers import ConfigurableDistiller
from mmdistkd.models.losses.dkd import DKDLoss, class_targets

NUM_CLASSES = 5


def reference_dkd(logits_S, logits_T, labels, tau, alpha, beta, reduction):
    """The paper's TCKD and NCKD from probabilities, one sample at a time, in float64. Reductions as MMRazor's
    ``F.kl_div(..., size_average=False, reduction=r)`` behave: 'batchmean' divides the sum by N, others sum;
    'none' keeps per-sample values."""
    per_sample = []
    for s, t, y in zip(logits_S.double(), logits_T.double(), labels.tolist()):
        p_S, p_T = torch.softmax(s / tau, 0), torch.softmax(t / tau, 0)
        b_S, b_T = torch.stack([p_S[y], 1 - p_S[y]]), torch.stack([p_T[y], 1 - p_T[y]])
        tckd = (b_T * (b_T / b_S).log()).sum()
        others = [c for c in range(len(s)) if c != y]
        q_S, q_T = p_S[others] / p_S[others].sum(), p_T[others] / p_T[others].sum()
        nckd = (q_T * (q_T / q_S).log()).sum()
        per_sample.append(tau**2 * (alpha * tckd + beta * nckd))
    per_sample = torch.stack(per_sample)
    if reduction == 'none':
        return per_sample
    return per_sample.sum() / (len(per_sample) if reduction == 'batchmean' else 1)


def mmrazor_dkd(logits_S, logits_T, labels, tau, alpha, beta, reduction):
    """MMRazor's computation (target logit pushed down by 1000, log of summed probabilities, ``F.kl_div`` with
    ``size_average=False``), in float64: the scale a converted config trains at."""
    s, t = logits_S.double() / tau, logits_T.double() / tau
    is_target = F.one_hot(labels, s.shape[1]).double()

    def binary(p):
        return torch.stack([(p * is_target).sum(1), (p * (1 - is_target)).sum(1)], 1)

    with pytest.warns(UserWarning):
        tckd = F.kl_div(binary(s.softmax(1)).log(), binary(t.softmax(1)), size_average=False, reduction=reduction)
        nckd = F.kl_div((s - 1000 * is_target).log_softmax(1), (t - 1000 * is_target).softmax(1),
                        size_average=False, reduction=reduction)
    return tau**2 * (alpha * tckd + beta * nckd)


def random_batch(num_samples=6, seed=0):
    generator = torch.Generator().manual_seed(seed)
    logits_S = (3 * torch.randn(num_samples, NUM_CLASSES, generator=generator)).requires_grad_()
    logits_T = (3 * torch.randn(num_samples, NUM_CLASSES, generator=generator)).requires_grad_()
    labels = torch.randint(NUM_CLASSES, (num_samples,), generator=generator)
    return logits_S, logits_T, labels


@pytest.mark.parametrize('reduction', ['batchmean', 'sum', 'mean', 'none'])
@pytest.mark.parametrize('tau', [1.0, 4.0])
def test_value_and_student_gradient_match_float64_reference(reduction, tau):
    logits_S, logits_T, labels = random_batch()
    loss = DKDLoss(tau=tau, alpha=0.7, beta=2.0, reduction=reduction, loss_weight=0.5)(logits_S, logits_T, labels)
    reference_S = logits_S.detach().double().requires_grad_()
    expected = 0.5 * reference_dkd(reference_S, logits_T.detach(), labels, tau, 0.7, 2.0, reduction)
    torch.testing.assert_close(loss.double(), expected.detach(), rtol=1e-5, atol=1e-6)
    # Per-sample values of 'none' get distinct weights so that each one's gradient is checked.
    weights = torch.arange(1.0, 1 + loss.numel()).reshape(loss.shape)
    (loss * weights).sum().backward()
    (expected * weights.double()).sum().backward()
    torch.testing.assert_close(logits_S.grad.double(), reference_S.grad, rtol=1e-5, atol=1e-6)
    assert logits_T.grad is None


@pytest.mark.parametrize('reduction', ['batchmean', 'sum', 'mean'])
def test_reductions_give_mmrazors_scale(reduction):
    """MMRazor's DKD config uses reduction='mean', which its size_average=False turns into a sum."""
    logits_S, logits_T, labels = random_batch(seed=1)
    loss = DKDLoss(tau=2.0, beta=0.5, reduction=reduction)(logits_S, logits_T, labels)
    expected = mmrazor_dkd(logits_S.detach(), logits_T.detach(), labels, 2.0, 1.0, 0.5, reduction)
    torch.testing.assert_close(loss.double(), expected, rtol=1e-5, atol=1e-6)


def data_samples_of(labels):
    return [DataSample().set_gt_label(int(label)) for label in labels]


@pytest.mark.parametrize('form', ['indices', 'column', 'one_hot_scores', 'data_samples'])
def test_accepts_every_form_of_hard_labels(form):
    logits_S, logits_T, labels = random_batch()
    given = {'indices': labels, 'column': labels[:, None], 'one_hot_scores': F.one_hot(labels, NUM_CLASSES).float(),
             'data_samples': data_samples_of(labels)}[form]
    loss = DKDLoss(beta=2.0)(logits_S, logits_T, given)
    expected = reference_dkd(logits_S.detach(), logits_T.detach(), labels, 1.0, 1.0, 2.0, 'batchmean')
    torch.testing.assert_close(loss.double(), expected, rtol=1e-5, atol=1e-6)


def test_mixed_scores_take_their_argmax_as_the_target_class():
    logits_S, logits_T, labels = random_batch()
    mixed = 0.6 * F.one_hot(labels, NUM_CLASSES) + 0.4 * F.one_hot((labels + 1) % NUM_CLASSES, NUM_CLASSES)
    samples = [DataSample().set_gt_score(score) for score in mixed]
    expected = reference_dkd(logits_S.detach(), logits_T.detach(), labels, 1.0, 1.0, 1.0, 'batchmean')
    for given in (mixed, samples):
        torch.testing.assert_close(DKDLoss()(logits_S, logits_T, given).double(), expected, rtol=1e-5, atol=1e-6)


class Classifier(nn.Module):
    """Just the part of an mmpretrain classifier that MMRazor's DKD config records: ``head``."""

    def __init__(self):
        super().__init__()
        self.head = LinearClsHead(num_classes=NUM_CLASSES, in_channels=8)


def test_mmrazor_config_mapping_hands_the_head_losss_labels_to_gt_labels():
    """``ModuleInputs`` on ``head.loss_module`` with ``data_idx=1`` records the labels ``ClsHead.loss`` builds
    from the data samples (mmpretrain 1.2)."""
    torch.manual_seed(0)
    student, teacher = Classifier(), Classifier()
    distiller = ConfigurableDistiller(
        student_recorders=dict(fc=dict(type='ModuleOutputs', source='head.fc'),
                               gt_labels=dict(type='ModuleInputs', source='head.loss_module')),
        teacher_recorders=dict(fc=dict(type='ModuleOutputs', source='head.fc')),
        distill_losses=dict(loss_dkd=dict(type='DKDLoss', tau=1, beta=0.5, loss_weight=1, reduction='mean')),
        loss_forward_mappings=dict(loss_dkd=dict(
            preds_S=dict(from_student=True, recorder='fc'),
            preds_T=dict(from_student=False, recorder='fc'),
            gt_labels=dict(recorder='gt_labels', from_student=True, data_idx=1))))
    distiller.prepare_from_student(student)
    distiller.prepare_from_teacher(teacher)
    distiller.check_num_classes(student, teacher)
    feats, labels = torch.randn(4, 8), torch.tensor([0, 3, 3, 1])
    with distiller.student_recorders, distiller.teacher_recorders:
        student.head.loss((feats, ), data_samples_of(labels))
        teacher.head((feats + 1, ))
    loss = distiller.compute_distill_losses()['loss_dkd']
    expected = reference_dkd(student.head.fc(feats).detach(), teacher.head.fc(feats + 1).detach(), labels,
                             1.0, 1.0, 0.5, 'sum')
    torch.testing.assert_close(loss.double(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('case', ['constant', 'saturated', 'single_sample', 'one_class_present'])
def test_degenerate_inputs_give_finite_values_and_gradients(case):
    logits_S, logits_T, labels = random_batch()
    if case == 'constant':
        logits_S, logits_T = torch.zeros(3, NUM_CLASSES, requires_grad=True), torch.zeros(3, NUM_CLASSES)
        labels = torch.tensor([0, 1, 2])
    elif case == 'saturated':  # probabilities of exactly 0 and 1 in float32: MMRazor takes log(0) here
        logits_S = torch.tensor([[1e4, 0, 0, 0, -1e4], [0, 0, 0, 0, 5e3]], requires_grad=True)
        logits_T, labels = torch.tensor([[-1e4, 0, 0, 0, 1e4], [0, 0, 0, 0, 5e3]]), torch.tensor([0, 4])
    elif case == 'single_sample':
        logits_S, logits_T, labels = logits_S[:1].detach().requires_grad_(), logits_T[:1], labels[:1]
    else:
        labels = torch.full_like(labels, 2)
    loss = DKDLoss(tau=2.0)(logits_S, logits_T, labels)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits_S.grad).all()
    if case == 'constant':
        assert loss.item() == 0
    if case in ('single_sample', 'one_class_present'):
        expected = reference_dkd(logits_S.detach(), logits_T.detach(), labels, 2.0, 1.0, 1.0, 'batchmean')
        torch.testing.assert_close(loss.double(), expected, rtol=1e-5, atol=1e-6)


def test_half_precision_inputs_are_computed_in_float32():
    logits_S, logits_T, labels = random_batch()
    half_S, half_T = logits_S.detach().half(), logits_T.detach().half()
    loss = DKDLoss(tau=4.0)(half_S, half_T, labels)
    assert loss.dtype == torch.float32
    expected = reference_dkd(half_S, half_T, labels, 4.0, 1.0, 1.0, 'batchmean')
    torch.testing.assert_close(loss.double(), expected, rtol=1e-5, atol=1e-6)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        assert DKDLoss()(logits_S, logits_T, labels).dtype == torch.float32


def test_wrong_inputs_fail_with_messages_naming_them():
    logits_S, logits_T, labels = random_batch()
    with pytest.raises(ValueError, match=r'\(6, 5\).*\(6, 4\)'):
        DKDLoss()(logits_S, logits_T[:, :4], labels)
    with pytest.raises(ValueError, match='C >= 2'):
        DKDLoss()(logits_S[:, :1], logits_T[:, :1], torch.zeros(6, dtype=torch.long))
    with pytest.raises(ValueError, match='6 samples of logits but gt_labels of shape'):
        DKDLoss()(logits_S, logits_T, labels[:4])
    with pytest.raises(ValueError, match=r'\[0, 5\).*from 0 to 5'):
        DKDLoss()(logits_S, logits_T, torch.tensor([0, 1, 2, 3, 4, 5]))
    with pytest.raises(ValueError, match='integer tensor'):
        DKDLoss()(logits_S, logits_T, labels.float())
    with pytest.raises(TypeError, match='data samples'):
        DKDLoss()(logits_S, logits_T, labels.tolist())
    with pytest.raises(ValueError, match='reduction'):
        DKDLoss(reduction='avg')


def test_class_targets_of_data_samples_follow_mmpretrains_head():
    """``ClsHead`` stacks ``gt_score`` when the samples have one (batch augments), else concatenates labels."""
    scores = torch.tensor([[0.3, 0.7, 0.0], [1.0, 0.0, 0.0]])
    samples = [DataSample().set_gt_label(1).set_gt_score(score) for score in scores]
    torch.testing.assert_close(class_targets(samples, 2, 3), scores)
    torch.testing.assert_close(class_targets(data_samples_of([2, 0]), 2, 3),
                               torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]))
