"""The demo behind ``make demo`` (TASK=det|seg|cls, det by default), on the bundled data:

1. train a tolerant teacher once;
2. for each seed, train the student alone (the baseline), the student distilled with DIST and with DPK, all
   at the same budget, and evaluate each on the val split;
3. print one table (val metric per run: mean and spread over seeds, and each distilled student's gain over
   the baseline), write it to ``results.md``, and write plots (val metric per run, training loss per run,
   DPK's prior ratio per stage) as PNGs into the work dir.

Each stage runs ``tools/train.py`` (with mmengine's progress output); the student runs go side by side, one
per core (``--jobs``), their output lines prefixed with the run's name. Finished runs are reused, so an
interrupted demo continues where it stopped.
"""
import argparse
import os
import os.path as osp
import statistics
import subprocess
import sys
import threading
import time

import matplotlib

matplotlib.use('Agg')  # files only

import matplotlib.pyplot as plt  # noqa: E402

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.join(REPO, 'tools', 'analysis'))
from plot_dpk_ratio import load_dpk_ratios, plot_dpk_ratios  # noqa: E402

from mmdistkd.utils.run_logs import last_checkpoint, last_val_metrics, scalar_records  # noqa: E402

TASKS = {
    'det': dict(metric='coco/bbox_mAP',
                teacher='configs/demo/tolerant_retinanet_r34_demo_det_teacher.py',
                runs=dict(baseline='configs/demo/retinanet_r18_demo_det_student.py',
                          dist='configs/demo/dist_retinanet_r34_r18_demo_det.py',
                          dpk='configs/demo/dpk_retinanet_r34_r18_demo_det.py')),
    'seg': dict(metric='mIoU',
                teacher='configs/demo/tolerant_deeplabv3_r34_demo_seg_teacher.py',
                runs=dict(baseline='configs/demo/deeplabv3_r18_demo_seg_student.py',
                          dist='configs/demo/dist_deeplabv3_r34_r18_demo_seg.py',
                          dpk='configs/demo/dpk_deeplabv3_r34_r18_demo_seg.py')),
    'cls': dict(metric='accuracy/top1',
                teacher='configs/demo/tolerant_resnet34_demo_cls_teacher.py',
                runs=dict(baseline='configs/demo/resnet18_demo_cls_student.py',
                          dist='configs/demo/dist_resnet34_resnet18_demo_cls.py',
                          dpk='configs/demo/dpk_resnet34_resnet18_demo_cls.py')),
}


def announce(text):
    print(f'\n=== {text}', flush=True)


def train_command(config, work_dir, options):
    """The tools/train.py command of a stage, or None if ``work_dir`` holds its finished run."""
    if osp.exists(osp.join(work_dir, 'final.pth')):
        return None
    command = [sys.executable, osp.join(REPO, 'tools', 'train.py'), config, '--work-dir', work_dir]
    return command + (['--cfg-options', *options] if options else [])


def finish(config, work_dir):
    """Renames the run's last checkpoint to ``final.pth``, the mark of a finished stage; returns its path."""
    final = osp.join(work_dir, 'final.pth')
    if not osp.exists(final):
        checkpoint = last_checkpoint(work_dir)
        if checkpoint is None:
            raise RuntimeError(f'{config} wrote no checkpoint to {work_dir}')
        os.replace(checkpoint, final)
    return final


def forward_output(process, prefix):
    for line in process.stdout:
        print(f'{prefix}{line}', end='', flush=True)


