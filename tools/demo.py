"""The demo behind ``make demo`` (TASK=det|seg|cls, det by default), on the bundled data:

1. train a tolerant teacher once;
2. for each seed (4 by default), train the student alone (the baseline), the student distilled with DIST and
   with DPK (in detection also the student that only inherits the teacher's modules, as the DPK row does), all
   at the same budget, and evaluate each on the val split;
3. print the results (per run: mean, standard deviation and min-max over seeds; each run's value per seed;
   each distilled student against the baseline seed by seed, with a paired t-test's verdict: gain beyond
   noise, within noise or loss beyond noise), write them to ``results.md``, and write plots (val metric per run
   and seed, training loss per run, DPK's prior ratio per stage) as PNGs into the work dir.

Each stage runs ``tools/train.py`` (with mmengine's progress output); the student runs go side by side, one
per core (``--jobs``), their output lines prefixed with the run's name. Finished runs are reused, so an
interrupted demo continues where it stopped.
"""
import argparse
import math
import os
import os.path as osp
import time

from mmdistkd.analysis.demo_data import generate_demo_data
from mmdistkd.analysis.plots import line_plot, per_seed_plot, plot_dpk_ratios
from mmdistkd.analysis.run_logs import load_dpk_ratios, scalar_records
from mmdistkd.analysis.seed_comparison import SIGNIFICANCE, SeedStatistics, compare_paired
from mmdistkd.analysis.stages import Stage, StageError, run_stages
from mmdistkd.analysis.tables import markdown_table

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TASKS = {
    'det': dict(metric='coco/bbox_mAP',
                teacher='configs/demo/tolerant_retinanet_r34_demo_det_teacher.py',
                runs=dict(baseline='configs/demo/retinanet_r18_demo_det_student.py',
                          inherit='configs/demo/inherit_retinanet_r34_r18_demo_det.py',
                          dist='configs/demo/dist_retinanet_r34_r18_demo_det.py',
                          dpk='configs/demo/dpk_retinanet_r34_r18_demo_det.py'),
                # the DPK row inherits modules from the teacher: does DPK add anything to inheriting them?
                also_compare=[('dpk', 'inherit')]),
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


def decimals_for(results):
    """COCO's mAP and mmpretrain's top-1 differ in scale (0-1 and 0-100): 4 decimals for the one, 2 for the other."""
    return 4 if max(value for values in results.values() for value in values) <= 1 else 2


def summary_table(metric, results, seeds, gains):
    """Markdown: per run, the metric's mean, standard deviation and min–max over seeds, and ``gains[run]``, its
    mean gain over the baseline (from the paired comparison)."""
    places = decimals_for(results)
    rows = []
    for name, values in results.items():
        stats = SeedStatistics.of(values)
        gain = f'{gains[name]:+.{places}f}' if name in gains else '—'
        spread = (f'{stats.std:.{places}f}', f'{stats.min:.{places}f} – {stats.max:.{places}f}') \
            if len(values) > 1 else ('—', '— (one run)')
        rows.append([name, f'{stats.mean:.{places}f}', *spread, gain])
    return markdown_table([
        'run', f'{metric} (mean over seeds {", ".join(map(str, seeds))})', 'std', 'min – max', 'gain over baseline'
    ], rows)


def per_seed_table(results, seeds):
    """Markdown: each student run's metric per seed (same seed: same initial student and data order)."""
    places = decimals_for(results)
    rows = [[name, *(f'{value:.{places}f}' for value in values)]
            for name, values in results.items() if name != 'teacher']
    return markdown_table(['run', *(f'seed {seed}' for seed in seeds)], rows)


def comparison_table(comparisons, places):
    """Markdown: per comparison, the gain on each seed, the mean gain, the paired test and its verdict."""
    rows = []
    for comparison in comparisons:
        p_value = '—' if math.isnan(comparison.p_value) else f'{comparison.p_value:.3f}'
        rows.append([f'{comparison.run} vs {comparison.reference}',
                     ' / '.join(f'{difference:+.{places}f}' for difference in comparison.differences),
                     f'{comparison.mean_gain:+.{places}f}',
                     f'{comparison.seeds_higher} of {len(comparison.differences)}', p_value,
                     f'**{comparison.verdict}**'])
    return markdown_table(['comparison', 'gain per seed', 'mean gain', 'seeds higher', 'paired t-test p',
                           'verdict'], rows)


def report(task, results, seeds):
    """The demo's results.md: the summary, the per-seed values and the paired comparisons."""
    student_results = {name: values for name, values in results.items() if name != 'teacher'}
    against_baseline = [compare_paired(student_results, name, 'baseline')
                        for name in student_results if name != 'baseline']
    comparisons = against_baseline + [compare_paired(student_results, run, reference)
                                      for run, reference in task.get('also_compare', ())]
    gains = {comparison.run: comparison.mean_gain for comparison in against_baseline}
    return (f'{summary_table(task["metric"], results, seeds, gains)}\n\n'
            f'Per seed (the teacher is trained once):\n\n{per_seed_table(results, seeds)}\n\n'
            f'Paired over seeds (verdict: two-sided paired t-test at the {SIGNIFICANCE:.0%} level):\n\n'
            f'{comparison_table(comparisons, decimals_for(results))}\n')


def plot_losses(run_dirs, out_file):
    """Total training loss per run (first seed) over iterations."""
    losses = {name: [(record['step'], record['loss']) for record in scalar_records(work_dir) if 'loss' in record]
              for name, work_dir in run_dirs.items()}
    line_plot(losses, out_file, 'iteration', 'training loss (student + distillation)', log_y=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--task', choices=sorted(TASKS), default='det')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2, 3])
    parser.add_argument('--work-dir', default=osp.join(REPO, 'work_dirs', 'demo'))
    parser.add_argument('--jobs', type=int, default=len(os.sched_getaffinity(0)),
                        help='student runs trained side by side (default: one per core)')
    parser.add_argument('--cfg-options', nargs='*', default=[],
                        help='key=value overrides for every stage (e.g. train_cfg.max_iters=20)')
    args = parser.parse_args()
    task = TASKS[args.task]
    work_dir = osp.abspath(osp.join(args.work_dir, args.task))

    started = time.perf_counter()
    announce('demo data (data/demo)')
    if not osp.isdir(osp.join(REPO, 'data', 'demo', args.task)):
        generate_demo_data(osp.join(REPO, 'data', 'demo'))
    else:
        print('(present)')

    try:
        [teacher] = run_stages([Stage('tolerant teacher', task['teacher'], osp.join(work_dir, 'teacher'),
                                      tuple(args.cfg_options))], cwd=REPO)
        stages = []
        seed_stages = {}  # run name -> the index of its stage per seed
        # Longest runs first (DPK, DIST, ..., the baseline), so that the runs left alone at the end are short.
        for name, config in reversed(task['runs'].items()):
            for seed in args.seeds:
                options = [f'randomness.seed={seed}', *args.cfg_options]
                if name != 'baseline':
                    options.append(f'model.teacher_ckpt={teacher["checkpoint"]}')
                seed_stages.setdefault(name, []).append(len(stages))
                stages.append(Stage(f'seed {seed}, {name}', config, osp.join(work_dir, f'{name}_seed{seed}'),
                                    tuple(options)))
        records = run_stages(stages, args.jobs, cwd=REPO)
    except StageError as error:
        raise SystemExit(f'demo: {error}') from None
    results = {'teacher': [teacher['metrics'][task['metric']]]}
    for name in task['runs']:
        results[name] = [records[index]['metrics'][task['metric']] for index in seed_stages[name]]
    first_seed_dirs = {name: stages[seed_stages[name][0]].work_dir for name in task['runs']}

    announce(f'val {task["metric"]} on the demo {args.task} data')
    text = report(task, results, args.seeds)
    print(text)
    with open(osp.join(work_dir, 'results.md'), 'w') as file:
        file.write(text)
    plots = dict(metric=osp.join(work_dir, 'val_metric.png'), loss=osp.join(work_dir, 'train_loss.png'),
                 dpk=osp.join(work_dir, 'dpk_ratio.png'))
    per_seed_plot(results, args.seeds, plots['metric'], f'val {task["metric"]}')
    plot_losses(first_seed_dirs, plots['loss'])
    plot_dpk_ratios(load_dpk_ratios(first_seed_dirs['dpk']), plots['dpk'], title=f'DPK prior ratio ({args.task})')
    print(f'Table: {osp.join(work_dir, "results.md")}')
    print('Plots: ' + ', '.join(plots.values()))
    print(f'Logs and checkpoints: {work_dir}')
    minutes, seconds = divmod(round(time.perf_counter() - started), 60)
    print(f'Demo time: {minutes}m{seconds:02d}s (stages done before are not retrained)')


if __name__ == '__main__':
    main()
