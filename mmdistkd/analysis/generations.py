"""Knowledge distillation in generations (Yang et al., AAAI 2019, arXiv:1805.05551; docs/tolerant.md): the chain of
training stages behind ``tools/generations.py``, its table and its plot.

Generation 0 trains the teacher config (``strict``: with ``eta = 1`` on every ``TolerantLoss``); generation
g > 0 trains the student config with ``model.teacher_ckpt`` = the model generation g - 1 hands on: the
teacher's last training checkpoint, then each student's exported ``student_final.pth``.
"""
import argparse
import os.path as osp

from mmengine.config import DictAction

from mmdistkd.utils.launch import load_config

from .plots import line_plot
from .stages import Stage, StageError, run_stages
from .tables import markdown_table, write_csv

# The metric plotted when none is given: the first of these a run logs, else its first metric.
MAIN_METRICS = ('accuracy/top1', 'coco/bbox_mAP', 'mIoU', 'pascal_voc/mAP')


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


class Generations:
    """The chain in ``work_dir`` (``gen<g>/`` per generation): training it, and its results table and plot."""

    def __init__(self, teacher_config, student_config, work_dir, strict=False, cfg_options=(), metric=None,
                 processes=1, train_script=None):
        self.configs = dict(teacher=osp.abspath(teacher_config), student=osp.abspath(student_config))
        self.work_dir = osp.abspath(work_dir)
        self.strict = strict
        self.cfg_options = list(cfg_options)
        self.metric = metric
        self.processes = processes
        self.train_script = train_script

    def generation_dir(self, generation):
        return osp.join(self.work_dir, f'gen{generation}')

    def role(self, generation):
        if generation == 0:
            return 'strict teacher' if self.strict else 'tolerant teacher'
        return f'student of gen {generation - 1}'

    def stage(self, generation, teacher_checkpoint):
        options = list(self.cfg_options)
        if generation == 0 and self.strict:
            options += self.strict_options()
        if generation > 0:
            options.append(f'model.teacher_ckpt={teacher_checkpoint}')
        config = self.configs['teacher' if generation == 0 else 'student']
        return Stage(f'generation {generation} ({self.role(generation)})', config, self.generation_dir(generation),
                     tuple(options))

    def strict_options(self):
        cfg = load_config(self.configs['teacher'], parse_options(self.cfg_options))
        found = strict_overrides(cfg.to_dict())
        if not found:
            raise StageError(f'--strict: {self.configs["teacher"]} has no TolerantLoss to make strict')
        return found

    def handed_on(self, generation, record):
        """The model a finished generation hands on: the teacher's last training checkpoint, a student's
        exported ``student_final.pth``."""
        if generation == 0:
            return record['checkpoint']
        exported = osp.join(self.generation_dir(generation), 'student_final.pth')
        if not osp.isfile(exported):
            raise StageError(f'{self.generation_dir(generation)} has no student_final.pth: the student config '
                             'needs the StudentExportHook (inherit configs/_base_/distill_runtime.py)')
        return exported

    def run(self, generations):
        """Trains the generations not finished yet, writing the results after each; returns every
        generation's stage record."""
        records = []
        for generation in range(generations + 1):
            teacher_checkpoint = self.handed_on(generation - 1, records[-1]) if records else None
            records += run_stages([self.stage(generation, teacher_checkpoint)], processes=self.processes,
                                  train_script=self.train_script)
            self.write_results(records)
        return records

    def write_results(self, records):
        """``generations.{md,csv,png}`` in the work dir: the val metrics of every generation so far."""
        metric_names = list(dict.fromkeys(name for record in records for name in record['metrics']))
        header = ['generation', 'model'] + metric_names
        rows = [[generation, self.role(generation)] + [record['metrics'].get(name, '') for name in metric_names]
                for generation, record in enumerate(records)]
        write_csv(osp.join(self.work_dir, 'generations.csv'), header, rows)
        table = markdown_table(header, rows)
        with open(osp.join(self.work_dir, 'generations.md'), 'w') as file:
            file.write(table + '\n')
        print(table, flush=True)
        metric = self.metric or next((m for m in MAIN_METRICS if m in metric_names), metric_names[0])
        points = [(generation, record['metrics'][metric]) for generation, record in enumerate(records)
                  if metric in record['metrics']]
        if not points:
            raise StageError(f'--metric {metric}: no generation logged it; they logged {metric_names}')
        line_plot({None: points}, osp.join(self.work_dir, 'generations.png'), f'generation (0 = {self.role(0)})',
                  metric, marker='o', xticks=[generation for generation, _ in points], figsize=(5, 3.5), dpi=100)
