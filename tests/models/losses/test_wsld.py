import math

import pytest
import torch
import torch.nn.functional as F
from mmpretrain.models.heads import LinearClsHead
from mmpretrain.structures import DataSample
from torch import nn

from mmdistkd.models.distillers import ConfigurableDistiller
from mmdistkd.models.losses.wsld import WSLD

NUM_CLASSES = 5


def reference_wsld(logits_S, logits_T, targets, tau):
    """The paper's weighted soft-label loss, one sample at a time in float64; ``targets`` are one target
    distribution per sample (one-hot rows for hard labels). The weight is a constant (computed in plain floats)."""
    total = 0
    for s, t, y in zip(logits_S.double(), logits_T.double(), targets.double()):
        p_S_tau, p_T_tau = torch.softmax(s / tau, 0), torch.softmax(t / tau, 0)
        soft_ce = -(p_T_tau * p_S_tau.log()).sum()
        ce_S = -sum(float(y_c) * math.log(float(p_c)) for y_c, p_c in zip(y, torch.softmax(s.detach(), 0)))
        ce_T = -sum(float(y_c) * math.log(float(p_c)) for y_c, p_c in zip(y, torch.softmax(t.detach(), 0)))
        weight = 1 - math.exp(-max(ce_S / (ce_T + 1e-7), 0))
        total = total + weight * soft_ce
    return tau**2 * total / len(logits_S)


def random_batch(num_samples=6, seed=0):
    generator = torch.Generator().manual_seed(seed)
    logits_S = (2 * torch.randn(num_samples, NUM_CLASSES, generator=generator)).requires_grad_()
    logits_T = (2 * torch.randn(num_samples, NUM_CLASSES, generator=generator)).requires_grad_()
    labels = torch.randint(NUM_CLASSES, (num_samples,), generator=generator)
    return logits_S, logits_T, labels