def run_stages(stages, jobs):
    """Trains ``stages`` (``(label, config, work_dir, options)``), ``jobs`` at a time, each with its share of the
    cores as torch threads; with several jobs each output line is prefixed with its stage's label. Small CPU
    models use a second thread poorly, so two one-thread runs side by side finish sooner than one after the
    other with two threads each."""
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    jobs = max(1, min(jobs, len(stages)))
    if jobs > 1:
        threads = str(max(1, len(os.sched_getaffinity(0)) // jobs))
        env.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
    pending = list(stages)
    running = []  # (label, config, work_dir, process, output thread)
    failed = []
    while pending or running:
        while pending and len(running) < jobs:
            label, config, work_dir, options = pending.pop(0)
            announce(f'{label}: {config}')
            command = train_command(config, work_dir, options)
            if command is None:
                print(f'(done before: {work_dir})')
                continue
            process = subprocess.Popen(command, cwd=REPO, env=env, text=True, stdout=subprocess.PIPE,
                                       stderr=subprocess.STDOUT)
            reader = threading.Thread(target=forward_output, args=(process, f'[{label}] ' if jobs > 1 else ''))
            reader.start()
            running.append((label, config, work_dir, process, reader))
        for entry in list(running):
            label, config, work_dir, process, reader = entry
            if process.poll() is None:
                continue
            reader.join()
            running.remove(entry)
            if process.returncode:
                failed.append(f'{label} ({config}) exited {process.returncode}; its log is in {work_dir}')
            else:
                finish(config, work_dir)
        time.sleep(0.2)
    if failed:
        raise SystemExit('demo: a stage failed:\n' + '\n'.join(failed))


def decimals_for(results):
    """COCO's mAP and mmpretrain's top-1 differ in scale (0-1 and 0-100): 4 decimals for the one, 2 for the other."""
    return 4 if max(value for values in results.values() for value in values) <= 1 else 2


def summary_table(metric, results, seeds):
    """Markdown: per run, the metric's mean and spread (min–max) over seeds and the gain over the baseline."""
    places = decimals_for(results)
    baseline = statistics.mean(results['baseline'])
    lines = [f'| run | {metric} (mean over seeds {", ".join(map(str, seeds))}) | min – max | '
             'gain over baseline |', '|---|---|---|---|']
    for name, values in results.items():
        mean = statistics.mean(values)
        gain = '—' if name in ('baseline', 'teacher') else f'{mean - baseline:+.{places}f}'
        spread = f'{min(values):.{places}f} – {max(values):.{places}f}' if len(values) > 1 else '— (one run)'
        lines.append(f'| {name} | {mean:.{places}f} | {spread} | {gain} |')
    return '\n'.join(lines)


def verdict(results):
    places = decimals_for(results)
    baseline_best = max(results['baseline'])
    lines = []
    for name in ('dist', 'dpk'):
        mean_gain = statistics.mean(results[name]) - statistics.mean(results['baseline'])
        if min(results[name]) > baseline_best:
            lines.append(f'- {name}: every run beats every baseline run (mean gain {mean_gain:+.{places}f}).')
        elif mean_gain > 0:
            lines.append(f'- {name}: higher on average ({mean_gain:+.{places}f}) but within the seed spread.')
        else:
            lines.append(f'- {name}: does not beat the baseline here ({mean_gain:+.{places}f}).')
    return '\n'.join(lines)


def plot_metrics(metric, results, out_file):
    figure, axes = plt.subplots(figsize=(6, 4))
    for index, (name, values) in enumerate(results.items()):
        axes.scatter([index] * len(values), values, label=name)
        axes.hlines(statistics.mean(values), index - 0.25, index + 0.25)
    axes.set_xticks(range(len(results)), list(results))
    axes.set_ylabel(f'val {metric}')
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(out_file, dpi=120)
    plt.close(figure)


def plot_losses(run_dirs, out_file):
    """Total training loss per run (first seed) over iterations."""
    figure, axes = plt.subplots(figsize=(7, 4))
    for name, work_dir in run_dirs.items():
        records = [r for r in scalar_records(work_dir) if 'loss' in r]
        axes.plot([r['step'] for r in records], [r['loss'] for r in records], label=name)
    axes.set_xlabel('iteration')
    axes.set_ylabel('training loss (student + distillation)')
    axes.set_yscale('log')
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(out_file, dpi=120)
    plt.close(figure)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--task', choices=sorted(TASKS), default='det')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1])
    parser.add_argument('--work-dir', default=osp.join(REPO, 'work_dirs', 'demo'))
    parser.add_argument('--jobs', type=int, default=len(os.sched_getaffinity(0)),
                        help='student runs trained side by side (default: one per core)')
    parser.add_argument('--cfg-options', nargs='*', default=[],
                        help='key=value overrides for every stage (e.g. train_cfg.max_iters=20)')
    args = parser.parse_args()
    task = TASKS[args.task]
    work_dir = osp.abspath(osp.join(args.work_dir, args.task))

    announce('demo data (data/demo)')
    if not osp.isdir(osp.join(REPO, 'data', 'demo', args.task)):
        subprocess.run([sys.executable, osp.join(REPO, 'tools', 'make_demo_data.py'), '--out',
                        osp.join(REPO, 'data', 'demo')], check=True)
    else:
        print('(present)')

    teacher_dir = osp.join(work_dir, 'teacher')
    run_stages([('tolerant teacher', task['teacher'], teacher_dir, args.cfg_options)], jobs=1)
    teacher_ckpt = finish(task['teacher'], teacher_dir)
    stages = []
    run_dirs = {}  # run name -> its work dir per seed
    # Longest runs first (DPK, DIST, then the baseline), so that the runs left alone at the end are short.
    for name, config in reversed(task['runs'].items()):
        for seed in args.seeds:
            run_dir = osp.join(work_dir, f'{name}_seed{seed}')
            options = [f'randomness.seed={seed}', *args.cfg_options]
            if name != 'baseline':
                options.append(f'model.teacher_ckpt={teacher_ckpt}')
            stages.append((f'seed {seed}, {name}', config, run_dir, options))
            run_dirs.setdefault(name, []).append(run_dir)
    run_stages(stages, args.jobs)
    results = {'teacher': [last_val_metrics(teacher_dir)[task['metric']]]}
    for name in task['runs']:
        results[name] = [last_val_metrics(run_dir)[task['metric']] for run_dir in run_dirs[name]]
    first_seed_dirs = {name: run_dirs[name][0] for name in task['runs']}

    announce(f'val {task["metric"]} on the demo {args.task} data')
    student_results = {name: values for name, values in results.items() if name != 'teacher'}
    table = summary_table(task['metric'], results, args.seeds)
    report = f'{table}\n\n{verdict(student_results)}\n'
    print(report)
    with open(osp.join(work_dir, 'results.md'), 'w') as file:
        file.write(report)
    plots = dict(metric=osp.join(work_dir, 'val_metric.png'), loss=osp.join(work_dir, 'train_loss.png'),
                 dpk=osp.join(work_dir, 'dpk_ratio.png'))
    plot_metrics(task['metric'], results, plots['metric'])
    plot_losses(first_seed_dirs, plots['loss'])
    plot_dpk_ratios(load_dpk_ratios(first_seed_dirs['dpk']), plots['dpk'], title=f'DPK prior ratio ({args.task})')
    print(f'Table: {osp.join(work_dir, "results.md")}')
    print('Plots: ' + ', '.join(plots.values()))
    print(f'Logs and checkpoints: {work_dir}')


if __name__ == '__main__':
    main()
