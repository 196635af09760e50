"""Data-free distillation (DataFreeDistillation, DAFLDataFreeDistillation) with tiny mmpretrain ResNet_CIFAR students
and teachers on 8x8 images: the generators against a float64 computation written out, a training step through
mmengine's OptimWrapperDict (how often each part is updated, what must not change, the updates against an
independent float64 computation), the state dict, the errors, a Runner-built run and two DDP ranks.

The methods' own losses are stood in for by KLDivergence and the test-local losses below: the step does not depend
on which loss is used."""
import copy
import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.model import MMSeparateDistributedDataParallel
from mmengine.optim import OptimWrapper, OptimWrapperDict
from mmengine.registry import DATASETS, DefaultScope
from mmengine.runner import Runner
from torch import nn

import mmdistkd  # noqa: F401
from mmdistkd.registry import MODELS
from mmdistkd.testing import TinyImages, free_port

# The teachers here are random: the step is under test, not what it learns.
pytestmark = pytest.mark.filterwarnings('ignore:SingleTeacherDistill. teacher_ckpt is None')

NUM_CLASSES, SIZE, BATCH, LATENT = 4, 8, 4, 6
# MMRazor's CIFAR-10 data preprocessor of the algorithm, as in its configs: the student's and the teachers'.
PREPROCESSOR = dict(type='ImgDataPreprocessor', mean=[125.307, 122.961, 113.8575], std=[51.5865, 50.847, 51.255],
                    bgr_to_rgb=False)


# ---------------------------------------------------------------------- stand-ins for the methods' losses
@MODELS.register_module(name='DataFreeTestMeanAbsDifference', force=True)
class MeanAbsDifference(nn.Module):
    """DFAD's L1 (and an AT stand-in): gradients reach both sides."""

    def __init__(self, loss_weight=1.0):
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, s_feature, t_feature):
        return self.loss_weight * (s_feature - t_feature).abs().mean()


@MODELS.register_module(name='DataFreeTestTeacherEntropy', force=True)
class TeacherEntropy(nn.Module):
    """A DAFL-style loss on the teacher alone: the mean entropy of its predictions."""

    def __init__(self, loss_weight=1.0):
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, preds_T):
        return -self.loss_weight * (preds_T.softmax(1) * preds_T.log_softmax(1)).sum(1).mean()


@MODELS.register_module(name='DataFreeTestActivation', force=True)
class Activation(nn.Module):
    """DAFL's activation term's form: the teacher's features, larger is better."""

    def __init__(self, loss_weight=1.0):
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, feat_T):
        return -self.loss_weight * feat_T.abs().mean()


# A config names its dataset by type (a Runner dumps its config as text).
DATASETS.register_module(name='DataFreeTestTinyImages', force=True, module=TinyImages)


# ---------------------------------------------------------------------- models
def classifier(depth):
    """A two-stage ResNet_CIFAR of 8 and 16 channels (no preprocessor: the algorithm's is used)."""
    return dict(
        type='ImageClassifier',
        backbone=dict(type='ResNet_CIFAR', depth=depth, num_stages=2, strides=(1, 2), dilations=(1, 1),
                      out_indices=(1, ), stem_channels=8, base_channels=8),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=NUM_CLASSES, in_channels=16, loss=dict(type='CrossEntropyLoss')))


def outputs(source):
    return dict(type='ModuleOutputs', source=source)


def mapped(recorder, from_student, record_idx=0):
    return dict(from_student=from_student, recorder=recorder, record_idx=record_idx)


def logits_distiller(loss, student_arg='preds_S', teacher_arg='preds_T', **extra):
    """A distiller of one loss between the student's and the ``res34`` teacher's logits, plus ``extra`` losses
    given as (loss cfg, mapping)."""
    student_recorders = dict(fc=outputs('head.fc'))
    teacher_recorders = dict(res34_fc=outputs('res34.head.fc'))
    losses = dict(loss_logits=loss)
    mappings = dict(loss_logits={student_arg: mapped('fc', True), teacher_arg: mapped('res34_fc', False)})
    for name, (cfg, mapping, recorders) in extra.items():
        losses[name], mappings[name] = cfg, mapping
        student_recorders.update(recorders[0])
        teacher_recorders.update(recorders[1])
    return dict(type='ConfigurableDistiller', student_recorders=student_recorders,
                teacher_recorders=teacher_recorders, distill_losses=losses, loss_forward_mappings=mappings)


