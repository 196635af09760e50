"""Reduced precision without a GPU: distillation steps under CPU autocast (bf16) for KD, DIST, DPK and FGD on the
demo configs at reduced size (classification, detection and segmentation), the teacher alone in bf16 / fp16
(``teacher_autocast``), and the shared GradScaler of DistillOptimWrapperDict when the student's gradients
overflow (tests/engine/test_distill_optim_wrapper.py covers the shared scale, the distiller's overflow and AMP in
a Runner).

Tolerances, relative to the fp32 value on the same batch and weights: bf16 keeps 8 significant bits (rounding
2^-9 = 0.2% per operation), and a forward through about 20 layers compounds it to about 1% (measured: at most
0.3% for KD, DPK and the task losses, 1.1% for FGD on P6); hence ``BF16_RTOL = 3e-2``. DIST gets ``0.1``
(measured 5%): the heads are untrained, so the class probabilities are nearly uniform and Pearson correlations
compare their differences, of the size of bf16's rounding of the logits; on the segmentation demo (every pixel
a sample) DIST moved 0.2% and the pixel accuracy 0.8%. fp16 keeps 11 bits (8 times finer).
"""
import pytest
import torch
from mmengine.optim import build_optim_wrapper

from engine.test_distill_optim_wrapper import batch, build_model, cpu_amp, separate_optim_wrapper
from test_device import demo_model, preprocessed_batch

BF16_RTOL = 3e-2
DIST_BF16_RTOL = 0.1
FP16_RTOL = 5e-3
# method -> (demo config, reduced input size)
METHODS = {
    'kd': ('kd_resnet34_resnet18_demo_cls', 32),
    'dist': ('dist_resnet34_resnet18_demo_cls', 32),
    'dpk': ('dpk_resnet34_resnet18_demo_cls', 32),
    # DPK + FGD on P3-P5, plain FGD on P6-P7. 128 pixels, not 64: torch 2.14's CPU bf16 convolution returns a
    # garbage weight gradient in about 1 call of 4 for a 3x3 stride-2 conv on a 1x1 input (P7's conv on a 64-pixel
    # image's 1x1 P6; measured: 51 of 200 calls, none on 2x2 inputs), which no code of ours touches.
    'dpk_fgd': ('dpk_retinanet_r34_r18_demo_det', 128),
    'dist_seg': ('dist_deeplabv3_r34_r18_demo_seg', 64),  # every pixel a sample, decode and auxiliary heads
}


def logged_losses(model, data, precision):
    """The step's logged values (each loss, its levels summed) and the total, under ``precision``, with the
    same DPK token masks every time; also the dtypes of the student's and the teacher's backbone outputs."""
    dtypes = {}

    def keep_dtype(name):
        def hook(module, inputs, outputs):
            dtypes.setdefault(name, outputs[-1].dtype)
        return hook

    handles = [side.backbone.register_forward_hook(keep_dtype(name))
               for name, side in (('student', model.student), ('teacher', model.teacher))]
    torch.manual_seed(1)
    try:
        with precision:
            loss, log_vars = model.parse_losses(model.loss(**data))
    finally:
        for handle in handles:
            handle.remove()
    return loss, log_vars, dtypes


@pytest.mark.parametrize('method', list(METHODS))
def test_bf16_autocast_step_is_finite_and_close_to_fp32(method):
    config, size = METHODS[method]
    model = demo_model(config)
    data = preprocessed_batch(model, size)
    _, fp32, _ = logged_losses(model, data, torch.autocast('cpu', enabled=False))
    loss, bf16, dtypes = logged_losses(model, data, torch.autocast('cpu', dtype=torch.bfloat16))
    assert dtypes == dict(student=torch.bfloat16, teacher=torch.bfloat16)
    distill_keys = [key for key in bf16 if key != 'loss' and not key.startswith('student.')]
    assert distill_keys and all(bf16[key].dtype == torch.float32 for key in distill_keys)  # our losses: fp32
    rtol = DIST_BF16_RTOL if method.startswith('dist') else BF16_RTOL
    for key, value in bf16.items():
        assert torch.isfinite(value), key
        torch.testing.assert_close(value, fp32[key], rtol=rtol, atol=0, msg=key)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(grad).all() for grad in grads)


@pytest.mark.parametrize('precision, dtype, rtol', [('bf16', torch.bfloat16, BF16_RTOL),
                                                    ('fp16', torch.float16, FP16_RTOL)])
def test_teacher_autocast_changes_only_the_teachers_precision(precision, dtype, rtol):
    """``teacher_autocast`` (FrozenTeacher.run): the teacher's forward in ``dtype``, the student's in fp32 (its
    loss bit-identical to the fp32 teacher's step), the distillation loss close to the fp32 teacher's."""
    config, size = METHODS['kd']
    reference = demo_model(config)
    data = preprocessed_batch(reference, size)
    _, fp32, _ = logged_losses(reference, data, torch.autocast('cpu', enabled=False))
    model = demo_model(config, teacher_autocast=precision)
    _, reduced, dtypes = logged_losses(model, data, torch.autocast('cpu', enabled=False))
    assert dtypes == dict(student=torch.float32, teacher=dtype)
    assert torch.equal(reduced['student.loss'], fp32['student.loss'])
    assert reduced['loss_kd'].dtype == torch.float32 and torch.isfinite(reduced['loss_kd'])
    torch.testing.assert_close(reduced['loss_kd'], fp32['loss_kd'], rtol=rtol, atol=0)


def test_grad_scaler_unscales_each_optimizer_once_and_skips_only_the_overflowing_one(monkeypatch):
    """torch's CPU GradScaler shared by both wrappers, both clipping: an inf in the student's gradients skips
    the student's step and not the distiller's, each optimizer is unscaled exactly once (for its clipping; the
    scaler's step does not unscale again), and the scale halves once; the next clean step steps both."""
    cpu_amp(monkeypatch)
    model = build_model()
    wrappers = build_optim_wrapper(model, separate_optim_wrapper(
        type='AmpOptimWrapper', loss_scale=dict(init_scale=2.**10), clip_grad=dict(max_norm=1.0)))
    scaler = wrappers.loss_scaler
    unscaled = []
    unscale_grads = scaler._unscale_grads_
    monkeypatch.setattr(scaler, '_unscale_grads_', lambda optimizer, *args: unscaled.append(optimizer) or
                        unscale_grads(optimizer, *args))

    def one_step(overflow):
        unscaled.clear()
        before = {name: param.detach().clone() for name, param in model.named_parameters()}
        torch.manual_seed(2)
        loss, _ = model.parse_losses(model.loss(**model.data_preprocessor(batch(), True)))
        wrappers.backward(loss)
        if overflow:
            model.student.head.fc.weight.grad.view(-1)[0] = float('inf')
        wrappers.step()
        wrappers.zero_grad()
        return {part: any(not torch.equal(param, before[name]) for name, param in model.named_parameters()
                          if name.startswith(part + '.')) for part in ('architecture', 'distiller')}

    assert one_step(overflow=True) == dict(architecture=False, distiller=True)
    assert [id(optimizer) for optimizer in unscaled] == [id(wrappers[name].optimizer)
                                                         for name in ('architecture', 'distiller')]
    assert scaler.get_scale() == 2.**9
    assert one_step(overflow=False) == dict(architecture=True, distiller=True)
    assert len(unscaled) == 2 and scaler.get_scale() == 2.**9
