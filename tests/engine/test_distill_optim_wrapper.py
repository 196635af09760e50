"""The distiller's modules on an optimizer of their own (SeparateDistillerOptimWrapperConstructor ->
DistillOptimWrapperDict), with a tiny mmpretrain student and teacher and a DPKLoss distiller on CPU: the exact
partition of the parameters, one step of each optimizer against the update rules written out, clipping and
accumulation, the shared AMP loss scale, and a real mmengine Runner (schedules per optimizer, kill-and-resume,
the exported student, single-optimizer configs unchanged)."""
import copy

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.hooks import Hook
from mmengine.optim import AmpOptimWrapper, OptimWrapper, OptimWrapperDict, build_optim_wrapper
from mmengine.registry import DefaultScope
from mmengine.runner import Runner
from mmpretrain.structures import DataSample

import mmdistkd  # noqa: F401
from mmdistkd.engine.optimizers import DistillOptimWrapperDict, optim_wrapper_cfg_for
from mmdistkd.registry import MODELS
from mmdistkd.testing import TinyImages, load_tool

NUM_CLASSES, NUM_IMAGES, BATCH_SIZE, SIZE = 4, 8, 4, 16
SGD_LR, SGD_MOMENTUM, SGD_DECAY = 0.01, 0.9, 1e-4
ADAMW_LR, ADAMW_BETAS, ADAMW_DECAY, ADAMW_EPS = 1e-3, (0.9, 0.95), 1e-4, 1e-8
CONSTRUCTOR = 'mmdistkd.SeparateDistillerOptimWrapperConstructor'


def classifier(width):
    """ResNet-18 for 16x16 inputs, ``width`` channels in the stem and first stage (8 * width at the end)."""
    return dict(
        type='ImageClassifier',
        backbone=dict(type='ResNet_CIFAR', depth=18, stem_channels=width, base_channels=width, out_indices=(3, )),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=NUM_CLASSES, in_channels=8 * width,
                  loss=dict(type='CrossEntropyLoss')),
        data_preprocessor=dict(type='ClsDataPreprocessor', mean=[128.] * 3, std=[64.] * 3))


def dpk_distiller():
    """DPK on layer3 (4 x 4 tokens): student 32 channels, teacher 64; one encoder and one decoder block."""
    layer3 = dict(type='ModuleOutputs', source='backbone.layer3')
    return dict(
        type='ConfigurableDistiller',
        student_recorders=dict(layer3=layer3), teacher_recorders=dict(layer3=layer3),
        distill_losses=dict(loss_dpk=dict(type='DPKLoss', student_channels=32, teacher_channels=64, encoder_depth=1,
                                          decoder_depth=1, num_heads=4, stage='layer3')),
        loss_forward_mappings=dict(loss_dpk=dict(preds_S=dict(from_student=True, recorder='layer3'),
                                                 preds_T=dict(from_student=False, recorder='layer3'))))


def build_model(seed=0, **kwargs):
    torch.manual_seed(seed)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return MODELS.build(dict(type='mmdistkd.SingleTeacherDistill', architecture=classifier(8),
                                 teacher=classifier(16), distiller=dpk_distiller(), **kwargs))


def separate_optim_wrapper(**extra):
    """The student on SGD, the distiller on AdamW without decay on norms and biases; ``extra`` (e.g.
    ``clip_grad``, ``accumulative_counts``, ``type``) goes to both entries, or to one as ``distiller_<key>``."""
    both = {k: v for k, v in extra.items() if not k.startswith(('architecture_', 'distiller_'))}
    only = lambda entry: {k[len(entry) + 1:]: v for k, v in extra.items() if k.startswith(entry + '_')}  # noqa: E731
    return dict(
        constructor=CONSTRUCTOR,
        architecture=dict(optimizer=dict(type='SGD', lr=SGD_LR, momentum=SGD_MOMENTUM, weight_decay=SGD_DECAY),
                          **both, **only('architecture')),
        distiller=dict(optimizer=dict(type='AdamW', lr=ADAMW_LR, betas=ADAMW_BETAS, weight_decay=ADAMW_DECAY,
                                      eps=ADAMW_EPS),
                       paramwise_cfg=dict(norm_decay_mult=0., bias_decay_mult=0.), **both, **only('distiller')))


def batch():
    generator = torch.Generator().manual_seed(1)
    return dict(inputs=[torch.randint(0, 256, (3, SIZE, SIZE), dtype=torch.uint8, generator=generator)
                        for _ in range(BATCH_SIZE)],
                data_samples=[DataSample().set_gt_label(i % NUM_CLASSES) for i in range(BATCH_SIZE)])


