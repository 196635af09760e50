"""Lets ``mmdistkd::path/to/config.py`` resolve like ``mmdet::`` paths, once mmdistkd is imported.

mmengine resolves ``pkg::`` only for packages in ``MODULE2PACKAGE`` and reads ``<pkg>/.mim/configs`` (and
``.mim/model-index.yml`` for ``get_config``). A wheel ships ``.mim`` (setup.py copies it); a source checkout
gets symlinks to its ``configs/`` and ``tools/`` here.
"""
import os
import os.path as osp

from mmengine.config.utils import MODULE2PACKAGE

PACKAGE_DIR = osp.dirname(osp.dirname(osp.abspath(__file__)))
MIM_ENTRIES = ('configs', 'tools', 'model-index.yml')


def register_config_package():
    MODULE2PACKAGE.setdefault('mmdistkd', 'mmdistkd')
    repo_root = osp.dirname(PACKAGE_DIR)
    mim_dir = osp.join(PACKAGE_DIR, '.mim')
    for entry in MIM_ENTRIES:
        target, link = osp.join(repo_root, entry), osp.join(mim_dir, entry)
        if osp.exists(target) and not osp.lexists(link):
            try:
                os.makedirs(mim_dir, exist_ok=True)
                os.symlink(osp.relpath(target, mim_dir), link)
            except OSError:  # a read-only install: it ships .mim itself
                pass
