"""Plot DPK's prior ratio ``pi`` per distilled stage over the training iterations of a run.

    python tools/analysis/plot_dpk_ratio.py WORK_DIR [--out PNG]

Reads the newest ``WORK_DIR/<timestamp>/vis_data/scalars.json`` (mmengine's LocalVisBackend: one JSON
record per line) and draws every ``dpk_pi.<stage>`` scalar against its step. The logger averages scalars
over its interval (``default_hooks.logger.interval``), so each point is the mean ``pi`` of that window.
The PNG goes to ``--out``, by default ``WORK_DIR/dpk_pi.png``.

``load_dpk_ratios(work_dir)`` is the reading part, for reuse (e.g. by a demo that prints the curve).
"""
import argparse
import glob
import json
import os.path as osp

RATIO_PREFIX = 'dpk_pi.'


def newest_scalars_file(work_dir):
    """The ``vis_data/scalars.json`` of the newest run (mmengine's timestamped subfolders) in ``work_dir``."""
    candidates = glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    if not candidates:
        raise FileNotFoundError(f'no */vis_data/scalars.json in {work_dir!r}: is it the work_dir of a training run '
                                'with the LocalVisBackend (the default)?')
    # Run folders are named YYYYMMDD_HHMMSS, so the newest sorts last.
    return sorted(candidates, key=lambda path: osp.basename(osp.dirname(osp.dirname(path))))[-1]


def read_dpk_ratios(scalars_file):
    """``{stage: [(step, pi), ...]}`` from an mmengine ``scalars.json``, in file order."""
    ratios = {}
    seen_keys = set()
    with open(scalars_file, encoding='utf-8') as file:
        for line in file:
            if not line.strip():
                continue
            record = json.loads(line)
            seen_keys.update(record)
            step = record.get('step', record.get('iter'))
            for key, value in record.items():
                if key.startswith(RATIO_PREFIX):
                    ratios.setdefault(key[len(RATIO_PREFIX):], []).append((step, value))
    if not ratios:
        raise ValueError(f'{scalars_file} holds no {RATIO_PREFIX}<stage> scalars (keys found: '
                         f'{", ".join(sorted(seen_keys)) or "none"}): was it a DPK run?')
    return ratios


def load_dpk_ratios(work_dir):
    """``{stage: [(step, pi), ...]}`` of the newest run in ``work_dir``."""
    return read_dpk_ratios(newest_scalars_file(work_dir))


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
        scalars_file = newest_scalars_file(args.work_dir)
        ratios = read_dpk_ratios(scalars_file)
    except (FileNotFoundError, ValueError) as error:
        raise SystemExit(f'plot_dpk_ratio: {error}') from None
    out_file = args.out or osp.join(args.work_dir, 'dpk_pi.png')
    plot_dpk_ratios(ratios, out_file, title=f'DPK prior ratio, {osp.relpath(scalars_file, args.work_dir)}')
    summary = ', '.join(f'{stage} {points[0][1]:.3f} -> {points[-1][1]:.3f}'
                        for stage, points in sorted(ratios.items()))
    print(f'pi from {scalars_file}: {summary}\nwrote {out_file}')


if __name__ == '__main__':
    main()