def optimizer_params(wrapper):
    return [param for group in wrapper.optimizer.param_groups for param in group['params']]


def weight_decay_of(wrapper, param):
    return next(group['weight_decay'] for group in wrapper.optimizer.param_groups
                if any(p is param for p in group['params']))


# ---------------------------------------------------------------------- the partition
@pytest.mark.parametrize('teacher_trainable', [False, True])
def test_every_trainable_parameter_is_in_exactly_one_wrapper(teacher_trainable):
    model = build_model(teacher_trainable=teacher_trainable)
    wrappers = build_optim_wrapper(model, separate_optim_wrapper())
    assert isinstance(wrappers, DistillOptimWrapperDict) and isinstance(wrappers, OptimWrapperDict)
    assert list(wrappers.keys()) == ['architecture', 'distiller']
    assert type(wrappers['architecture'].optimizer) is torch.optim.SGD
    assert type(wrappers['distiller'].optimizer) is torch.optim.AdamW
    student_side = list(model.architecture.parameters()) + (list(model.teacher.parameters()) if teacher_trainable
                                                            else [])
    assert {id(p) for p in optimizer_params(wrappers['architecture'])} == {id(p) for p in student_side}
    assert {id(p) for p in optimizer_params(wrappers['distiller'])} == {id(p) for p in model.distiller.parameters()}
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert trainable and all(
        sum(any(p is q for q in optimizer_params(w)) for w in wrappers.values()) == 1 for p in trainable)


def test_each_wrapper_has_its_own_paramwise_cfg():
    model = build_model()
    wrappers = build_optim_wrapper(model, separate_optim_wrapper(
        architecture_paramwise_cfg=dict(custom_keys={'architecture.head': dict(decay_mult=3.)})))
    distiller = wrappers['distiller']
    linears = [m for m in model.distiller.modules() if isinstance(m, torch.nn.Linear)]
    norms = [m for m in model.distiller.modules() if isinstance(m, torch.nn.LayerNorm)]
    assert linears and norms
    assert all(weight_decay_of(distiller, m.weight) == ADAMW_DECAY for m in linears)
    assert all(weight_decay_of(distiller, m.bias) == 0 for m in linears if m.bias is not None)
    assert all(weight_decay_of(distiller, p) == 0 for m in norms for p in m.parameters())
    # custom_keys use the whole model's parameter names, as with one optimizer
    architecture = wrappers['architecture']
    assert weight_decay_of(architecture, model.student.head.fc.weight) == pytest.approx(3 * SGD_DECAY)
    assert weight_decay_of(architecture, model.student.backbone.conv1.weight) == SGD_DECAY


def test_config_errors_say_what_to_change():
    model = build_model()
    with pytest.raises(ValueError, match=r"missing \['distiller'\]"):
        build_optim_wrapper(model, dict(constructor=CONSTRUCTOR, architecture=dict(optimizer=dict(type='SGD', lr=1))))
    with pytest.raises(ValueError, match='move paramwise_cfg into'):
        build_optim_wrapper(model, dict(separate_optim_wrapper(), paramwise_cfg=dict(norm_decay_mult=0.)))
    with pytest.raises(ValueError, match='same accumulative_counts'):
        build_optim_wrapper(model, separate_optim_wrapper(distiller_accumulative_counts=2))
    # A distiller without modules of its own (KD on logits) needs no optimizer.
    kd = dict(type='ConfigurableDistiller',
              student_recorders=dict(logits=dict(type='ModuleOutputs', source='head.fc')),
              teacher_recorders=dict(logits=dict(type='ModuleOutputs', source='head.fc')),
              distill_losses=dict(loss_kd=dict(type='KLDivergence')),
              loss_forward_mappings=dict(loss_kd=dict(preds_S=dict(from_student=True, recorder='logits'),
                                                      preds_T=dict(from_student=False, recorder='logits'))))
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        kd_model = MODELS.build(dict(type='mmdistkd.SingleTeacherDistill', architecture=classifier(8),
                                     teacher=classifier(8), distiller=kd))
    with pytest.raises(ValueError, match='no trainable parameters'):
        build_optim_wrapper(kd_model, separate_optim_wrapper())


def test_the_config_of_one_part_for_tools_that_optimize_it_alone():
    separate = separate_optim_wrapper()
    assert optim_wrapper_cfg_for(separate, 'architecture') == separate['architecture']
    assert optim_wrapper_cfg_for(separate, 'distiller') == separate['distiller']
    single = dict(optimizer=dict(type='SGD', lr=SGD_LR))
    assert optim_wrapper_cfg_for(single, 'distiller') == single


