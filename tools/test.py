# Copyright (c) mmdistkd. Same flags as mmdet's tools/test.py. On a distillation config it evaluates the
# student and never loads (or downloads) the teacher's weights; CHECKPOINT may be a distillation checkpoint
# or a plain student one (student_final.pth). With a plain student config, a distillation checkpoint is
# evaluated as its student. A CHECKPOINT that leaves part of the model unloaded is an error unless
# `--cfg-options load_from_partial=True` (mmdistkd's StrictLoadRunner).
import argparse
import os

from mmengine.config import DictAction
from mmengine.evaluator import DumpResults

import mmdistkd  # noqa: F401
from mmdistkd.analysis.configs import is_distill_config
from mmdistkd.utils.launch import build_runner, load_config, setup_cpu_distributed


def parse_args():
    parser = argparse.ArgumentParser(description='Test (evaluate) a model with mmdistkd')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the directory to save the file containing evaluation metrics')
    parser.add_argument('--out', type=str, help='dump predictions to a pickle file for offline evaluation')
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


def main():
    args = parse_args()
    cfg = load_config(args.config, args.cfg_options, args.work_dir, args.launcher)
    cfg.load_from = args.checkpoint
    if is_distill_config(cfg):
        cfg.model.teacher_ckpt = None
        if 'SingleTeacherDistillValLoop' in str(cfg.get('test_cfg', {}).get('type', '')):
            cfg.test_cfg = dict(type='TestLoop')

    setup_cpu_distributed(cfg)
    runner = build_runner(cfg)
    if args.out is not None:
        if not args.out.endswith(('.pkl', '.pickle')):
            raise ValueError('The dump file must be a pkl file.')
        runner.test_evaluator.metrics.append(DumpResults(out_file_path=args.out))
    runner.test()


if __name__ == '__main__':
    main()