def zskt_distillers():
    """ZSKT's layout: the student learns attention-style features and KL; the generator maximises the KL through
    student and teacher (``teacher_detach=False``)."""
    features = (dict(type='DataFreeTestMeanAbsDifference', loss_weight=3.0),
                dict(s_feature=mapped('bb_s1', True, 1), t_feature=mapped('res34_bb_s1', False, 1)),
                (dict(bb_s1=outputs('backbone.layer1.1.relu')),
                 dict(res34_bb_s1=outputs('res34.backbone.layer1.2.relu'))))
    distiller = logits_distiller(dict(type='KLDivergence', loss_weight=2.0, reduction='mean'), loss_s1=features)
    generator_distiller = logits_distiller(
        dict(type='KLDivergence', loss_weight=-2.0, reduction='mean', teacher_detach=False))
    return distiller, generator_distiller


def dfad_distillers():
    l1 = dict(type='DataFreeTestMeanAbsDifference')
    return (logits_distiller(l1, 's_feature', 't_feature'),
            logits_distiller(dict(l1, loss_weight=-1.0), 's_feature', 't_feature'))


def dafl_distillers():
    distiller = logits_distiller(dict(type='KLDivergence', tau=6))
    generator_distiller = dict(
        type='ConfigurableDistiller',
        teacher_recorders=dict(res34_neck_gap=outputs('res34.neck.gap'), res34_fc=outputs('res34.head.fc')),
        distill_losses=dict(loss_res34_ie=dict(type='DataFreeTestTeacherEntropy', loss_weight=5),
                            loss_res34_ac=dict(type='DataFreeTestActivation', loss_weight=0.01)),
        loss_forward_mappings=dict(loss_res34_ie=dict(preds_T=mapped('res34_fc', False)),
                                   loss_res34_ac=dict(feat_T=mapped('res34_neck_gap', False))))
    return distiller, generator_distiller


DISTILLERS = dict(zskt=zskt_distillers, dfad=dfad_distillers, dafl=dafl_distillers)


def model_cfg(method='zskt', generator='ZSKTGenerator', **kwargs):
    distiller, generator_distiller = DISTILLERS[method]()
    return dict(type='mmdistkd.DAFLDataFreeDistillation' if method == 'dafl' else 'mmdistkd.DataFreeDistillation',
                data_preprocessor=PREPROCESSOR, architecture=classifier(18),
                teachers=dict(res34=dict(build_cfg=classifier(34))),
                generator=dict(type=generator, img_size=SIZE, latent_dim=LATENT, hidden_channels=8),
                distiller=distiller, generator_distiller=generator_distiller, **kwargs)


def build(method='zskt', **kwargs):
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return MODELS.build(model_cfg(method, **kwargs))


def adam_wrappers(model, lr=1e-3):
    return OptimWrapperDict(**{part: OptimWrapper(torch.optim.Adam(getattr(model, part).parameters(), lr=lr))
                               for part in ('architecture', 'generator')})


def data(batch=BATCH):
    """What a dataloader gives: only its batch size matters to a data-free step."""
    return dict(inputs=[torch.zeros(3, SIZE, SIZE, dtype=torch.uint8)] * batch, data_samples=[None] * batch)


def cloned_state(module):
    return {key: value.clone() for key, value in module.state_dict().items()}


def batch_norm_updates(module):
    """How many batches the module's first BN has normalised in training (its ``num_batches_tracked``)."""
    return int(next(m for m in module.modules() if isinstance(m, nn.BatchNorm2d)).num_batches_tracked)


# ---------------------------------------------------------------------- generators vs a written-out computation
def batch_norm(x, state, name, eps=1e-5, affine=True):
    """Training-mode BN from the batch's own statistics (biased variance)."""
    mean = x.mean(dim=(0, 2, 3), keepdim=True)
    var = ((x - mean)**2).mean(dim=(0, 2, 3), keepdim=True)
    normalised = (x - mean) / torch.sqrt(var + eps)
    if not affine:
        return normalised
    return normalised * state[f'{name}.weight'].view(1, -1, 1, 1) + state[f'{name}.bias'].view(1, -1, 1, 1)


