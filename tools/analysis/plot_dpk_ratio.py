"""Plot DPK's prior ratio ``pi`` per distilled stage over the training iterations of a run.

    python tools/analysis/plot_dpk_ratio.py WORK_DIR [--out PNG]

Reads the newest ``WORK_DIR/<timestamp>/vis_data/scalars.json`` (mmengine's LocalVisBackend: one JSON
record per line) and draws every ``dpk_pi.<stage>`` scalar against its step. The logger averages scalars
over its interval (``default_hooks.logger.interval``), so each point is the mean ``pi`` of that window.
The PNG goes to ``--out``, by default ``WORK_DIR/dpk_pi.png``.

``load_dpk_ratios(work_dir)`` is the reading part, for reuse (e.g. by a demo that prints the curve).
"""
import argparse
import os.path as osp

from mmdistkd.utils.run_logs import scalar_files, scalar_records

RATIO_PREFIX = 'dpk_pi.'


def dpk_ratios(records):
    """``{stage: [(step, pi), ...]}`` from the records of an mmengine ``scalars.json``, in file order; ``{}``
    if no record holds a ratio."""
    ratios = {}
    for record in records:
        step = record.get('step', record.get('iter'))
        for key, value in record.items():
            if key.startswith(RATIO_PREFIX):
                ratios.setdefault(key[len(RATIO_PREFIX):], []).append((step, value))
    return ratios


def load_dpk_ratios(work_dir):
    """``{stage: [(step, pi), ...]}`` of the newest run in ``work_dir``; raises ``FileNotFoundError`` if it
    holds no run and ``ValueError`` if the run logged no ratio."""
    records = scalar_records(work_dir)
    ratios = dpk_ratios(records)
    if not ratios:
        keys = sorted({key for record in records for key in record})
        raise ValueError(f'the newest run in {work_dir} logged no {RATIO_PREFIX}<stage> scalars (keys found: '
                         f'{", ".join(keys) or "none"}): was it a DPK run?')
    return ratios


def plot_dpk_ratios(ratios, out_file, title=None):
    """Writes a PNG of ``pi`` per stage against the training step."""
    import matplotlib
    matplotlib.use('Agg')  # files only: no display on training machines
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4))
    for stage, points in sorted(ratios.items()):
        steps, values = zip(*points)
        axes.plot(steps, values, marker='.' if len(points) < 50 else None, label=stage)
    axes.set_xlabel('iteration')
    axes.set_ylabel('prior ratio pi = 1 - CKA')
    axes.set_ylim(0, 1)
    axes.grid(alpha=0.3)
    axes.legend(title='stage')
    if title:
        axes.set_title(title)
    figure.tight_layout()
    figure.savefig(out_file, dpi=120)
    plt.close(figure)


def main():
    parser = argparse.ArgumentParser(description="Plot DPK's prior ratio pi per stage over a run's iterations")
    parser.add_argument('work_dir', help='work_dir of a training run with DPK losses')
    parser.add_argument('--out', help='output PNG (default: WORK_DIR/dpk_pi.png)')
    args = parser.parse_args()
    try:
        ratios = load_dpk_ratios(args.work_dir)
    except (FileNotFoundError, ValueError) as error:
        raise SystemExit(f'plot_dpk_ratio: {error}') from None
    scalars_file = scalar_files(args.work_dir)[-1]
    out_file = args.out or osp.join(args.work_dir, 'dpk_pi.png')
    plot_dpk_ratios(ratios, out_file, title=f'DPK prior ratio, {osp.relpath(scalars_file, args.work_dir)}')
    summary = ', '.join(f'{stage} {points[0][1]:.3f} -> {points[-1][1]:.3f}'
                        for stage, points in sorted(ratios.items()))
    print(f'pi from {scalars_file}: {summary}\nwrote {out_file}')


if __name__ == '__main__':
    main()
