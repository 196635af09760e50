"""Training stages: runs of ``tools/train.py``, each in its own work dir, reused once finished.

A stage that finished leaves ``stage.json`` in its work dir: its config and ``--cfg-options``, its last
checkpoint and the metrics of its last validation (the model's, and a distillation's teacher's). Running it
again reads that file instead of training; an interrupted stage (a checkpoint but no ``stage.json``) resumes
from its last checkpoint. ``run_stages`` trains several stages side by side (the demo's students) or one
(each generation of a chain).
"""
import json
import os
import os.path as osp
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

from .run_logs import last_checkpoint, last_val_metrics, model_metrics

MARKER = 'stage.json'
PACKAGE_DIR = osp.dirname(osp.dirname(osp.abspath(__file__)))
# tools/train.py of a source checkout, or the copy an installed package ships in .mim (setup.py)
TRAIN_SCRIPTS = (osp.join(osp.dirname(PACKAGE_DIR), 'tools', 'train.py'),
                 osp.join(PACKAGE_DIR, '.mim', 'tools', 'train.py'))


class StageError(RuntimeError):
    """A stage failed, or its work dir holds a different finished run; the message says what to change."""


@dataclass
class Stage:
    name: str  # announces the stage, and prefixes its output lines when stages run side by side
    config: str
    work_dir: str
    options: tuple = ()  # --cfg-options of tools/train.py, key=value strings

    @property
    def marker(self):
        return osp.join(self.work_dir, MARKER)

    def identity(self):
        """What makes this stage: a finished run of anything else in its work dir is not reused."""
        return dict(config=osp.abspath(self.config), options=list(self.options))


def default_train_script():
    for script in TRAIN_SCRIPTS:
        if osp.isfile(script):
            return script
    raise StageError(f'tools/train.py is neither at {TRAIN_SCRIPTS[0]} nor at {TRAIN_SCRIPTS[1]}: run from a '
                     'source checkout of mmdistkd or pass train_script')


def finished_record(stage):
    """The record of the stage's finished run, or None; raises if its work dir finished another run."""
    if not osp.isfile(stage.marker):
        return None
    with open(stage.marker) as file:
        record = json.load(file)
    asked = stage.identity()
    if any(record.get(key) != value for key, value in asked.items()):
        raise StageError(f'{stage.marker} is a finished run of {record.get("config")} with --cfg-options '
                         f'{record.get("options")}; asked now: {asked["config"]} with {asked["options"]}. '
                         'Use another work dir (or delete this one) to train the new run')
    return record


def train_command(stage, train_script, processes=1):
    """tools/train.py for the stage; ``processes`` > 1 launches that many as tools/dist_train.sh does."""
    command = [sys.executable, train_script, osp.abspath(stage.config), '--work-dir', osp.abspath(stage.work_dir)]
    if processes > 1:
        command[1:1] = ['-m', 'torch.distributed.run', f'--nproc_per_node={processes}',
                        f'--master_port={os.environ.get("PORT", 29500)}']
        command += ['--launcher', 'pytorch']
    if last_checkpoint(stage.work_dir) is not None:  # interrupted: continue where it stopped
        command.append('--resume')
    if stage.options:
        command += ['--cfg-options', *stage.options]
    return command


def finish(stage):
    """Writes the stage's ``stage.json`` after its run exited cleanly; returns the record."""
    validation = last_val_metrics(stage.work_dir)
    metrics = model_metrics(validation)
    if not metrics:
        raise StageError(f'{stage.name}: {stage.config} logged no validation metrics in {stage.work_dir}: the '
                         'config needs a val_dataloader and val_cfg, validated at the end of training')
    checkpoint = last_checkpoint(stage.work_dir)
    if checkpoint is None:
        raise StageError(f'{stage.name}: {stage.config} left no last_checkpoint in {stage.work_dir}: the config '
                         'must keep a CheckpointHook (default_hooks.checkpoint) with save_last=True')
    record = dict(stage.identity(), checkpoint=checkpoint, metrics=metrics,
                  teacher_metrics=model_metrics(validation, teacher=True))
    with open(stage.marker, 'w') as file:
        json.dump(record, file, indent=2)
    return record


def forward_output(process, prefix):
    for line in process.stdout:
        print(f'{prefix}{line}', end='', flush=True)


def run_stages(stages, jobs=1, processes=1, cwd=None, train_script=None):
    """Trains the unfinished ``stages``, ``jobs`` at a time, and returns every stage's record, in order.

    Side by side (``jobs`` > 1) each run gets its share of the cores as torch threads and its output lines
    are prefixed with its stage's name: small CPU models use a second thread poorly, so two one-thread runs
    side by side finish sooner than one after the other with two threads each. ``processes`` > 1 runs each
    stage distributed, one stage at a time. A failed stage does not stop the others; the failures are raised
    (``StageError``) once every run has ended. ``cwd``: the directory relative paths in the configs start
    from (data roots)."""
    if jobs > 1 and processes > 1:
        raise ValueError('distributed stages (processes > 1) run one at a time: use jobs=1')
    train_script = train_script or default_train_script()
    records = [finished_record(stage) for stage in stages]  # before any training: a mismatch fails at once
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    jobs = max(1, min(jobs, len(stages)))
    if jobs > 1:
        threads = str(max(1, len(os.sched_getaffinity(0)) // jobs))
        env.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
    pending = list(range(len(stages)))
    running = []  # (index, process, output thread)
    failed = []
    while pending or running:
        while pending and len(running) < jobs:
            index = pending.pop(0)
            stage = stages[index]
            print(f'\n=== {stage.name}: {stage.config}', flush=True)
            if records[index] is not None:
                print(f'(done before: {stage.marker})', flush=True)
                continue
            process = subprocess.Popen(train_command(stage, train_script, processes), cwd=cwd, env=env, text=True,
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            reader = threading.Thread(target=forward_output,
                                      args=(process, f'[{stage.name}] ' if jobs > 1 else ''))
            reader.start()
            running.append((index, process, reader))
        for entry in list(running):
            index, process, reader = entry
            if process.poll() is None:
                continue
            reader.join()
            running.remove(entry)
            stage = stages[index]
            if process.returncode:
                failed.append(f'{stage.name} ({stage.config}) exited {process.returncode}; its log is in '
                              f'{stage.work_dir}')
                continue
            try:
                records[index] = finish(stage)
            except StageError as error:
                failed.append(str(error))
        time.sleep(0.2)
    if failed:
        raise StageError('stage failed:\n' + '\n'.join(failed))
    return records