@pytest.mark.parametrize('tau', [1.0, 2.0])
def test_value_and_student_gradient_match_float64_reference(tau):
    logits_S, logits_T, labels = random_batch()
    loss = WSLD(tau=tau, loss_weight=2.5, num_classes=NUM_CLASSES)(logits_S, logits_T, labels)
    loss.backward()
    reference_S = logits_S.detach().double().requires_grad_()
    expected = 2.5 * reference_wsld(reference_S, logits_T.detach(), F.one_hot(labels, NUM_CLASSES), tau)
    expected.backward()
    torch.testing.assert_close(loss.double(), expected.detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(logits_S.grad.double(), reference_S.grad, rtol=1e-5, atol=1e-6)
    assert logits_T.grad is None


def test_mixup_scores_weight_samples_by_soft_target_cross_entropies():
    logits_S, logits_T, labels = random_batch(seed=1)
    mixed = 0.7 * F.one_hot(labels, NUM_CLASSES) + 0.3 * F.one_hot(labels.flip(0), NUM_CLASSES)
    expected = reference_wsld(logits_S.detach(), logits_T.detach(), mixed, 2.0)
    loss_of_samples = WSLD(tau=2.0, num_classes=NUM_CLASSES)(
        logits_S, logits_T, [DataSample().set_gt_score(score) for score in mixed])
    torch.testing.assert_close(loss_of_samples.double(), expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(WSLD(tau=2.0, num_classes=NUM_CLASSES)(logits_S, logits_T, mixed.float()).double(),
                               expected, rtol=1e-5, atol=1e-6)


def test_only_samples_the_student_fits_worse_than_the_teacher_are_distilled():
    """The bias-variance argument: the weight ``1 - exp(-CE_S / CE_T)`` is near 0 where the student already fits
    the label far better than the teacher, near 1 where the teacher fits it far better."""
    logits_T = torch.tensor([[0.0, 3.0, 0.0], [3.0, 0.0, 0.0]])
    logits_S = torch.tensor([[8.0, 0.0, 0.0], [0.0, 8.0, 0.0]])
    loss = WSLD(num_classes=3)(logits_S, logits_T, torch.tensor([0, 0]))
    soft_ce_of_second = -(logits_T[1].softmax(0) * logits_S[1].log_softmax(0)).sum()
    torch.testing.assert_close(loss, soft_ce_of_second / 2, rtol=1e-3, atol=0)


class Classifier(nn.Module):
    """Just the part of an mmpretrain classifier that MMRazor's WSLD config records: ``head``."""

    def __init__(self):
        super().__init__()
        self.head = LinearClsHead(num_classes=NUM_CLASSES, in_channels=8)


@pytest.mark.parametrize('batch_augmented', [False, True])
def test_mmrazor_config_mapping_hands_the_head_losss_targets_to_gt_labels(batch_augmented):
    """``ModuleInputs`` on ``head.loss_module``, ``data_idx=1``: mmpretrain 1.2's ``ClsHead.loss`` hands its loss
    the labels, or the ``gt_score`` rows under batch augments (mixup, cutmix)."""
    torch.manual_seed(0)
    student, teacher = Classifier(), Classifier()
    distiller = ConfigurableDistiller(
        student_recorders=dict(fc=dict(type='ModuleOutputs', source='head.fc'),
                               gt_labels=dict(type='ModuleInputs', source='head.loss_module')),
        teacher_recorders=dict(fc=dict(type='ModuleOutputs', source='head.fc')),
        distill_losses=dict(loss_wsld=dict(type='WSLD', tau=2, loss_weight=2.5, num_classes=NUM_CLASSES)),
        loss_forward_mappings=dict(loss_wsld=dict(
            student=dict(recorder='fc', from_student=True),
            teacher=dict(recorder='fc', from_student=False),
            gt_labels=dict(recorder='gt_labels', from_student=True, data_idx=1))))
    distiller.prepare_from_student(student)
    distiller.prepare_from_teacher(teacher)
    feats, labels = torch.randn(4, 8), torch.tensor([0, 3, 3, 1])
    targets = F.one_hot(labels, NUM_CLASSES).float()
    if batch_augmented:
        targets = 0.8 * targets + 0.2 * targets.roll(1, 0)
        samples = [DataSample().set_gt_label(int(label)).set_gt_score(row) for label, row in zip(labels, targets)]
    else:
        samples = [DataSample().set_gt_label(int(label)) for label in labels]
    with distiller.student_recorders, distiller.teacher_recorders:
        student.head.loss((feats, ), samples)
        teacher.head((feats + 1, ))
    loss = distiller.compute_distill_losses()['loss_wsld']
    expected = 2.5 * reference_wsld(student.head.fc(feats).detach(), teacher.head.fc(feats + 1).detach(), targets, 2)
    torch.testing.assert_close(loss.double(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('case', ['constant', 'teacher_certain', 'saturated', 'single_sample', 'one_class_present'])
def test_degenerate_inputs_give_finite_values_and_gradients(case):
    logits_S, logits_T, labels = random_batch()
    if case == 'constant':
        logits_S, logits_T = torch.zeros(3, NUM_CLASSES, requires_grad=True), torch.zeros(3, NUM_CLASSES)
        labels = torch.tensor([0, 1, 2])
    elif case == 'teacher_certain':  # CE_T is exactly 0 in float32
        logits_T = torch.tensor([[200.0, 0, 0, 0, 0]]).repeat(6, 1)
        labels = torch.zeros(6, dtype=torch.long)
    elif case == 'saturated':
        logits_S = torch.tensor([[1e4, 0, 0, 0, -1e4]], requires_grad=True)
        logits_T, labels = torch.tensor([[-1e4, 0, 0, 0, 1e4]]), torch.tensor([4])
    elif case == 'single_sample':
        logits_S, logits_T, labels = logits_S[:1].detach().requires_grad_(), logits_T[:1], labels[:1]
    else:
        labels = torch.full_like(labels, 3)
    loss = WSLD(tau=2.0, num_classes=NUM_CLASSES)(logits_S, logits_T, labels)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits_S.grad).all()
    if case in ('single_sample', 'one_class_present'):
        expected = reference_wsld(logits_S.detach(), logits_T.detach(), F.one_hot(labels, NUM_CLASSES), 2.0)
        torch.testing.assert_close(loss.double(), expected, rtol=1e-5, atol=1e-6)


def test_half_precision_inputs_are_computed_in_float32():
    logits_S, logits_T, labels = random_batch()
    half_S, half_T = logits_S.detach().half(), logits_T.detach().half()
    loss = WSLD(tau=2.0, num_classes=NUM_CLASSES)(half_S, half_T, labels)
    assert loss.dtype == torch.float32
    expected = reference_wsld(half_S, half_T, F.one_hot(labels, NUM_CLASSES), 2.0)
    torch.testing.assert_close(loss.double(), expected, rtol=1e-5, atol=1e-6)


def test_wrong_inputs_fail_with_messages_naming_them():
    logits_S, logits_T, labels = random_batch()
    with pytest.raises(ValueError, match=r'num_classes=1000.*5 classes.*set num_classes=5'):
        WSLD()(logits_S, logits_T, labels)
    with pytest.raises(ValueError, match=r'\(6, 5\).*\(5, 5\)'):
        WSLD(num_classes=NUM_CLASSES)(logits_S, logits_T[:5], labels)
    with pytest.raises(ValueError, match='6 samples of logits'):
        WSLD(num_classes=NUM_CLASSES)(logits_S, logits_T, labels[:3])
