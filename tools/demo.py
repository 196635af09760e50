"""The demo behind ``make demo`` (TASK=det|seg|cls, det by default), on the bundled data:

1. train a tolerant teacher once;
2. for each seed, train the student alone (the baseline), the student distilled with DIST and with DPK, all
   at the same budget, and evaluate each on the val split;
3. print one table (val metric per run: mean and spread over seeds, and each distilled student's gain over
   the baseline), write it to ``results.md``, and write plots (val metric per run, training loss per run,
   DPK's prior ratio per stage) as PNGs into the work dir.

Each stage runs ``tools/train.py`` (with mmengine's progress output); finished runs are reused, so an
interrupted demo continues where it stopped.
"""
import argparse
import glob
import os
import os.path as osp
import statistics
import subprocess
import sys

import matplotlib

matplotlib.use('Agg')  # files only

import matplotlib.pyplot as plt  # noqa: E402

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.join(REPO, 'tools', 'analysis'))
from plot_dpk_ratio import load_dpk_ratios, plot_dpk_ratios  # noqa: E402

from mmdistkd.utils.run_logs import last_val_metrics, scalar_records  # noqa: E402

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


def train(config, work_dir, options):
    """Runs tools/train.py unless ``work_dir`` holds a finished run; returns the final checkpoint."""
    final = osp.join(work_dir, 'final.pth')
    if osp.exists(final):
        print(f'(done before: {work_dir})')
        return final
    command = [sys.executable, osp.join(REPO, 'tools', 'train.py'), config, '--work-dir', work_dir]
    subprocess.run(command + (['--cfg-options', *options] if options else []), cwd=REPO, check=True)
    checkpoints = sorted(glob.glob(osp.join(work_dir, 'iter_*.pth')), key=lambda p: int(osp.basename(p)[5:-4]))
    if not checkpoints:
        raise RuntimeError(f'{config} wrote no checkpoint to {work_dir}')
    os.replace(checkpoints[-1], final)
    return final


def summary_table(metric, results, seeds):
    """Markdown: per run, the metric's mean and spread (min–max) over seeds and the gain over the baseline."""
    baseline = statistics.mean(results['baseline'])
    lines = [f'| run | {metric} (mean over seeds {", ".join(map(str, seeds))}) | min – max | '
             'gain over baseline |', '|---|---|---|---|']
    for name, values in results.items():
        mean = statistics.mean(values)
        gain = '—' if name in ('baseline', 'teacher') else f'{mean - baseline:+.4f}'
        lines.append(f'| {name} | {mean:.4f} | {min(values):.4f} – {max(values):.4f} | {gain} |')
    return '\n'.join(lines)


def verdict(results):
    baseline_best = max(results['baseline'])
    lines = []
    for name in ('dist', 'dpk'):
        mean_gain = statistics.mean(results[name]) - statistics.mean(results['baseline'])
        if min(results[name]) > baseline_best:
            lines.append(f'- {name}: beats the baseline in every seed (mean gain {mean_gain:+.4f}).')
        elif mean_gain > 0:
            lines.append(f'- {name}: higher on average ({mean_gain:+.4f}) but within the seed spread.')
        else:
            lines.append(f'- {name}: does not beat the baseline here ({mean_gain:+.4f}).')
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

    announce(f'tolerant teacher: {task["teacher"]}')
    teacher_dir = osp.join(work_dir, 'teacher')
    teacher_ckpt = train(task['teacher'], teacher_dir, args.cfg_options)
    results = {'teacher': [last_val_metrics(teacher_dir)[task['metric']]]}
    first_seed_dirs = {}
    for seed in args.seeds:
        for name, config in task['runs'].items():
            announce(f'seed {seed}, {name}: {config}')
            run_dir = osp.join(work_dir, f'{name}_seed{seed}')
            options = [f'randomness.seed={seed}', *args.cfg_options]
            if name != 'baseline':
                options.append(f'model.teacher_ckpt={teacher_ckpt}')
            train(config, run_dir, options)
            results.setdefault(name, []).append(last_val_metrics(run_dir)[task['metric']])
            first_seed_dirs.setdefault(name, run_dir)

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
