"""What ``tools/train.py`` and ``tools/test.py`` share: the config as mmdet's scripts prepare it, the runner,
plus distributed runs on CPU (gloo) for tests and users without GPUs.

mmengine's pytorch launcher calls ``torch.cuda.set_device`` and its Runner wraps DDP with
``device_ids=[LOCAL_RANK]``, both of which fail on CPU; a process group initialised here is reused by the
Runner (it skips ``init_dist`` when one exists) and ``device_ids=None`` is what DDP wants for CPU modules.
"""
import os
import os.path as osp

import torch
import torch.distributed as torch_dist
from mmengine.config import Config
from mmengine.registry import RUNNERS

from mmdistkd.engine.runner import StrictLoadRunner

from .config_paths import anchor_cfg_paths


def load_config(config, cfg_options=None, work_dir=None, launcher='none'):
    cfg = Config.fromfile(config)
    cfg.launcher = launcher
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    anchor_cfg_paths(cfg, config)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(config))[0])
    return cfg


def build_runner(cfg):
    """The runner the config names in ``runner_type``, else mmdistkd's ``StrictLoadRunner`` (mmengine's Runner
    whose ``load_from`` must load the whole model; ``load_from_partial=True`` accepts less)."""
    if 'runner_type' in cfg:
        return RUNNERS.build(cfg)
    return StrictLoadRunner.from_cfg(cfg)


def setup_cpu_distributed(cfg):
    """Initialises a gloo process group and a CPU DDP wrapper when launched distributed without CUDA."""
    if cfg.launcher == 'none' or torch.cuda.is_available():
        return
    if cfg.launcher != 'pytorch':
        raise RuntimeError(f'CPU-only distributed runs support --launcher pytorch (torchrun), not {cfg.launcher}')
    if not torch_dist.is_initialized():
        torch_dist.init_process_group(backend='gloo')
    wrapper = dict(cfg.get('model_wrapper_cfg') or {})
    wrapper.setdefault('type', 'MMDistributedDataParallel')
    wrapper.setdefault('broadcast_buffers', False)
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper
    os.environ.setdefault('LOCAL_RANK', '0')
