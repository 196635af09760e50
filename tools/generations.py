"""Knowledge distillation in generations (Yang et al., AAAI 2019, arXiv:1805.05551; docs/tolerant.md) in one command::

    python tools/generations.py TEACHER_CONFIG STUDENT_CONFIG --generations N --work-dir DIR [--strict]

- generation 0: ``TEACHER_CONFIG``, a plain model config whose loss is wrapped in ``TolerantLoss`` (the
  tolerant teacher); ``--strict`` sets ``eta = 1`` on every ``TolerantLoss`` in it (the strict teacher to
  compare with);
- generations 1..N: ``STUDENT_CONFIG``, a ``SingleTeacherDistill`` config whose student has the teacher's
  architecture, each with ``model.teacher_ckpt`` = the previous generation's model: generation 0's last
  training checkpoint, then each student's exported ``student_final.pth`` (``StudentExportHook``).

Every generation runs ``tools/train.py`` in a subprocess (mmengine's progress shows; ``--gpus N`` launches
N processes as ``tools/dist_train.sh`` does) in ``DIR/gen<g>``; ``--cfg-options`` go to every generation.
A finished generation leaves ``DIR/gen<g>/stage.json`` (its checkpoint and val metrics) and is skipped when
the command runs again; an unfinished one resumes from its last checkpoint. After each generation
``DIR/generations.{md,csv,png}`` tabulate and plot the val metrics (the last validation of each run).
"""
import argparse
import os
import os.path as osp

import mmdistkd  # noqa: F401  (mmdistkd:: paths in configs)
from mmdistkd.analysis.generations import Generations
from mmdistkd.analysis.stages import StageError


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('teacher_config', help='generation 0: a plain config with TolerantLoss')
    parser.add_argument('student_config', help='generations 1..N: a SingleTeacherDistill config')
    parser.add_argument('--generations', type=int, required=True, help='number of student generations N')
    parser.add_argument('--work-dir', required=True, help='gen<g>/ per generation and the results go here')
    parser.add_argument('--strict', action='store_true', help='generation 0 with eta = 1 (a strict teacher)')
    parser.add_argument('--gpus', type=int, default=1,
                        help='processes (one per GPU) per training run, launched as tools/dist_train.sh does')
    parser.add_argument('--metric', help='the val metric to plot (default: the task\'s main metric)')
    parser.add_argument('--cfg-options', nargs='+', default=[],
                        help='key=value overrides for every generation, as tools/train.py takes them')
    args = parser.parse_args()
    if args.generations < 0:
        parser.error('--generations must be >= 0')
    return args


def main():
    args = parse_args()
    os.makedirs(args.work_dir, exist_ok=True)
    chain = Generations(args.teacher_config, args.student_config, args.work_dir, args.strict, args.cfg_options,
                        args.metric, args.gpus)
    try:
        chain.run(args.generations)
    except StageError as error:
        raise SystemExit(f'generations: {error}') from None
    print(f'\nTable: {osp.join(chain.work_dir, "generations.md")} (and .csv); '
          f'plot: {osp.join(chain.work_dir, "generations.png")}')


if __name__ == '__main__':
    main()