def nearest_upsample(x, factor):
    return x.repeat_interleave(factor, dim=2).repeat_interleave(factor, dim=3)


def conv(x, state, name):
    return F.conv2d(x, state[f'{name}.weight'], state[f'{name}.bias'], padding=1)


def leaky_relu(x, slope):
    return torch.where(x > 0, x, slope * x)


def dafl_reference(state, codes, hidden, init_size, factor, bn_eps, slope):
    x = (codes @ state['linear.weight'].T + state['linear.bias']).reshape(len(codes), hidden, init_size, init_size)
    x = nearest_upsample(batch_norm(x, state, 'bn1'), factor)
    x = leaky_relu(batch_norm(conv(x, state, 'conv_blocks1.0'), state, 'conv_blocks1.1', bn_eps), slope)
    x = nearest_upsample(x, factor)
    x = leaky_relu(batch_norm(conv(x, state, 'conv_blocks2.0'), state, 'conv_blocks2.1', bn_eps), slope)
    return batch_norm(torch.tanh(conv(x, state, 'conv_blocks2.3')), state, None, affine=False)


def zskt_reference(state, codes, hidden, init_size, factor, bn_eps, slope):
    x = (codes @ state['layers.0.weight'].T + state['layers.0.bias']).reshape(len(codes), hidden, init_size,
                                                                              init_size)
    x = nearest_upsample(batch_norm(x, state, 'layers.2'), factor)
    x = nearest_upsample(leaky_relu(batch_norm(conv(x, state, 'layers.4'), state, 'layers.5'), slope), factor)
    x = leaky_relu(batch_norm(conv(x, state, 'layers.8'), state, 'layers.9'), slope)
    return batch_norm(conv(x, state, 'layers.11'), state, 'layers.12')


@pytest.mark.parametrize('generator_type, reference, options', [
    ('DAFLGenerator', dafl_reference, dict(bn_eps=0.8, leaky_slope=0.2)),
    ('DAFLGenerator', dafl_reference, dict(bn_eps=1e-5, leaky_slope=0.1, scale_factor=3)),
    ('ZSKTGenerator', zskt_reference, dict(leaky_slope=0.3))])
def test_generator_images_match_a_float64_computation_written_out(generator_type, reference, options):
    torch.manual_seed(0)
    scale_factor = options.get('scale_factor', 2)
    img_size, hidden = 4 * scale_factor**2, 6
    generator = MODELS.build(dict(type=f'mmdistkd.{generator_type}', img_size=img_size, latent_dim=LATENT,
                                  hidden_channels=hidden, **options)).double()
    with torch.no_grad():  # affine BN parameters away from 1 and 0, so that their use shows
        for param in generator.parameters():
            param.add_(torch.randn_like(param) * 0.3)
    codes = torch.randn(5, LATENT, dtype=torch.float64)
    images = generator(codes)
    expected = reference({k: v.detach() for k, v in generator.state_dict().items()}, codes, hidden, 4, scale_factor,
                         options.get('bn_eps', 1e-5), options['leaky_slope'])
    assert images.shape == (5, 3, img_size, img_size)
    torch.testing.assert_close(images, expected, rtol=1e-10, atol=1e-10)


def test_dafl_images_come_out_normalised_per_channel_over_the_batch():
    torch.manual_seed(0)
    generator = MODELS.build(dict(type='mmdistkd.DAFLGenerator', img_size=16, latent_dim=LATENT,
                                  hidden_channels=8)).double()
    before_norm = {}
    generator.conv_blocks2[-2].register_forward_hook(lambda module, inputs, output: before_norm.update(tanh=output))
    images = generator(batch_size=6)
    torch.testing.assert_close(images.mean(dim=(0, 2, 3)), torch.zeros(3, dtype=torch.float64), atol=1e-12, rtol=0)
    # Unit variance but for BN's eps (1e-5), which weighs on the small variance of tanh's outputs.
    tanh_var = before_norm['tanh'].var(dim=(0, 2, 3), unbiased=False)
    torch.testing.assert_close(images.var(dim=(0, 2, 3), unbiased=False), tanh_var / (tanh_var + 1e-5))
    # Its last BN has no parameters to undo this; ZSKT's final BN has (weight, bias).
    assert not list(generator.conv_blocks2[-1].parameters())
    assert generator.conv_blocks1[1].eps == 0.8 and generator.bn1.eps == 1e-5  # DAFL's BatchNorm2d(128, 0.8)


