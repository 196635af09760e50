"""Every distillation config (real datasets and teachers, and the demo variants) builds with
``teacher_ckpt=None`` and runs 2 training iterations on CPU at a reduced input size, on synthetic batches
through the student's data preprocessor."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

import mmdistkd  # noqa: F401
from mmdistkd.registry import MODELS
from mmdistkd.utils.synthetic import fit_preprocessor_to_size, synthetic_batch
from mmdistkd.utils.tasks import task_of

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
REAL_CONFIGS = sorted(path for method in ('dist', 'dpk') for path in glob.glob(osp.join(REPO, 'configs', method,
                                                                                   '*.py')))
DEMO_CONFIGS = sorted(path for method in ('dist', 'dpk')
                      for path in glob.glob(osp.join(REPO, 'configs', 'demo', f'{method}_*.py')))
CONFIGS = REAL_CONFIGS + DEMO_CONFIGS
# Reduced (height, width) per task: big enough for the deepest stride (RetinaNet P7 = 1/128), and for DPK
# twice that along the width (its token grids need at least 2 tokens: RetinaNet P7, ResNet layer4 at 1/32).
INPUT_SIZE = dict(det=(128, 256), seg=(64, 128), cls=(32, 64))


def num_classes_of(model):
    head = getattr(model, 'bbox_head', None) or getattr(model, 'decode_head', None) or \
        getattr(getattr(model, 'roi_head', None), 'bbox_head', None) or model.head
    return head.num_classes


@pytest.mark.parametrize('config', CONFIGS, ids=[osp.basename(c) for c in CONFIGS])
def test_config_trains_two_iterations(config):
    cfg = Config.fromfile(config)
    if config in REAL_CONFIGS:
        assert cfg.model.teacher_ckpt, 'a real-data config names its teacher checkpoint'
    cfg.model.teacher_ckpt = None
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmengine')):
        model = MODELS.build(cfg.model)
    model.train()
    task = task_of(model.student)
    fit_preprocessor_to_size(model.data_preprocessor, *INPUT_SIZE[task])
    optim = torch.optim.SGD(model.parameters(), lr=1e-4)
    distill_names = set(model.distiller.distill_losses)
    student_params = [p for p in model.student.parameters() if p.requires_grad]
    for step in range(2):
        batch = synthetic_batch(task, 2, *INPUT_SIZE[task], num_classes_of(model.student), seed=step)
        losses = model.loss(**model.data_preprocessor(batch, True))
        assert distill_names <= set(losses), f'every distillation loss is logged: {sorted(losses)}'
        total, log_vars = model.parse_losses(losses)
        assert all(torch.isfinite(log_vars[name]) for name in distill_names), log_vars
        if step == 0:
            # The distillation term alone reaches the student.
            distill_grads = torch.autograd.grad(sum(losses[name] for name in distill_names), student_params,
                                                retain_graph=True, allow_unused=True)
            assert any(g is not None and g.abs().sum() > 0 for g in distill_grads)
        optim.zero_grad()
        total.backward()
        assert all(torch.isfinite(p.grad).all() for p in student_params if p.grad is not None)
        assert all(p.grad is None for p in model.teacher.parameters())
        optim.step()
