"""What the teacher sees and whether it teaches, with real mmpretrain classifiers: a teacher config without a data
preprocessor takes the student's normalisation (not the registry default's raw pixels), a teacher left
unnormalised beside a normalised student is an error naming the key, differing statistics are logged, a
distillation loss mmengine would not optimise is refused, and the first step's teacher check warns about a random
or mismatched teacher and not about a good one."""
from unittest import mock

import pytest
import torch
from mmengine.logging import MessageHub
from mmpretrain.structures import DataSample

from test_single_teacher_distill import NUM_CLASSES, batch, build, classifier, kd_distiller

CIFAR_MEAN, CIFAR_STD = (129.3, 124.1, 112.4), (68.2, 65.4, 70.4)


def without_preprocessor(model_cfg):
    return {key: value for key, value in model_cfg.items() if key != 'data_preprocessor'}


def teacher_backbone_input(model, data):
    seen = []
    hook = model.teacher.backbone.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    model.loss(**model.data_preprocessor(data, True))
    hook.remove()
    return seen[0]


def raw_normalised(data, mean, std):
    images = torch.stack(data['inputs']).float()
    return (images - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


@pytest.mark.parametrize('given_by', ['student', 'top-level'])
def test_teacher_without_a_preprocessor_sees_the_students_normalisation(given_by):
    student = classifier(mean=CIFAR_MEAN, std=CIFAR_STD, to_rgb=False)
    if given_by == 'student':
        model = build(student=student, teacher=without_preprocessor(classifier(depth=34)))
    else:  # the Runner hands a config's top-level data_preprocessor (mmpretrain's layout) to the model
        model = build(student=without_preprocessor(student), teacher=without_preprocessor(classifier(depth=34)),
                      data_preprocessor=student['data_preprocessor'])
    assert model.teacher.data_preprocessor.mean.flatten().tolist() == pytest.approx(CIFAR_MEAN)
    data = batch()
    torch.testing.assert_close(teacher_backbone_input(model, data), raw_normalised(data, CIFAR_MEAN, CIFAR_STD))


def test_teacher_that_would_see_raw_pixels_beside_a_normalised_student_is_an_error():
    raw_teacher = dict(classifier(depth=34), data_preprocessor=dict(type='ClsDataPreprocessor'))
    with pytest.raises(ValueError, match=r'0-255 pixels.*allow_unnormalised_teacher=True') as error:
        build(teacher=raw_teacher)
    assert 'data_preprocessor=dict(mean=' in str(error.value)
    model = build(teacher=raw_teacher, allow_unnormalised_teacher=True)  # said on purpose: accepted
    data = batch()
    torch.testing.assert_close(teacher_backbone_input(model, data), torch.stack(data['inputs']).float())


def test_differing_statistics_are_logged_with_both():
    with mock.patch('mmdistkd.models.algorithms.frozen_teacher.print_log') as log:
        build(teacher=classifier(depth=34, mean=CIFAR_MEAN, std=CIFAR_STD, to_rgb=False))
    message = log.call_args.args[0]
    assert 'differs' in message and '123.675' in message and '129.3' in message and 'BGR<->RGB' in message
    with mock.patch('mmdistkd.models.algorithms.frozen_teacher.print_log') as log:
        build()  # the same statistics: nothing to say
    log.assert_not_called()


def test_distillation_loss_whose_name_mmengine_would_not_optimise_is_refused():
    distiller = kd_distiller()
    distiller['distill_losses'] = dict(kd=distiller['distill_losses'].pop('loss_kd'))
    distiller['loss_forward_mappings'] = dict(kd=distiller['loss_forward_mappings'].pop('loss_kd'))
    with pytest.raises(ValueError, match=r"distill_losses\['kd'\].*never train the student.*\"loss_kd\""):
        build(distiller=distiller)


# ---------------------------------------------------------------------- the teacher check of the first step
def one_class_batch(label=0, n=4):
    data = batch(n)
    data['data_samples'] = [DataSample().set_gt_label(label) for _ in range(n)]
    return data


def teacher_predicting(model, label):
    """Makes the teacher predict ``label`` for every image, confidently."""
    fc = model.teacher.head.fc
    with torch.no_grad():
        fc.weight.zero_()
        fc.bias.fill_(-10.0)
        fc.bias[label] = 10.0


def check_messages(model, data):
    with mock.patch('mmdistkd.models.algorithms.teacher_check.print_log') as log:
        model.loss(**model.data_preprocessor(data, True))
    return [(call.args[0], call.kwargs.get('level')) for call in log.call_args_list]


def warnings_in(messages):
    return [text for text, level in messages if level is not None]


def test_check_reports_a_good_teacher_without_warning():
    model = build()
    teacher_predicting(model, label=0)
    messages = check_messages(model, one_class_batch(label=0))
    (report, _), = messages
    assert "the teacher's task loss 0.0000, top-1 on the batch 1.000" in report
    assert not warnings_in(messages)


@pytest.mark.parametrize('teacher', ['random', 'other class order'])
def test_check_warns_about_a_teacher_no_better_than_the_untrained_student(teacher):
    model = build()
    if teacher == 'other class order':
        teacher_predicting(model, label=(0 + 1) % NUM_CLASSES)
    warning, = warnings_in(check_messages(model, one_class_batch(label=0)))
    assert 'no better than the untrained student' in warning and 'teacher_ckpt' in warning


def test_check_runs_once_and_not_after_resuming_or_for_a_trainable_teacher():
    model = build()
    assert check_messages(model, batch())
    assert not check_messages(model, batch())  # once per run
    MessageHub.get_current_instance().update_info('iter', 100)  # a resumed run's first step
    assert not check_messages(build(), batch())
    assert not check_messages(build(teacher_trainable=True), batch())
    assert not check_messages(build(check_teacher=False), batch())


def test_check_that_cannot_compute_the_teachers_loss_says_so_and_training_goes_on():
    model = build()
    with mock.patch.object(model.teacher, 'loss', side_effect=KeyError('train_cfg')):
        messages = check_messages(model, batch())
    assert 'skipped' in warnings_in(messages)[0] and 'train_cfg' in warnings_in(messages)[0]
