"""Every distillation config (a model with ``architecture`` and ``teacher``) in any ``configs/<folder>/``,
found by that rule (a new method folder is tested without being listed here), is held to what the whole config
does, not only its parts: built as the Runner builds it with ``teacher_ckpt=None``, it runs one training step on
CPU at a reduced input size, on synthetic batches through the student's data preprocessor, in which the teacher
sees its intended normalisation and every distillation loss trains the student; and the student it names is the
model its ``_base_`` trains."""
import copy
import glob
import os.path as osp
from unittest import mock

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

import mmdistkd  # noqa: F401
from mmdistkd.analysis.configs import is_distill_config
from mmdistkd.analysis.synthetic import fit_preprocessor_to_size, synthetic_batch_for
from mmdistkd.models.algorithms.submodel import config_file, resolve_submodel
from mmdistkd.registry import MODELS
from mmdistkd.utils.tasks import task_of

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# Every config file's model, read once: the rule below and the test of the rule look at all of them.
# configs/_base_ holds fragments that configs inherit, not configs to run.
MODEL_OF = {path: Config.fromfile(path).get('model')
            for path in sorted(glob.glob(osp.join(REPO, 'configs', '*', '*.py')))
            if osp.basename(osp.dirname(path)) != '_base_'}
CONFIGS = [path for path, model in MODEL_OF.items() if is_distill_config(dict(model=model))]
# Reduced (height, width) per task: big enough for the deepest stride (RetinaNet P7 = 1/128), and for DPK
# twice that along the width (its token grids need at least 2 tokens: RetinaNet P7, ResNet layer4 at 1/32).
INPUT_SIZE = dict(det=(128, 256), seg=(64, 128), cls=(32, 64))
# Configs whose teacher's own task loss cannot be computed on the student's data, so the first step's teacher
# check says it is skipped, and why.
TEACHER_CHECK_SKIPPED = {
    # The Cascade Mask R-CNN teacher's loss needs instance masks, which Faster R-CNN's data does not load.
    'dist/dist_faster-rcnn_cascade-x101_r50_coco.py',
}


def config_id(path):
    return osp.relpath(path, osp.join(REPO, 'configs'))


def state_shapes(model):
    return {key: value.shape for key, value in model.state_dict().items()}


def test_the_rule_finds_every_distillation_model():
    """Should the algorithm's keys change, the rule would silently find nothing: it must match every config
    whose model is a SingleTeacherDistill."""
    distill_models = [path for path, model in MODEL_OF.items()
                      if isinstance(model, dict) and str(model.get('type')).endswith('SingleTeacherDistill')]
    assert distill_models and CONFIGS == distill_models


def build_as_the_runner_does(cfg):
    """The distillation model of ``cfg`` as mmengine's Runner builds it: the config's top-level
    ``data_preprocessor`` (mmpretrain keeps it there) handed to the model dict."""
    model_cfg = copy.deepcopy(cfg.model)
    if cfg.get('data_preprocessor') is not None:
        model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmengine')):
        return MODELS.build(model_cfg)


def never_mix(preprocessor):
    """Mixup / CutMix would mix the images before the teacher sees them: compare on the images themselves. The
    batch augments stay, choosing their no-op branch, so the labels keep the form they have in training."""
    augments = getattr(preprocessor, 'batch_augments', None)
    if augments is not None and augments.probs is not None:
        augments.probs = [0.0] * (len(augments.probs) - 1) + [1.0]
    elif augments is not None:
        preprocessor.batch_augments = None  # chosen evenly among real augments: none is a no-op


def intended_teacher_normalisation(cfg):
    """(mean, std, BGR<->RGB) the config means for its teacher, read off the config files alone: the teacher
    model's own ``data_preprocessor`` if its config (or file) has one, else the student's (its own, else the
    config's top-level one), as a standalone teacher trained on the same data would have."""
    teacher_cfg, _ = resolve_submodel(cfg.model.teacher, 'teacher')
    preprocessor = teacher_cfg.get('data_preprocessor')
    if preprocessor is None:
        student_cfg, _ = resolve_submodel(cfg.model.architecture, 'student', cfg.get('data_preprocessor'))
        preprocessor = student_cfg.get('data_preprocessor') or {}
    mean, std = preprocessor.get('mean'), preprocessor.get('std')
    converts = bool(preprocessor.get('bgr_to_rgb') or preprocessor.get('rgb_to_bgr') or preprocessor.get('to_rgb'))
    return mean, std, converts


