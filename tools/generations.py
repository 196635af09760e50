"""Knowledge distillation in generations (Yang et al., AAAI 2019; methods.md section 3) in one command::

    python tools/generations.py TEACHER_CONFIG STUDENT_CONFIG --generations N --work-dir DIR [--strict]

- generation 0: ``TEACHER_CONFIG``, a plain model config whose loss is wrapped in ``TolerantLoss`` (the
  tolerant teacher); ``--strict`` sets ``eta = 1`` on every ``TolerantLoss`` in it (the strict teacher to
  compare with);
- generations 1..N: ``STUDENT_CONFIG``, a ``SingleTeacherDistill`` config whose student has the teacher's
  architecture, each with ``model.teacher_ckpt`` = the previous generation's model: generation 0's last
  training checkpoint, then each student's exported ``student_final.pth`` (``StudentExportHook``).

Every generation runs ``tools/train.py`` in a subprocess (mmengine's progress shows; ``--gpus N`` launches
N processes as ``tools/dist_train.sh`` does) in ``DIR/gen<g>``; ``--cfg-options`` go to every generation.
A finished generation leaves ``DIR/gen<g>/generation.json`` (its model and val metrics) and is skipped when
the command runs again; an unfinished one resumes from its last checkpoint. After each generation
``DIR/generations.{md,csv,png}`` tabulate and plot the val metrics (the last validation of each run).
"""
import argparse
import csv
import json
import os
import os.path as osp
import subprocess
import sys

import matplotlib
from mmengine.config import DictAction

import mmdistkd  # noqa: F401  (mmdistkd:: paths in configs)
from mmdistkd.utils.launch import load_config
from mmdistkd.utils.run_logs import last_checkpoint, last_val_metrics, model_metrics

matplotlib.use('Agg')  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TRAIN = osp.join(REPO, 'tools', 'train.py')
# The metric plotted when --metric is not given: the first of these a run logs, else its first metric.
MAIN_METRICS = ('accuracy/top1', 'coco/bbox_mAP', 'mIoU', 'pascal_voc/mAP')
MARKER = 'generation.json'


def is_tolerant_loss(node):
    return isinstance(node, dict) and isinstance(node.get('type'), str) and \
        node['type'].split('.')[-1] == 'TolerantLoss'


def strict_overrides(node, path=''):
    """``--cfg-options`` entries setting ``eta=1.0`` on every ``TolerantLoss`` dict in a config dict (lists
    are walked too: mmengine takes list indices in option keys, e.g. ``loss_decode.0.eta``)."""
    if isinstance(node, dict):
        children = node.items()
    elif isinstance(node, (list, tuple)):
        children = enumerate(node)
    else:
        return []
    found = [f'{path}eta=1.0'] if is_tolerant_loss(node) else []
    for key, child in children:
        found += strict_overrides(child, f'{path}{key}.')
    return found


def parse_options(options):
    """``key=value`` strings -> dict, as tools/train.py's ``--cfg-options`` parses them."""
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    return parser.parse_args(['--cfg-options', *options]).cfg_options if options else {}


def final_checkpoint(work_dir, generation):
    """The model a finished generation hands on: the teacher's last training checkpoint (mmengine names it
    in ``last_checkpoint``), a student's exported ``student_final.pth``."""
    if generation > 0:
        exported = osp.join(work_dir, 'student_final.pth')
        if not osp.isfile(exported):
            raise SystemExit(f'{work_dir} has no student_final.pth: the student config needs the '
                             "StudentExportHook (inherit configs/_base_/distill_runtime.py)")
        return exported
    checkpoint = last_checkpoint(work_dir)
    if checkpoint is None:
        raise SystemExit(f'{work_dir} has no last_checkpoint: the teacher config must keep a CheckpointHook '
                         '(default_hooks.checkpoint) with save_last=True')
    return checkpoint


