"""Plot DPK's prior ratio ``pi`` per distilled stage over the training iterations of a run.

    python tools/analysis/plot_dpk_ratio.py WORK_DIR [--out PNG]

Reads the newest ``WORK_DIR/<timestamp>/vis_data/scalars.json`` (mmengine's LocalVisBackend: one JSON
record per line) and draws every ``dpk_pi.<stage>`` scalar against its step. The logger averages scalars
over its interval (``default_hooks.logger.interval``), so each point is the mean ``pi`` of that window.
The PNG goes to ``--out``, by default ``WORK_DIR/dpk_pi.png``.
"""
import argparse
import os.path as osp

from mmdistkd.analysis.plots import plot_dpk_ratios
from mmdistkd.analysis.run_logs import load_dpk_ratios, scalar_files


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
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
