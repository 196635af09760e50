"""How tolerant a teacher is, per checkpoint: mean top-1 probability, secondary mass and entropy over a
config's val dataset (defined in mmdistkd/analysis/tolerance.py; ``--help`` prints the definitions)."""
import argparse
import os.path as osp

from mmengine.config import DictAction

from mmdistkd.analysis import tolerance
from mmdistkd.utils.launch import load_config


def parse_args():
    parser = argparse.ArgumentParser(description=tolerance.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help="the model's config (its val dataloader is used)")
    parser.add_argument('checkpoints', nargs='+', help='one or more checkpoints of that model')
    parser.add_argument('--k', type=int, default=3, help='secondary mass over ranks 2..k (default 3, as TSD)')
    parser.add_argument('--max-batches', type=int, help='stop after this many val batches')
    parser.add_argument('--top-anchors', type=int, default=100,
                        help='detection: anchors per image with the highest score (default 100)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='key=value config overrides')
    return parser.parse_args()


def main():
    args = parse_args()
    cfg = load_config(args.config, args.cfg_options)
    for checkpoint in args.checkpoints:
        if not osp.isfile(checkpoint):
            raise SystemExit(f'checkpoint {checkpoint} does not exist')
    results = tolerance.analyse(cfg, args.checkpoints, args.k, args.max_batches, args.top_anchors)
    print(tolerance.tolerance_table(results, args.k))


if __name__ == '__main__':
    main()
