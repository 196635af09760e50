"""Write every config resolved (all of its ``_base_`` merged in) to one text file per config, so that a refactor of
the config files can be checked to change nothing a run sees:

    python tools/analysis/resolved_configs.py OUT_DIR [CONFIG ...]
    # refactor, then
    python tools/analysis/resolved_configs.py OUT_DIR_AFTER && diff -r OUT_DIR OUT_DIR_AFTER

Without CONFIG, every ``configs/*/*.py`` (not ``configs/_base_``). Each goes to ``OUT_DIR/<folder>/<name>.txt``
as ``pprint`` of ``Config.fromfile(config).to_dict()`` (keys sorted; tuples stay tuples) after the relative
``cfg_path`` values are anchored as tools/train.py anchors them, with the repository's own folder written as
``<repo>`` so that two checkouts compare equal. Nothing that names the config file itself is written (mmengine
keeps the file name outside ``to_dict()``).
"""
import argparse
import glob
import os
import os.path as osp
import pprint
import sys

from mmengine.config import Config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)  # mmdistkd:: bases and custom_imports resolve to this checkout

from mmdistkd.utils.config_paths import anchor_cfg_paths  # noqa: E402


def resolved_text(config):
    """The resolved config as sorted, stable text."""
    cfg = anchor_cfg_paths(Config.fromfile(config), config)
    return pprint.pformat(cfg.to_dict(), width=120).replace(REPO, '<repo>') + '\n'


def all_configs():
    return sorted(path for path in glob.glob(osp.join(REPO, 'configs', '*', '*.py'))
                  if osp.basename(osp.dirname(path)) != '_base_')


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('out_dir', help='folder for the resolved configs (made if missing)')
    parser.add_argument('configs', nargs='*', help='config files (default: every configs/*/*.py)')
    args = parser.parse_args()
    configs = args.configs or all_configs()
    for config in configs:
        config = osp.abspath(config)
        out_file = osp.join(args.out_dir, osp.basename(osp.dirname(config)),
                            osp.splitext(osp.basename(config))[0] + '.txt')
        os.makedirs(osp.dirname(out_file), exist_ok=True)
        with open(out_file, 'w', encoding='utf-8') as out:
            out.write(resolved_text(config))
    print(f'wrote {len(configs)} resolved configs to {args.out_dir}')


if __name__ == '__main__':
    main()