def test_generator_draws_its_codes_from_the_global_random_state_in_its_dtype():
    generator = MODELS.build(dict(type='mmdistkd.ZSKTGenerator', img_size=SIZE, latent_dim=LATENT, hidden_channels=8))
    generator.double()
    torch.manual_seed(3)
    drawn = generator(batch_size=4)
    torch.manual_seed(3)
    given = generator(torch.randn(4, LATENT))
    assert drawn.dtype == torch.float64 and drawn.shape == (4, 3, SIZE, SIZE)
    assert torch.equal(drawn, given)


def test_generator_errors_name_the_sizes():
    with pytest.raises(ValueError, match=r'img_size=10 is not a multiple of scale_factor\*\*2=4'):
        MODELS.build(dict(type='mmdistkd.DAFLGenerator', img_size=10, latent_dim=LATENT, hidden_channels=8))
    generator = MODELS.build(dict(type='mmdistkd.DAFLGenerator', img_size=SIZE, latent_dim=LATENT, hidden_channels=8))
    with pytest.raises(ValueError, match=r'latent codes of shape \(4, 5\); give \(N, latent_dim\) = \(N, 6\)'):
        generator(torch.zeros(4, 5))
    with pytest.raises(ValueError, match='batch_size=0'):
        generator(batch_size=0)


# ---------------------------------------------------------------------- the training step
@pytest.mark.parametrize('method, kwargs, student_updates, generator_forwards, student_forwards', [
    ('zskt', dict(student_iter=3), 3, 1 + 3, 1 + 3),
    ('dfad', dict(student_iter=2, student_train_first=True, generator='DAFLGenerator'), 2, 1 + 2, 1 + 2),
    # DAFL: one batch of images for both updates; its generator distiller records no student, which then runs once.
    ('dafl', dict(generator='DAFLGenerator'), 1, 1, 1)])
def test_train_step_updates_generator_once_and_student_as_configured_never_the_teacher(
        method, kwargs, student_updates, generator_forwards, student_forwards):
    model = build(method, **kwargs)
    wrappers = adam_wrappers(model)
    teacher_before = cloned_state(model.teachers)
    student_before, generator_before = cloned_state(model.student), cloned_state(model.generator)

    log_vars = model.train_step(data(), wrappers)

    # Adam counts its updates per parameter.
    for part, updates in (('generator', 1), ('architecture', student_updates)):
        states = wrappers[part].optimizer.state
        assert len(states) == len(list(getattr(model, part).parameters())), part
        assert {int(state['step']) for state in states.values()} == {updates}, part
    assert batch_norm_updates(model.generator) - batch_norm_updates_of(generator_before) == generator_forwards
    assert batch_norm_updates(model.student) - batch_norm_updates_of(student_before) == student_forwards
    for key, value in model.teachers.state_dict().items():
        assert torch.equal(value, teacher_before[key]), key
    assert all(param.grad is None and not param.requires_grad for param in model.teachers.parameters())
    assert all(param.requires_grad for param in model.student.parameters())
    for before, after in ((student_before, model.student), (generator_before, model.generator)):
        changed = [key for key, value in after.state_dict().items() if not torch.equal(value, before[key])]
        assert set(changed) >= {name for name, _ in after.named_parameters()}
    assert {'generator.loss', 'distill.loss', 'distill.loss_logits'} <= set(log_vars)
    assert all(torch.isfinite(value) for value in log_vars.values())


def batch_norm_updates_of(state):
    return int(next(value for key, value in state.items() if key.endswith('num_batches_tracked')))


