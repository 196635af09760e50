"""How SingleTeacherDistill runs its teacher in a training step: before the student (peak memory),
teacher_autocast and teacher_channels_last (reduced precision and channels-last memory format, the
distillation losses still in fp32). (8x8 inputs: CPUs without native bf16 / fp16 convolutions emulate them
slowly.)"""
import pytest
import torch

from test_single_teacher_distill import batch, build, classifier


def small_batch(model):
    return model.data_preprocessor(batch(size=8), True)


def teacher_logits_of_a_training_step(model):
    """The teacher's logits in one ``model.loss`` call, and the losses."""
    captured = []
    handle = model.teacher.head.fc.register_forward_hook(lambda module, inputs, output: captured.append(output))
    try:
        losses = model.loss(**small_batch(model))
    finally:
        handle.remove()
    return captured[0], losses


@pytest.mark.parametrize('precision, dtype', [('bf16', torch.bfloat16), ('fp16', torch.float16)])
def test_teacher_autocast_runs_the_teacher_in_that_precision_and_the_losses_in_fp32(precision, dtype):
    model = build(teacher=classifier(depth=18), teacher_autocast=precision)
    teacher_logits, losses = teacher_logits_of_a_training_step(model)
    assert teacher_logits.dtype == dtype
    assert losses['loss_kd'].dtype == torch.float32 and torch.isfinite(losses['loss_kd'])
    # Only the teacher: the student's own losses and gradients stay fp32.
    assert losses['student.loss'].dtype == torch.float32
    losses['loss_kd'].backward()
    assert model.student.head.fc.weight.grad.dtype == torch.float32


def test_teacher_channels_last_keeps_the_format_through_moves_and_matches_contiguous():
    torch.manual_seed(0)
    contiguous = build()
    torch.manual_seed(0)
    channels_last = build(teacher_channels_last=True).cpu().float()

    def spatial_conv_weights(module):
        return [m.weight for m in module.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size != (1, 1)]

    assert all(w.is_contiguous(memory_format=torch.channels_last) for w in spatial_conv_weights(channels_last.teacher))
    assert not any(w.is_contiguous(memory_format=torch.channels_last)
                   for w in spatial_conv_weights(channels_last.student))
    logits_channels_last, _ = teacher_logits_of_a_training_step(channels_last)
    logits_contiguous, _ = teacher_logits_of_a_training_step(contiguous)
    torch.testing.assert_close(logits_channels_last, logits_contiguous, atol=1e-4, rtol=1e-4)


def test_unknown_teacher_autocast_is_rejected():
    with pytest.raises(ValueError, match="teacher_autocast='fp8'"):
        build(teacher_autocast='fp8')


def test_teacher_runs_before_the_student_so_its_activations_are_freed_first():
    model = build(check_teacher=False)  # the first step's teacher check runs the teacher once more, after both
    calls = []
    handles = [module.register_forward_pre_hook(lambda module, inputs, role=role: calls.append(role))
               for role, module in (('teacher', model.teacher.backbone), ('student', model.student.backbone))]
    try:
        model.loss(**small_batch(model))
    finally:
        for handle in handles:
            handle.remove()
    assert calls == ['teacher', 'student']