# ---------------------------------------------------------------------- one step, against the update rules
def gradients_of_one_loss(model, data):
    """Parameter -> gradient of the step's summed loss, computed apart from any optimizer."""
    torch.manual_seed(2)  # DPK's random token mask
    losses = model.loss(**model.data_preprocessor(data, True))
    loss, _ = model.parse_losses(losses)
    loss.backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    return grads


def clipped(grads, names, max_norm):
    """``grads`` of ``names`` scaled as clip_grad_norm_ does: by max_norm / (total norm + 1e-6) when above."""
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(grads[n]) for n in names]))
    factor = min(1.0, max_norm / (float(norm) + 1e-6))
    return {n: grads[n] * factor if n in names else g for n, g in grads.items()}


def expected_after_one_step(model, grads):
    """Parameters after one step by the update rules: SGD (first step: the momentum buffer is the decayed
    gradient) for the student, AdamW (first step: bias-corrected moments give g / (|g| + eps)) for the
    distiller, no decay on the distiller's norms and biases."""
    expected = {}
    for name, param in model.named_parameters():
        w, g = param.detach().clone(), grads.get(name)
        if g is None:
            expected[name] = w
        elif name.startswith('architecture.'):
            expected[name] = w - SGD_LR * (g + SGD_DECAY * w)
        else:
            decay = 0. if param.ndim == 1 else ADAMW_DECAY  # DPK's 1-d parameters are norm weights and biases
            expected[name] = w * (1 - ADAMW_LR * decay) - ADAMW_LR * g / (g.abs() + ADAMW_EPS)
    return expected


def assert_parameters(model, expected):
    for name, param in model.named_parameters():
        torch.testing.assert_close(param.detach(), expected[name], rtol=1e-5, atol=1e-6, msg=name)


@pytest.mark.parametrize('clip', [None, 'distiller'])
def test_one_train_step_steps_both_optimizers_by_their_own_rules(clip):
    reference = build_model()
    grads = gradients_of_one_loss(reference, batch())
    names = {'architecture': [n for n in grads if n.startswith('architecture.')],
             'distiller': [n for n in grads if n.startswith('distiller.')]}
    assert names['architecture'] and names['distiller']
    max_norm = 1e-3  # far below the gradient norm: the clip certainly acts
    if clip:
        grads = clipped(grads, names[clip], max_norm)
    expected = expected_after_one_step(reference, grads)

    model = build_model()
    wrappers = build_optim_wrapper(model, separate_optim_wrapper(
        **({f'{clip}_clip_grad': dict(max_norm=max_norm)} if clip else {})))
    torch.manual_seed(2)
    log_vars = model.train_step(batch(), wrappers)
    assert torch.isfinite(log_vars['loss'])
    assert_parameters(model, expected)


def test_gradient_accumulation_steps_once_per_accumulative_counts():
    model = build_model()
    wrappers = build_optim_wrapper(model, separate_optim_wrapper(accumulative_counts=2))
    wrappers.initialize_count_status(model, 0, 2)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    torch.manual_seed(2)
    model.train_step(batch(), wrappers)
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())
    assert all(w.inner_count == 1 for w in wrappers.values())
    torch.manual_seed(2)
    model.train_step(batch(), wrappers)
    # Two backwards of loss / 2 on the same batch: one step with the gradient of one loss.
    reference = build_model()
    assert_parameters(model, expected_after_one_step(reference, gradients_of_one_loss(reference, batch())))


# ---------------------------------------------------------------------- AMP
def cpu_amp(monkeypatch):
    """mmengine 0.10.7's AmpOptimWrapper refuses to be built without CUDA / NPU / MLU / MUSA, though its
    autocast runs on CPU (bf16); its GradScaler is torch.cuda's, disabled on CPU. With CUDA reported present
    and torch's CPU GradScaler in its place, the wrapper runs on CPU as it would on a GPU."""
    from mmengine.optim.optimizer import amp_optimizer_wrapper
    monkeypatch.setattr(amp_optimizer_wrapper, 'is_cuda_available', lambda: True)
    monkeypatch.setattr(amp_optimizer_wrapper, 'GradScaler', lambda **kwargs: torch.amp.GradScaler('cpu', **kwargs))