def kl_mean(logits_S, logits_T):
    """Elementwise KL(p_T || p_S) averaged over all elements, from probabilities."""
    p_S, p_T = logits_S.softmax(1), logits_T.softmax(1)
    return (p_T * (p_T.log() - p_S.log())).mean()


def sgd_step(module, loss, lr):
    params = [p for p in module.parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, params)
    with torch.no_grad():
        for param, grad in zip(params, grads):
            param -= lr * grad


def test_generator_and_student_updates_equal_a_float64_computation_written_out():
    """ZSKT's step, generator first: the generator follows -2 KL through student and teacher, then the student
    follows 2 KL + 3 |features| on new images; no gradient of the generator's loss reaches the student's update."""
    model = build('zskt', student_iter=1).double()
    lr = 0.05
    wrappers = OptimWrapperDict(**{part: OptimWrapper(torch.optim.SGD(getattr(model, part).parameters(), lr=lr))
                                   for part in ('architecture', 'generator')})
    student, teacher = copy.deepcopy(model.student), copy.deepcopy(model.teachers['res34'])
    generator = copy.deepcopy(model.generator)
    teacher.eval()

    torch.manual_seed(7)
    model.train_step(data(), wrappers)

    torch.manual_seed(7)
    images = generator(torch.randn(BATCH, LATENT).double())
    sgd_step(generator, -2 * kl_mean(student(images, mode='tensor'), teacher(images, mode='tensor')), lr)
    with torch.no_grad():
        images = generator(torch.randn(BATCH, LATENT).double())
        feature_T = {}
        teacher.backbone.layer1[2].relu.register_forward_hook(lambda m, i, o: feature_T.setdefault(len(feature_T), o))
        logits_T = teacher(images, mode='tensor')
    feature_S = {}
    student.backbone.layer1[1].relu.register_forward_hook(lambda m, i, o: feature_S.setdefault(len(feature_S), o))
    logits_S = student(images, mode='tensor')
    sgd_step(student, 2 * kl_mean(logits_S, logits_T) + 3 * (feature_S[1] - feature_T[1]).abs().mean(), lr)

    for reference, trained in ((generator, model.generator), (student, model.student)):
        for key, value in reference.state_dict().items():
            # The losses compute in float32 (DistillLoss), the networks in float64.
            torch.testing.assert_close(trained.state_dict()[key], value, rtol=1e-5, atol=1e-7, msg=key)


def test_dafl_trains_the_student_on_the_images_the_generator_was_scored_on():
    model = build('dafl', generator='DAFLGenerator')
    seen = {}
    model.teachers['res34'].register_forward_hook(lambda m, inputs, o: seen.setdefault('teacher', []).append(inputs[0]))
    model.student.register_forward_hook(lambda m, inputs, o: seen.setdefault('student', []).append(inputs[0]))
    model.train_step(data(), adam_wrappers(model))
    generator_images, student_images = seen['teacher'][0], seen['student'][0]
    assert generator_images.requires_grad and not student_images.requires_grad
    assert torch.equal(generator_images, student_images) and len(seen['student']) == 1


@pytest.mark.parametrize('student_train_first, expected', [(False, [True, False, False]),
                                                           (True, [False, False, True])])
def test_student_train_first_orders_the_generator_update_after_the_student_updates(student_train_first, expected):
    """Which generator calls carry gradient, in order: the generator's update, or one of the student's two."""
    model = build('dfad', student_iter=2, student_train_first=student_train_first)
    calls = []
    model.generator.register_forward_hook(lambda module, inputs, output: calls.append(output.requires_grad))
    model.train_step(data(), adam_wrappers(model))
    assert calls == expected


def test_a_single_optimizer_is_refused_with_what_to_give():
    model = build('dfad')
    with pytest.raises(TypeError, match=r"OptimWrapperDict with the entries \('architecture', 'generator'\)"):
        model.train_step(data(), OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1)))


