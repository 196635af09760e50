"""DPK configs beyond the smoke test of every method config (tests/configs/test_method_configs.py): the DPK
modules are trained with the student (gradients, optimizer, learning-rate multiplier), are left out of the
exported student, and need no ``find_unused_parameters`` under DDP; the ratio ``pi`` reaches the run's
``scalars.json`` and tools/analysis/plot_dpk_ratio.py draws it."""
import json
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

import mmdistkd  # noqa: F401
from conftest import REPO, run_tool
from mmdistkd.models.losses import DPKLoss
from mmdistkd.registry import MODELS
from mmdistkd.utils.student import student_state_dict
from mmdistkd.utils.synthetic import synthetic_batch, task_of

DEMO_CLS = 'configs/demo/dpk_resnet34_resnet18_demo_cls.py'
# config -> (batch height, width, num_classes), reduced where the data is larger (ResNet's layer4 at 1/32 needs
# 2 positions).
CONFIGS = {
    DEMO_CLS: (32, 32, 10),
    'configs/demo/dpk_retinanet_r34_r18_demo_det.py': (128, 128, 3),
    'configs/demo/dpk_deeplabv3_r34_r18_demo_seg.py': (64, 128, 19),
    'configs/dpk/dpk_resnet34_resnet18_8xb32_in1k.py': (32, 64, 1000),
}


def build_model(cfg):
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmengine')):
        return MODELS.build(cfg.model)


def param_ids(params):
    return {id(p) for p in params}


@pytest.mark.parametrize('config', sorted(CONFIGS), ids=[osp.basename(c) for c in sorted(CONFIGS)])
def test_dpk_modules_train_with_the_student_and_stay_out_of_its_export(config):
    height, width, num_classes = CONFIGS[config]
    cfg = Config.fromfile(osp.join(REPO, config))
    cfg.model.teacher_ckpt = None
    model = build_model(cfg)
    model.train()
    task = task_of(model.student)
    if task == 'seg':
        model.data_preprocessor.size = (height, width)  # mmseg pads every batch to the config's crop size
    dpk_params = list(model.distiller.parameters())
    assert dpk_params, 'the DPK modules are parameters of the distiller'

    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    groups = optim_wrapper.optimizer.param_groups
    optimised = param_ids(p for group in groups for p in group['params'])
    assert param_ids(dpk_params) <= optimised and param_ids(model.student.parameters()) <= optimised
    assert not param_ids(model.teacher.parameters()) & optimised
    # The config's lr_mult gives the DPK modules a parameter group of their own learning rate.
    base_lr = cfg.optim_wrapper.optimizer.lr
    lr_mult = cfg.optim_wrapper.paramwise_cfg.custom_keys['distiller']['lr_mult']
    dpk_ids = param_ids(dpk_params)
    assert all(math.isclose(group['lr'], base_lr * lr_mult) for group in groups
               if param_ids(group['params']) & dpk_ids)

    ratio_keys = {loss.ratio_key for loss in model.distiller.distill_losses.values() if isinstance(loss, DPKLoss)}
    assert ratio_keys
    for step in range(2):
        batch = synthetic_batch(task, 2, height, width, num_classes, seed=step)
        losses = model.loss(**model.data_preprocessor(batch, True))
        total, log_vars = model.parse_losses(losses)
        assert ratio_keys <= set(log_vars) and all(0 < log_vars[key] < 1 for key in ratio_keys)
        assert torch.isfinite(total)
        before = [p.detach().clone() for p in dpk_params]
        optim_wrapper.backward(total)
        # Every DPK parameter is on the loss's graph (what DDP without find_unused_parameters needs).
        assert all(p.grad is not None for p in dpk_params)
        optim_wrapper.step()
        optim_wrapper.zero_grad()
        assert any(not torch.equal(b, p) for b, p in zip(before, dpk_params))

    exported = student_state_dict(model.state_dict())
    assert set(exported) == set(model.student.state_dict())
    assert not any('distiller' in key or 'dpk' in key for key in exported)


def test_demo_trains_under_two_process_cpu_ddp_and_logs_pi(demo_data, tmp_path):
    """DDP without find_unused_parameters raises at the second step if a parameter got no gradient in the
    first; rank 0's scalars.json then holds pi per stage, which the plot tool draws."""
    cfg = Config.fromfile(osp.join(REPO, DEMO_CLS))
    assert not cfg.get('find_unused_parameters') and 'model_wrapper_cfg' not in cfg
    work_dir = tmp_path / 'ddp'
    result = run_tool(['bash', 'tools/dist_train.sh', DEMO_CLS, '2', '--work-dir', str(work_dir), '--cfg-options',
                       'train_cfg.max_iters=2', 'train_cfg.val_interval=2', 'default_hooks.logger.interval=1',
                       'train_dataloader.batch_size=2', 'val_dataloader.dataset.indices=8'],
                      env={'PORT': '29541'})
    assert 'Distributed training: True' in result.stdout + result.stderr
    exported = torch.load(work_dir / 'student_final.pth', map_location='cpu', weights_only=True)['state_dict']
    assert exported and not any('distiller' in key or 'dpk' in key for key in exported)

    (scalars_file, ) = work_dir.glob('*/vis_data/scalars.json')
    records = [json.loads(line) for line in scalars_file.read_text().splitlines() if line.strip()]
    train_records = [r for r in records if 'dpk_pi.layer3' in r]
    assert [r['step'] for r in train_records] == [1, 2]
    assert all(0 < r[key] < 1 for r in train_records for key in ('dpk_pi.layer3', 'dpk_pi.layer4'))

    png = tmp_path / 'pi.png'
    run_tool(['tools/analysis/plot_dpk_ratio.py', str(work_dir), '--out', str(png)])
    assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
