# Copyright (c) mmdistkd. Same flags as mmdet's tools/train.py.
import argparse
import os

from mmengine.config import DictAction
from mmengine.logging import print_log

import mmdistkd  # noqa: F401  (registers mmdistkd's modules, mmdistkd:: configs, safe checkpoint loading)
from mmdistkd.utils.launch import build_runner, load_config, setup_cpu_distributed


def parse_args():
    parser = argparse.ArgumentParser(description='Train a model (distillation or plain) with mmdistkd')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument('--amp', action='store_true', default=False,
                        help='enable automatic-mixed-precision training')
    parser.add_argument('--auto-scale-lr', action='store_true', help='enable automatically scaling LR.')
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='If specify checkpoint path, resume from it, while if not specify, try to auto '
                        'resume from the latest checkpoint in the work directory.')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override some settings in the used config, the key-value pair in xxx=yyy format '
                        'will be merged into config file.')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
                        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def enable_amp(cfg):
    """``--amp``: dynamic-loss-scale AMP on the optimizer wrapper, or on every wrapper of the multi-optimizer
    form (no ``optimizer`` at the top, one wrapper config per entry besides ``constructor``), which share one
    loss scale (mmdistkd's SeparateDistillerOptimWrapperConstructor)."""
    optim_wrapper = cfg.optim_wrapper
    wrappers = [optim_wrapper] if 'optimizer' in optim_wrapper else [
        wrapper for key, wrapper in optim_wrapper.items() if key != 'constructor']
    if all(wrapper.get('type') == 'AmpOptimWrapper' for wrapper in wrappers):
        print_log('AMP training is already enabled in your config.', logger='current')
    for wrapper in wrappers:
        if wrapper.get('type') != 'AmpOptimWrapper':
            wrapper.type = 'AmpOptimWrapper'
            wrapper.loss_scale = 'dynamic'


def main():
    args = parse_args()
    cfg = load_config(args.config, args.cfg_options, args.work_dir, args.launcher)

    if args.amp:
        enable_amp(cfg)

    if args.auto_scale_lr:
        if 'auto_scale_lr' in cfg and 'enable' in cfg.auto_scale_lr and 'base_batch_size' in cfg.auto_scale_lr:
            cfg.auto_scale_lr.enable = True
        else:
            raise RuntimeError('Can not find "auto_scale_lr" or "auto_scale_lr.enable" or '
                               '"auto_scale_lr.base_batch_size" in your configuration file.')

    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume

    setup_cpu_distributed(cfg)
    runner = build_runner(cfg)
    runner.train()


if __name__ == '__main__':
    main()