# ---------------------------------------------------------------------- the model around the step
def test_state_dict_holds_student_and_generator_but_no_teacher():
    model = build('dfad')
    prefixes = {key.split('.')[0] for key in model.state_dict()}
    assert prefixes == {'architecture', 'generator'}
    assert {name.split('.')[0] for name, _ in model.named_parameters()} == {'architecture', 'generator'}
    copied = copy.deepcopy(model)  # EMA: the frozen teachers are shared, not copied
    assert copied.frozen_teachers_by_name['res34'] is model.frozen_teachers_by_name['res34']
    model.double()
    assert all(p.dtype == torch.float64 for p in model.teachers.parameters())
    model.train()
    assert model.student.training and not any(m.training for m in model.teachers['res34'].modules())


def test_teachers_get_the_algorithm_preprocessor_and_load_their_ckpt_path(tmp_path):
    torch.manual_seed(5)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        trained = MODELS.build(classifier(34))
    torch.save({'state_dict': trained.state_dict()}, tmp_path / 'res34.pth')
    cfg = model_cfg('dfad')
    cfg['teachers']['res34']['ckpt_path'] = str(tmp_path / 'res34.pth')
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(cfg)
    teacher = model.teachers['res34']
    for key, value in trained.state_dict().items():
        assert torch.equal(teacher.state_dict()[key], value), key
    preprocessor_types = {type(teacher.data_preprocessor).__name__, type(model.student.data_preprocessor).__name__}
    assert preprocessor_types == {PREPROCESSOR['type']}
    assert torch.equal(teacher.data_preprocessor.mean, model.data_preprocessor.mean)
    assert torch.equal(teacher.data_preprocessor.std, model.data_preprocessor.std)


@pytest.mark.parametrize('change, error, message', [
    (dict(teachers=[classifier(34)]), TypeError, 'teachers must be a non-empty dict'),
    (dict(teachers=dict(res34=classifier(34))), ValueError, r"teachers\['res34'\] must be dict\(build_cfg="),
    (dict(student_iter=0), ValueError, 'student_iter=0'),
    (dict(type='mmdistkd.DAFLDataFreeDistillation', student_iter=5), ValueError, 'student_iter=5 .* do not apply'),
])
def test_config_errors_say_what_to_change(change, error, message):
    with DefaultScope.overwrite_default_scope('mmpretrain'), pytest.raises(error, match=message):
        MODELS.build(dict(model_cfg('dfad'), **change))


def test_a_distiller_without_student_recorders_is_refused():
    cfg = model_cfg('dafl')
    cfg['distiller'] = cfg['generator_distiller']
    with DefaultScope.overwrite_default_scope('mmpretrain'), pytest.raises(ValueError, match='no student_recorders'):
        MODELS.build(cfg)


# ---------------------------------------------------------------------- a Runner built from a config dict
def runner_cfg(work_dir, seed, max_iters=2, resume_from=None):
    """MMRazor's ZSKT config in small: InfiniteSampler, iterations, two optimizers and schedules, DDP wrapper."""
    return dict(
        model=model_cfg('zskt', student_iter=2), work_dir=str(work_dir), experiment_name=os.path.basename(work_dir),
        default_scope='mmpretrain',
        train_dataloader=dict(dataset=dict(type='DataFreeTestTinyImages', num_images=8, size=SIZE,
                                           num_classes=NUM_CLASSES), batch_size=BATCH, num_workers=0,
                              sampler=dict(type='InfiniteSampler', shuffle=True),
                              collate_fn=dict(type='pseudo_collate')),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        optim_wrapper=dict(constructor='mmdistkd.SeparateOptimWrapperConstructor',
                           architecture=dict(optimizer=dict(type='SGD', lr=0.1, weight_decay=5e-4, momentum=0.9)),
                           generator=dict(optimizer=dict(type='Adam', lr=1e-3))),
        param_scheduler=dict(architecture=dict(type='MultiStepLR', milestones=[1], by_epoch=False),
                             generator=dict(type='MultiStepLR', milestones=[1], by_epoch=False)),
        model_wrapper_cfg=dict(type='MMSeparateDistributedDataParallel', broadcast_buffers=False,
                               find_unused_parameters=True),
        randomness=dict(seed=seed, diff_rank_seed=True), log_processor=dict(by_epoch=False),
        default_hooks=dict(logger=dict(type='LoggerHook', interval=1, log_metric_by_epoch=False),
                           checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=1)),
        custom_hooks=[dict(type='mmdistkd.StudentExportHook')],
        env_cfg=dict(dist_cfg=dict(backend='gloo')), load_from=resume_from, resume=resume_from is not None)


