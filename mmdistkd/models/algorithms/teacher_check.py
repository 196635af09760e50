"""The teacher check of a run's first training step: the teacher's own task loss on that batch beside the
student's, in the log, and a warning when the teacher is no better than the untrained student.

A wrong ``teacher_ckpt``, a teacher fed the wrong normalisation or trained with another class order trains
without any error; its distillation losses just teach noise. Its task loss on the first batch shows it in
minutes: a teacher that loses to a student that has not trained yet is not teaching anything.
"""
import logging

import torch
from mmengine.logging import MessageHub, print_log


def total_task_loss(losses):
    """What mmengine's ``parse_losses`` optimises of a task-loss dict: the sum of the entries whose key contains
    ``'loss'`` (a tensor's mean, or the sum of a list's means), as a float."""
    total = 0.0
    for key, value in losses.items():
        if 'loss' not in key:
            continue
        values = value if isinstance(value, (list, tuple)) else [value]
        total += sum(float(v.detach().float().mean()) for v in values)
    return total


def is_first_iteration():
    """True at the first iteration of a run that is not resumed (mmengine's message hub counts iterations), and
    outside a Runner (no count)."""
    return MessageHub.get_current_instance().get_info('iter', 0) == 0


def batch_accuracy(logits, data_samples):
    """Top-1 accuracy of class scores ``logits (N, C)`` against the samples' ``gt_label`` (mmpretrain)."""
    labels = torch.stack([sample.gt_label.reshape(-1)[0] for sample in data_samples]).to(logits.device)
    return float((logits.argmax(dim=1) == labels).float().mean())


def check_teacher(frozen_teacher, inputs, data_samples, student_losses, classifies):
    """Logs the teacher's task loss (and, for a classifier, its top-1 accuracy) on this batch beside the
    student's task loss; warns when the teacher's loss is not below the student's. Returns the two losses
    (None for the teacher's when its loss cannot be computed, e.g. a model config without ``train_cfg``)."""
    teacher_losses = {}

    def teacher_loss(module, teacher_inputs, samples):
        teacher_losses.update(module(teacher_inputs, samples, mode='loss'))
        if classifies:
            teacher_losses['accuracy'] = batch_accuracy(module(teacher_inputs, samples, mode='tensor'), samples)

    student_loss = total_task_loss(student_losses)
    try:
        frozen_teacher.run(teacher_loss, inputs, data_samples)
    except Exception as error:  # the check must never stop training
        print_log(f'Teacher check skipped: the teacher\'s own task loss could not be computed on the first batch '
                  f'({type(error).__name__}: {error}).', logger='current', level=logging.WARNING)
        return student_loss, None
    accuracy = teacher_losses.pop('accuracy', None)
    teacher_loss_value = total_task_loss(teacher_losses)
    accuracy_text = '' if accuracy is None else f', top-1 on the batch {accuracy:.3f}'
    print_log(f'Teacher check on the first batch: the teacher\'s task loss {teacher_loss_value:.4f}'
              f'{accuracy_text}; the untrained student\'s {student_loss:.4f}.', logger='current')
    if not teacher_loss_value < student_loss:
        print_log(f'The teacher is no better than the untrained student on the first batch (task loss '
                  f'{teacher_loss_value:.4f} vs {student_loss:.4f}). Check teacher_ckpt (a random or wrong '
                  'checkpoint), the teacher\'s data_preprocessor (normalisation, BGR/RGB) and that it was trained '
                  'on the student\'s classes in the same order.', logger='current', level=logging.WARNING)
    return student_loss, teacher_loss_value
