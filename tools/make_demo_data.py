"""Generate the small, learnable demo datasets used by ``configs/demo`` (det: COCO, seg: Cityscapes layout,
cls: class folders), procedurally and deterministically for a given seed; see mmdistkd/analysis/demo_data.py.

    python tools/make_demo_data.py [--out data/demo] [--tasks det seg cls] [--seed 0] [--small]
"""
import argparse

from mmdistkd.analysis.demo_data import MAKERS, generate_demo_data


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', default='data/demo', help='output root; each task goes to OUT/<task>')
    parser.add_argument('--tasks', nargs='+', choices=list(MAKERS), default=list(MAKERS))
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--small', action='store_true', help='a few images per split, for tests')
    return parser.parse_args()


if __name__ == '__main__':
    args = parse_args()
    generate_demo_data(args.out, args.tasks, args.seed, args.small)