def test_amp_wrappers_share_one_loss_scale_with_one_update_per_step(monkeypatch):
    cpu_amp(monkeypatch)
    max_norm = 1e-3
    reference = build_model()
    grads = gradients_of_one_loss(reference, batch())
    grads = clipped(grads, [n for n in grads if n.startswith('architecture.')], max_norm)
    expected = expected_after_one_step(reference, grads)

    model = build_model()
    wrappers = build_optim_wrapper(model, separate_optim_wrapper(
        type='AmpOptimWrapper', loss_scale=dict(init_scale=2.**10), architecture_clip_grad=dict(max_norm=max_norm)))
    scaler = wrappers['architecture'].loss_scaler
    assert isinstance(wrappers['distiller'], AmpOptimWrapper) and wrappers['distiller'].loss_scaler is scaler
    # The scaled backward and the unscaling, without autocast: the same step as in full precision.
    torch.manual_seed(2)
    loss, _ = model.parse_losses(model.loss(**model.data_preprocessor(batch(), True)))
    wrappers.update_params(loss)
    assert_parameters(model, expected)
    assert scaler.get_scale() == 2.**10 and scaler._get_growth_tracker() == 1  # one update for both optimizers

    # An overflow in the distiller's gradients: the distiller skips its step, the scale halves once.
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    torch.manual_seed(2)
    loss, _ = model.parse_losses(model.loss(**model.data_preprocessor(batch(), True)))
    wrappers.backward(loss)
    next(model.distiller.parameters()).grad.view(-1)[0] = float('inf')
    wrappers.step()
    wrappers.zero_grad()
    assert scaler.get_scale() == 2.**9
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters() if n.startswith('distiller.'))
    assert any(not torch.equal(p, before[n]) for n, p in model.named_parameters() if n.startswith('architecture.'))


def test_amp_on_some_wrappers_only_or_with_different_scales_is_refused(monkeypatch):
    cpu_amp(monkeypatch)
    model = build_model()
    with pytest.raises(ValueError, match="type='AmpOptimWrapper' on every wrapper"):
        build_optim_wrapper(model, separate_optim_wrapper(distiller_type='AmpOptimWrapper'))
    with pytest.raises(ValueError, match='same dtype and loss_scale'):
        build_optim_wrapper(model, separate_optim_wrapper(type='AmpOptimWrapper', distiller_loss_scale=512.))


def test_train_tool_amp_flag_sets_every_wrapper_of_the_dict_form():
    enable_amp = load_tool('tools/train.py').enable_amp
    cfg = Config(dict(optim_wrapper=separate_optim_wrapper()))
    enable_amp(cfg)
    for entry in ('architecture', 'distiller'):
        assert cfg.optim_wrapper[entry].type == 'AmpOptimWrapper'
        assert cfg.optim_wrapper[entry].loss_scale == 'dynamic'
    assert cfg.optim_wrapper.constructor == CONSTRUCTOR
    single = Config(dict(optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1))))
    enable_amp(single)
    assert single.optim_wrapper.type == 'AmpOptimWrapper' and single.optim_wrapper.loss_scale == 'dynamic'


# ---------------------------------------------------------------------- in a real Runner
class OutputsLog(Hook):
    """The loss of each training iteration and the dtype of the student backbone's output in it."""

    def __init__(self):
        self.losses, self.backbone_dtypes = [], []

    def before_train(self, runner):
        runner.model.student.backbone.register_forward_hook(
            lambda module, inputs, outputs: self.backbone_dtypes.append(outputs[-1].dtype))

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.losses.append(outputs['loss'])


class SeedEachIteration(Hook):
    """The same DPK token masks at iteration i in every run: mmengine does not checkpoint the random state, so
    without it a resumed run would draw other masks than an uninterrupted one."""

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        torch.manual_seed(runner.iter)


class LearningRates(Hook):
    """The learning rates of every optimizer at each iteration (0-based)."""

    def __init__(self):
        self.by_iter = {}

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.by_iter[runner.iter] = copy.deepcopy(runner.optim_wrapper.get_lr())


class Killed(Exception):
    pass


class KillAfter(Hook):
    """Ends the run like a kill after ``iters`` iterations, once their checkpoint is written (the schedules
    keep the ``end`` they got from the run's ``max_iters``, as in a real interruption)."""

    priority = 'LOWEST'

    def __init__(self, iters):
        self.iters = iters

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter + 1 == self.iters:
            raise Killed


SCHEDULES = dict(
    architecture=[dict(type='LinearLR', start_factor=0.5, by_epoch=False, begin=0, end=2),
                  dict(type='MultiStepLR', milestones=[3], by_epoch=False)],
    distiller=[dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=2),
               dict(type='CosineAnnealingLR', eta_min=1e-6, by_epoch=False, begin=2, end=4)])


