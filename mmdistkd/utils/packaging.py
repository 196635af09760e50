"""Lets ``mmdistkd::path/to/config.py`` resolve like ``mmdet::`` paths, once mmdistkd is imported.

mmengine resolves ``pkg::`` only for packages in ``MODULE2PACKAGE`` and reads ``<pkg>/.mim/configs`` (and
``.mim/model-index.yml`` for ``get_config``). The install puts ``.mim`` there (``setup.py``: symlinks for a
development install, copies in a wheel). A source checkout used without installing (``PYTHONPATH=.``) has
none: only then are the links made here, once, beside the sources.
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
            except OSError:  # a read-only checkout: mmdistkd:: paths stay unresolvable, nothing else breaks
                pass