def test_runner_trains_two_iterations_repeatably_and_resumes(tmp_path):
    first = Runner.from_cfg(Config(runner_cfg(tmp_path / 'first', seed=0)))
    first.train()
    second = Runner.from_cfg(Config(runner_cfg(tmp_path / 'second', seed=0)))
    second.train()

    state = first.model.state_dict()
    assert {key.split('.')[0] for key in state} == {'architecture', 'generator'}
    assert all(torch.equal(value, second.model.state_dict()[key]) for key, value in state.items())
    saved = torch.load(tmp_path / 'first' / 'iter_2.pth', map_location='cpu', weights_only=False)
    assert set(saved['optimizer']) == set(saved['param_schedulers']) == {'architecture', 'generator'}
    assert not any('res34' in key or 'teacher' in key for key in saved['state_dict'])
    exported = torch.load(tmp_path / 'first' / 'student_final.pth', map_location='cpu', weights_only=True)
    assert set(exported['state_dict']) == {key[len('architecture.'):] for key in state
                                           if key.startswith('architecture.')}

    resumed = Runner.from_cfg(Config(runner_cfg(tmp_path / 'resumed', seed=0,
                                                resume_from=str(tmp_path / 'first' / 'iter_1.pth'))))
    resumed.train()
    assert resumed.iter == 2
    generator_steps = {int(s['step']) for s in resumed.optim_wrapper['generator'].optimizer.state.values()}
    assert generator_steps == {2}  # one from the checkpoint, one after resuming


# ---------------------------------------------------------------------- two DDP ranks
def ddp_worker(rank, world_size, port, out_dir):
    torch.set_num_threads(1)
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank, world_size=world_size)
    try:
        results = {}
        # DAFL's config sets find_unused_parameters=False, DFAD's and ZSKT's True.
        for method, find_unused in (('dafl', False), ('zskt', True)):
            model = build(method, **(dict(generator='DAFLGenerator') if method == 'dafl' else dict(student_iter=2)))
            wrapped = MMSeparateDistributedDataParallel(model, broadcast_buffers=False,
                                                        find_unused_parameters=find_unused)
            initial = {key: value.detach().clone() for key, value in model.named_parameters()}
            wrappers = OptimWrapperDict(**{
                part: OptimWrapper(torch.optim.SGD(getattr(model, part).parameters(), lr=0.1, momentum=0.9))
                for part in ('architecture', 'generator')})
            torch.manual_seed(100 + rank)  # diff_rank_seed: each rank its own images
            for _ in range(2):
                wrapped.train_step(data(), wrappers)
            trained = {key: value.detach().clone() for key, value in model.named_parameters()}
            results[method] = dict(initial=initial, trained=trained)
        torch.save(results, os.path.join(out_dir, f'rank{rank}.pt'))
    finally:
        dist.destroy_process_group()


GENERATOR_INPUT_LAYER = dict(dafl='linear', zskt='layers.0')


def test_two_ddp_ranks_with_their_own_images_keep_equal_student_and_generator(tmp_path):
    mp.spawn(ddp_worker, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f'rank{rank}.pt', weights_only=False) for rank in range(2)]
    for method in ('dafl', 'zskt'):
        first, second = ranks[0][method]['trained'], ranks[1][method]['trained']
        # Names as the DDP wrappers show them: architecture.module.* and generator.module.*.
        assert {key.split('.')[0] for key in first} == {'architecture', 'generator'}
        for key, value in first.items():
            torch.testing.assert_close(second[key], value, rtol=1e-5, atol=1e-6, msg=f'{method} {key}')
        # Every student weight trains; of the generator's, not the biases of convolutions that a BN follows.
        still = {key for key, value in first.items() if torch.equal(value, ranks[0][method]['initial'][key])}
        assert not any(key.startswith('architecture.') for key in still), (method, still)
        input_layer = f'generator.module.{GENERATOR_INPUT_LAYER[method]}.weight'
        assert input_layer in first and input_layer not in still, method