def run(work_dir, max_iters, optim_wrapper, param_scheduler=None, name='run', resume_from=None, hooks=()):
    runner = Runner(
        model=build_model(), work_dir=str(work_dir), experiment_name=name, default_scope='mmpretrain',
        train_dataloader=dict(dataset=TinyImages(NUM_IMAGES, SIZE, NUM_CLASSES),
                              sampler=dict(type='DefaultSampler', shuffle=False), batch_size=BATCH_SIZE,
                              collate_fn=pseudo_collate, num_workers=0),
        train_cfg=dict(by_epoch=False, max_iters=max_iters), optim_wrapper=optim_wrapper,
        param_scheduler=param_scheduler, randomness=dict(seed=0),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False),
                           logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=[SeedEachIteration(), *hooks], load_from=resume_from, resume=resume_from is not None)
    runner.train()
    return runner


def test_kill_and_resume_ends_with_the_weights_of_an_uninterrupted_run(tmp_path):
    optim_wrapper = separate_optim_wrapper(accumulative_counts=2, distiller_clip_grad=dict(max_norm=1.0))
    whole_lrs, resumed_lrs = LearningRates(), LearningRates()
    whole = run(tmp_path / 'whole', 4, optim_wrapper, SCHEDULES, 'whole',
                hooks=[whole_lrs, dict(type='mmdistkd.StudentExportHook')])
    with pytest.raises(Killed):
        run(tmp_path / 'killed', 4, optim_wrapper, SCHEDULES, 'killed', hooks=[KillAfter(2)])
    saved = torch.load(tmp_path / 'killed' / 'iter_2.pth', map_location='cpu', weights_only=False)
    assert set(saved['optimizer']) == set(saved['param_schedulers']) == {'architecture', 'distiller'}
    resumed = run(tmp_path / 'resumed', 4, optim_wrapper, SCHEDULES, 'resumed',
                  resume_from=str(tmp_path / 'killed' / 'iter_2.pth'), hooks=[resumed_lrs])

    assert all(w._max_counts == 4 for w in resumed.optim_wrapper.values())  # the Runner's count status
    for key, value in whole.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[key], value, rtol=1e-6, atol=1e-7, msg=key)
    for entry in ('architecture', 'distiller'):
        torch.testing.assert_close(resumed.optim_wrapper[entry].optimizer.state_dict()['state'],
                                   whole.optim_wrapper[entry].optimizer.state_dict()['state'], rtol=1e-6, atol=1e-7)
    assert resumed_lrs.by_iter == {i: whole_lrs.by_iter[i] for i in (2, 3)}
    # Each optimizer on its own schedule: the distiller warms up from 1% of its rate, the student from half.
    first = whole_lrs.by_iter[0]
    assert first['architecture.lr'] == [pytest.approx(SGD_LR * 0.5)]
    assert first['distiller.lr'] == [pytest.approx(ADAMW_LR * 0.01)] * len(first['distiller.lr'])

    exported = torch.load(tmp_path / 'whole' / 'student_final.pth', map_location='cpu', weights_only=True)
    assert set(exported['state_dict']) == {k[len('architecture.'):] for k in whole.model.state_dict()
                                           if k.startswith('architecture.')}


def test_amp_training_in_a_runner_on_cpu(monkeypatch, tmp_path):
    cpu_amp(monkeypatch)
    cfg = Config(dict(optim_wrapper=separate_optim_wrapper()))
    load_tool('tools/train.py').enable_amp(cfg)
    log = OutputsLog()
    runner = run(tmp_path, 2, cfg.optim_wrapper.to_dict(), name='amp', hooks=[log])
    assert runner.optim_wrapper['distiller'].loss_scaler is runner.optim_wrapper['architecture'].loss_scaler
    assert log.backbone_dtypes == [torch.bfloat16] * 2  # mmengine's autocast on CPU
    assert len(log.losses) == 2 and all(torch.isfinite(loss) and loss.dtype == torch.float32 for loss in log.losses)
    saved = torch.load(tmp_path / 'iter_2.pth', map_location='cpu', weights_only=False)
    assert all('loss_scaler' in saved['optimizer'][entry] for entry in ('architecture', 'distiller'))


def test_single_optim_wrapper_configs_train_as_before(tmp_path):
    runner = run(tmp_path, 2, dict(optimizer=dict(type='SGD', lr=SGD_LR, momentum=SGD_MOMENTUM)))
    assert type(runner.optim_wrapper) is OptimWrapper
    assert {id(p) for p in optimizer_params(runner.optim_wrapper)} == {id(p) for p in runner.model.parameters()}