class Generations:
    """The chain in ``work_dir``: which generations are done, training the others, the results table."""

    def __init__(self, teacher_config, student_config, work_dir, strict=False, cfg_options=(), metric=None,
                 processes=1):
        self.configs = dict(teacher=osp.abspath(teacher_config), student=osp.abspath(student_config))
        self.work_dir = osp.abspath(work_dir)
        self.strict = strict
        self.cfg_options = list(cfg_options)
        self.metric = metric
        self.processes = processes

    def generation_dir(self, generation):
        return osp.join(self.work_dir, f'gen{generation}')

    def record(self, generation):
        """The finished generation's record, or None; raises if it was trained from other configs."""
        path = osp.join(self.generation_dir(generation), MARKER)
        if not osp.isfile(path):
            return None
        with open(path) as file:
            record = json.load(file)
        expected = self.describe(generation)
        changed = [key for key in expected if record.get(key) != expected[key]]
        if changed:
            raise SystemExit(f'{path} was made with ' + ', '.join(f'{k}={record.get(k)!r}' for k in changed) +
                             ', not ' + ', '.join(f'{k}={expected[k]!r}' for k in changed) +
                             ': use another --work-dir (or delete it) to train a different chain')
        return record

    def describe(self, generation):
        """What makes a generation of this chain: its config, and for the teacher its strictness."""
        if generation == 0:
            return dict(config=self.configs['teacher'], strict=self.strict)
        return dict(config=self.configs['student'])

    def options(self, generation, teacher_checkpoint):
        options = list(self.cfg_options)
        if generation == 0 and self.strict:
            options += self.strict_options()
        if generation > 0:
            options.append(f'model.teacher_ckpt={teacher_checkpoint}')
        return options

    def strict_options(self):
        cfg = load_config(self.configs['teacher'], parse_options(self.cfg_options))
        found = strict_overrides(cfg.to_dict())
        if not found:
            raise SystemExit(f'--strict: {self.configs["teacher"]} has no TolerantLoss to make strict')
        return found

    def train(self, generation, teacher_checkpoint=None):
        """Trains one generation (resuming an interrupted run) and returns its record."""
        work_dir = self.generation_dir(generation)
        config = self.configs['teacher' if generation == 0 else 'student']
        command = [sys.executable, TRAIN, config, '--work-dir', work_dir]
        if self.processes > 1:  # as tools/dist_train.sh launches it
            command[1:1] = ['-m', 'torch.distributed.run', f'--nproc_per_node={self.processes}',
                            f'--master_port={os.environ.get("PORT", 29500)}']
            command += ['--launcher', 'pytorch']
        if osp.isfile(osp.join(work_dir, 'last_checkpoint')):
            command.append('--resume')
        options = self.options(generation, teacher_checkpoint)
        if options:
            command += ['--cfg-options', *options]
        print(f'\n=== generation {generation}: {" ".join(command[1:])}', flush=True)
        subprocess.run(command, check=True)
        val_record = last_val_metrics(work_dir)
        metrics = model_metrics(val_record)
        if not metrics:
            raise SystemExit(f'generation {generation} logged no validation metrics in {work_dir}: the config '
                             'needs a val_dataloader and val_cfg, validated at the end of training')
        record = dict(self.describe(generation), generation=generation, teacher_checkpoint=teacher_checkpoint,
                      checkpoint=final_checkpoint(work_dir, generation), metrics=metrics,
                      # the previous generation's metrics as this run measured them: a check on the chain
                      teacher_metrics=model_metrics(val_record, teacher=True))
        with open(osp.join(work_dir, MARKER), 'w') as file:
            json.dump(record, file, indent=2)
        return record

    def run(self, generations):
        records = []
        for generation in range(generations + 1):
            record = self.record(generation)
            if record is None:
                record = self.train(generation, records[-1]['checkpoint'] if records else None)
            else:
                print(f'=== generation {generation}: done ({osp.join(self.generation_dir(generation), MARKER)})')
            records.append(record)
            self.write_results(records)
        return records

    # -------------------------------------------------------------------------------- results
    def role(self, generation):
        if generation == 0:
            return 'strict teacher' if self.strict else 'tolerant teacher'
        return f'student of gen {generation - 1}'

    def write_results(self, records):
        metric_names = list(dict.fromkeys(name for record in records for name in record['metrics']))
        rows = [[record['generation'], self.role(record['generation'])] +
                [record['metrics'].get(name, '') for name in metric_names] for record in records]
        header = ['generation', 'model'] + metric_names
        with open(osp.join(self.work_dir, 'generations.csv'), 'w', newline='') as file:
            csv.writer(file).writerows([header] + rows)
        lines = ['| ' + ' | '.join(header) + ' |', '|' + ' --- |' * len(header)]
        lines += ['| ' + ' | '.join(format_value(value) for value in row) + ' |' for row in rows]
        with open(osp.join(self.work_dir, 'generations.md'), 'w') as file:
            file.write('\n'.join(lines) + '\n')
        self.plot(records, metric_names)
        print('\n'.join(lines), flush=True)

    def plot(self, records, metric_names):
        metric = self.metric or next((m for m in MAIN_METRICS if m in metric_names), metric_names[0])
        points = [(r['generation'], r['metrics'][metric]) for r in records if metric in r['metrics']]
        if not points:
            raise SystemExit(f'--metric {metric}: no generation logged it; they logged {metric_names}')
        figure, axes = plt.subplots(figsize=(5, 3.5))
        axes.plot(*zip(*points), marker='o')
        axes.set_xticks([generation for generation, _ in points])
        axes.set_xlabel('generation (0 = %s)' % self.role(0))
        axes.set_ylabel(metric)
        axes.grid(alpha=0.3)
        figure.tight_layout()
        figure.savefig(osp.join(self.work_dir, 'generations.png'), dpi=100)
        plt.close(figure)


def format_value(value):
    return f'{value:.4f}' if isinstance(value, float) else str(value)


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
    chain.run(args.generations)
    print(f'\nTable: {osp.join(chain.work_dir, "generations.md")} (and .csv); '
          f'plot: {osp.join(chain.work_dir, "generations.png")}')


if __name__ == '__main__':
    main()
