"""Every distillation config (a model with ``architecture`` and ``teacher``) in any ``configs/<folder>/``,
found by that rule (a new method folder is tested without being listed here), builds with
``teacher_ckpt=None`` and runs one training step on CPU at a reduced input size, on synthetic batches
through the student's data preprocessor."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

import mmdistkd  # noqa: F401
from mmdistkd.analysis.configs import is_distill_config
from mmdistkd.analysis.synthetic import fit_preprocessor_to_size, synthetic_batch_for
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


@pytest.mark.parametrize('config', CONFIGS, ids=[config_id(c) for c in CONFIGS])
def test_config_trains_one_step(config):
    cfg = Config.fromfile(config)
    names_teacher_checkpoint = bool(cfg.model.teacher_ckpt)
    cfg.model.teacher_ckpt = None
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmengine')):
        model = MODELS.build(cfg.model)
    model.train()
    if not names_teacher_checkpoint:
        # The demo passes the teacher it trains; tools/generations.py passes the previous generation, whose
        # architecture the student has. Any other config needs its teacher's weights.
        in_demo = osp.basename(osp.dirname(config)) == 'demo'
        assert in_demo or state_shapes(model.student) == state_shapes(model.teacher), \
            'a config for real data names its teacher checkpoint (model.teacher_ckpt)'
    task = task_of(model.student)
    fit_preprocessor_to_size(model.data_preprocessor, *INPUT_SIZE[task])
    # Mask2Former's loss samples train_cfg.num_points (12,544) points per query in every decoder layer whatever
    # the input size, most of a reduced step's time; a reduced input needs far fewer.
    student_decode_head = getattr(model.student, 'decode_head', None)
    if hasattr(student_decode_head, 'num_points'):
        student_decode_head.num_points = 1024
    optim = torch.optim.SGD(model.parameters(), lr=1e-4)
    distill_names = set(model.distiller.distill_losses)
    student_params = [p for p in model.student.parameters() if p.requires_grad]
    batch = synthetic_batch_for(model.student, 2, *INPUT_SIZE[task])
    losses = model.loss(**model.data_preprocessor(batch, True))
    assert distill_names <= set(losses), f'every distillation loss is logged: {sorted(losses)}'
    total, log_vars = model.parse_losses(losses)
    assert all(torch.isfinite(log_vars[name]) for name in distill_names), log_vars
    # The distillation term alone reaches the student.
    distill_grads = torch.autograd.grad(sum(losses[name] for name in distill_names), student_params,
                                        retain_graph=True, allow_unused=True)
    assert any(g is not None and g.abs().sum() > 0 for g in distill_grads)
    total.backward()
    assert all(torch.isfinite(p.grad).all() for p in student_params if p.grad is not None)
    assert all(p.grad is None for p in model.teacher.parameters())
    before = [p.detach().clone() for p in student_params]
    optim.step()
    assert any(not torch.equal(b, p) for b, p in zip(before, student_params)), 'the step changes the student'