def expected_teacher_input(raw_images, normalisation):
    """The raw uint8 ``raw_images`` normalised as ``normalisation`` says, computed here in float64."""
    mean, std, converts = normalisation
    images = torch.stack(raw_images).double()
    if converts:
        images = images.flip(1)
    if mean is not None:
        images = (images - torch.tensor(mean, dtype=torch.float64).view(1, -1, 1, 1)) / \
            torch.tensor(std, dtype=torch.float64).view(1, -1, 1, 1)
    return images


def upstream_bases(config):
    """The absolute paths of the config files that ``config`` inherits, directly or through its own fragments,
    that define a model other than a distillation one (an upstream or demo student config)."""
    found = []
    for base in Config._get_base_files(config):
        path = osp.realpath(config_file(base if '::' in base else osp.join(osp.dirname(config), base)))
        model = Config.fromfile(path).get('model')
        if isinstance(model, dict) and str(model.get('type')).endswith('SingleTeacherDistill'):
            continue
        if isinstance(model, dict) and model:
            found.append(path)
        elif '::' not in base:
            found += upstream_bases(path)  # one of our fragments: look through it
    return found


def student_base_mismatch(config):
    """Why the student ``architecture`` of ``config`` is not the model its ``_base_`` trains, or None."""
    cfg = Config.fromfile(config)
    bases = upstream_bases(config)
    if len(bases) > 1:
        return f'it inherits several model configs: {bases}'
    cfg_path = cfg.model.architecture.get('cfg_path')
    if bases and cfg_path is None:
        return f'architecture is a model dict, not the inherited student config {bases[0]}'
    if bases:
        # A local cfg_path is read from the directory tools/train.py runs in: the repository root.
        local = '::' not in cfg_path
        if osp.realpath(config_file(osp.join(REPO, cfg_path) if local else cfg_path)) != bases[0]:
            return f'architecture.cfg_path={cfg_path!r} is not the inherited student config {bases[0]}'
    return None


@pytest.mark.parametrize('config', CONFIGS, ids=[config_id(c) for c in CONFIGS])
def test_student_is_the_model_the_configs_base_trains(config):
    """A config that inherits an upstream (or demo) student config takes its schedule, data and runtime from it:
    ``architecture`` must name that same file, or the run trains one model on another's recipe."""
    assert student_base_mismatch(config) is None


def test_a_student_other_than_the_base_is_found(tmp_path):
    config = tmp_path / 'dist_wrong_student.py'
    config.write_text("_base_ = ['mmdet::retinanet/retinanet_r50_fpn_2x_coco.py']\n"
                      "model = dict(_delete_=True, type='mmdistkd.SingleTeacherDistill',\n"
                      "             architecture=dict(cfg_path='mmdet::retinanet/retinanet_r18_fpn_1x_coco.py'),\n"
                      "             teacher=dict(cfg_path='mmdet::retinanet/retinanet_r101_fpn_2x_coco.py'))\n")
    assert 'retinanet_r18_fpn_1x_coco.py' in student_base_mismatch(str(config))


