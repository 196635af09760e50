"""DPK configs beyond the smoke test of every method config (tests/configs/test_method_configs.py): the DPK
modules are trained with the student (gradients, optimizer, their own learning rate), are left out of the
exported student, and need no ``find_unused_parameters`` under DDP; the ratio ``pi`` reaches the run's
``scalars.json`` and tools/analysis/plot_dpk_ratio.py draws it."""
import glob
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

import mmdistkd  # noqa: F401
from conftest import REPO, run_tool
from mmdistkd.analysis.run_logs import scalar_records
from mmdistkd.analysis.synthetic import synthetic_batch
from mmdistkd.models.losses import DPKLoss
from mmdistkd.registry import MODELS
from mmdistkd.utils.student import student_state_dict

DEMO_CLS = 'configs/demo/dpk_resnet34_resnet18_demo_cls.py'
DPK_CONFIGS = sorted(glob.glob(osp.join(REPO, 'configs', 'dpk', '*.py')) +
                     glob.glob(osp.join(REPO, 'configs', 'demo', 'dpk_*.py')))
# The learning rate every DPK config gives the DPK modules (SGD; see configs/dpk/dpk_resnet34_resnet18_8xb32_in1k.py).
DPK_LR = 0.01


def param_ids(params):
    return {id(p) for p in params}


@pytest.mark.parametrize('config', DPK_CONFIGS, ids=[osp.basename(c) for c in DPK_CONFIGS])
def test_every_config_gives_the_dpk_modules_their_learning_rate(config):
    optim_wrapper = Config.fromfile(config).optim_wrapper
    lr_mult = optim_wrapper.paramwise_cfg.custom_keys['distiller']['lr_mult']
    assert optim_wrapper.optimizer.type == 'SGD' and math.isclose(optim_wrapper.optimizer.lr * lr_mult, DPK_LR)


def test_dpk_modules_train_with_the_student_and_stay_out_of_its_export():
    cfg = Config.fromfile(osp.join(REPO, DEMO_CLS))
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmengine')):
        model = MODELS.build(cfg.model)
    model.train()
    dpk_params = list(model.distiller.parameters())
    assert dpk_params, 'the DPK modules are parameters of the distiller'

    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    groups = optim_wrapper.optimizer.param_groups
    optimised = param_ids(p for group in groups for p in group['params'])
    assert param_ids(dpk_params) <= optimised and param_ids(model.student.parameters()) <= optimised
    dpk_ids = param_ids(dpk_params)
    assert all(math.isclose(group['lr'], DPK_LR) for group in groups if param_ids(group['params']) & dpk_ids)
    assert all(group['lr'] == cfg.optim_wrapper.optimizer.lr for group in groups
               if not param_ids(group['params']) & dpk_ids)

    ratio_keys = {loss.ratio_key for loss in model.distiller.distill_losses.values() if isinstance(loss, DPKLoss)}
    assert ratio_keys == {'dpk_pi.layer3', 'dpk_pi.layer4'}
    batch = synthetic_batch('cls', 2, 32, 32, 10)
    total, log_vars = model.parse_losses(model.loss(**model.data_preprocessor(batch, True)))
    assert torch.isfinite(total) and all(0 < log_vars[key] < 1 for key in ratio_keys)
    before = [p.detach().clone() for p in dpk_params]
    optim_wrapper.backward(total)
    # Every DPK parameter is on the loss's graph (what DDP without find_unused_parameters needs).
    assert all(p.grad is not None for p in dpk_params)
    optim_wrapper.step()
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

    train_records = [r for r in scalar_records(str(work_dir)) if 'dpk_pi.layer3' in r]
    assert [r['step'] for r in train_records] == [1, 2]
    assert all(0 < r[key] < 1 for r in train_records for key in ('dpk_pi.layer3', 'dpk_pi.layer4'))

    png = tmp_path / 'pi.png'
    run_tool(['tools/analysis/plot_dpk_ratio.py', str(work_dir), '--out', str(png)])
    assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