@pytest.mark.parametrize('config', CONFIGS, ids=[config_id(c) for c in CONFIGS])
def test_config_trains_one_step(config):
    """One training step of the whole config: the teacher's backbone receives the raw images normalised as the
    config means for the teacher; every distillation loss on its own gives the student a finite, non-zero
    gradient; the teacher check of the first step computes the teacher's own task loss."""
    cfg = Config.fromfile(config)
    names_teacher_checkpoint = bool(cfg.model.teacher_ckpt)
    cfg.model.teacher_ckpt = None
    model = build_as_the_runner_does(cfg)
    model.train()
    if not names_teacher_checkpoint:
        # The demo passes the teacher it trains; tools/generations.py passes the previous generation, whose
        # architecture the student has. Any other config needs its teacher's weights.
        in_demo = osp.basename(osp.dirname(config)) == 'demo'
        assert in_demo or state_shapes(model.student) == state_shapes(model.teacher), \
            'a config for real data names its teacher checkpoint (model.teacher_ckpt)'
    task = task_of(model.student)
    fit_preprocessor_to_size(model.data_preprocessor, *INPUT_SIZE[task])
    never_mix(model.data_preprocessor)
    # Mask2Former's loss samples train_cfg.num_points (12,544) points per query in every decoder layer whatever
    # the input size, most of a reduced step's time; a reduced input needs far fewer.
    for segmentor in (model.student, model.teacher):
        decode_head = getattr(segmentor, 'decode_head', None)
        if hasattr(decode_head, 'num_points'):
            decode_head.num_points = 1024
    optim = torch.optim.SGD(model.parameters(), lr=1e-4)
    distill_names = list(model.distiller.distill_losses)
    student_params = [p for p in model.student.parameters() if p.requires_grad]
    batch = synthetic_batch_for(model.student, 2, *INPUT_SIZE[task])
    teacher_inputs = []
    hook = model.teacher.backbone.register_forward_pre_hook(lambda module, args: teacher_inputs.append(args[0]))
    with mock.patch('mmdistkd.models.algorithms.teacher_check.print_log') as teacher_check_log:
        losses = model.loss(**model.data_preprocessor(copy.deepcopy(batch), True))
    hook.remove()

    expected = expected_teacher_input(batch['inputs'], intended_teacher_normalisation(cfg))
    assert teacher_inputs, 'the teacher ran'
    torch.testing.assert_close(teacher_inputs[0].double(), expected, rtol=1e-4, atol=1e-4)
    check_messages = ' '.join(str(call.args[0]) for call in teacher_check_log.call_args_list)
    if config_id(config) in TEACHER_CHECK_SKIPPED:
        assert 'skipped' in check_messages, check_messages
    else:
        assert "the teacher's task loss" in check_messages and 'skipped' not in check_messages, check_messages

    assert set(distill_names) <= set(losses), f'every distillation loss is logged: {sorted(losses)}'
    total, log_vars = model.parse_losses(losses)
    assert all('loss' in name for name in distill_names)  # so parse_losses optimises each
    for name in distill_names:
        assert torch.isfinite(log_vars[name]), (name, log_vars)
        grads = torch.autograd.grad(losses[name], student_params, retain_graph=True, allow_unused=True)
        grads = [g for g in grads if g is not None]
        assert grads and all(torch.isfinite(g).all() for g in grads), f'{name}: no finite gradient'
        assert any(g.abs().sum() > 0 for g in grads), f'{name} gives the student no gradient'
    total.backward()
    assert all(torch.isfinite(p.grad).all() for p in student_params if p.grad is not None)
    assert all(p.grad is None for p in model.teacher.parameters())
    before = [p.detach().clone() for p in student_params]
    optim.step()
    assert any(not torch.equal(b, p) for b, p in zip(before, student_params)), 'the step changes the student'


@pytest.mark.parametrize('config', ['configs/dist/dist_resnet32x4_resnet8x4_1xb64_cifar100.py',
                                    'configs/dpk/dpk_resnet110_resnet20_1xb64_cifar100.py'])
def test_cifar_teacher_inside_a_step_equals_a_plain_mmpretrain_model(config, tmp_path):
    """The teacher's logits inside a training step equal those of the plain mmpretrain classifier a teacher
    config of its own would build (the config's model and top-level data preprocessor), with the same
    checkpoint, on the same images."""
    cfg = Config.fromfile(osp.join(REPO, config))
    standalone = Config(dict(model=dict(cfg.model.teacher, data_preprocessor=cfg.data_preprocessor)))
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        plain = MODELS.build(standalone.model).eval()
    checkpoint = tmp_path / 'teacher.pth'
    torch.save(dict(state_dict=plain.state_dict()), checkpoint)
    cfg.model.teacher_ckpt = str(checkpoint)
    model = build_as_the_runner_does(cfg).train()
    never_mix(model.data_preprocessor)
    batch = synthetic_batch_for(model.student, 4, 32, 32)
    logits = []
    hook = model.teacher.head.fc.register_forward_hook(lambda module, args, output: logits.append(output))
    model.loss(**model.data_preprocessor(copy.deepcopy(batch), True))
    hook.remove()
    with torch.no_grad():
        expected = plain(plain.data_preprocessor(copy.deepcopy(batch), False)['inputs'], mode='tensor')
    torch.testing.assert_close(logits[0], expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('task, config', [('det', 'dist_retinanet_r34_r18_demo_det'),
                                          ('seg', 'dpk_deeplabv3_r34_r18_demo_seg'),
                                          ('cls', 'dist_resnet34_resnet18_demo_cls')])
def test_demo_distillation_without_its_trained_teacher_names_the_command(task, config, tmp_path, monkeypatch):
    """The demo distillation configs name the teacher `make demo` trains; before it exists, the build says which
    command trains it there."""
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'demo', f'{config}.py'))
    monkeypatch.chdir(tmp_path)  # no work_dirs/demo here, whatever ran in the checkout
    with pytest.raises(FileNotFoundError, match=rf'work_dirs/demo/{task}/teacher/iter_\d+\.pth\' does not exist\. '
                                                rf'If the teacher is not trained yet, train it there first: python '
                                                rf'tools/train.py \S*configs/demo/tolerant_\S+_demo_{task}_teacher\.py '
                                                rf'--work-dir work_dirs/demo/{task}/teacher\.'):
        build_as_the_runner_does(cfg)
