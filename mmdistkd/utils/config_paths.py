"""Local ``cfg_path`` values read relative to the config file that names them, as ``_base_`` is.

``architecture=dict(cfg_path='./student.py')`` in ``configs/x/dist.py`` means ``configs/x/student.py``, wherever
the command runs; a path that is only found from the current directory (how MMRazor read it) still works.
"""
import os.path as osp

from mmengine.config import Config


def local_inheritance_chain(config):
    """``config`` and every local file it inherits through ``_base_`` (depth first, itself first); upstream
    ``pkg::`` bases are left out: they name no local ``cfg_path``."""
    chain = [osp.abspath(config)]
    for base in Config._get_base_files(config):
        if '::' not in base:
            chain += local_inheritance_chain(osp.join(osp.dirname(config), base))
    return chain


def cfg_path_dicts(node):
    """Every dict under ``node`` (dicts and lists, nested) that has a ``cfg_path``."""
    if isinstance(node, dict):
        if isinstance(node.get('cfg_path'), str):
            yield node
        for value in node.values():
            yield from cfg_path_dicts(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            yield from cfg_path_dicts(value)


def anchor_cfg_paths(cfg, config):
    """Makes every relative local ``cfg_path`` in ``cfg.model`` (loaded from the file ``config``) absolute: the
    first that exists of that path beside each file of the inheritance chain whose text names it, then from the
    current directory. One that exists nowhere becomes the first of those places, so the build's "does not
    exist" error shows where it was looked for."""
    chain = local_inheritance_chain(config)
    texts = {path: open(path, encoding='utf-8').read() for path in chain}
    for owner in cfg_path_dicts(cfg.get('model')):
        value = owner['cfg_path']
        if '::' in value or osp.isabs(value):
            continue
        candidates = [osp.join(osp.dirname(path), value) for path in chain if value in texts[path]]
        candidates.append(osp.abspath(value))
        owner['cfg_path'] = osp.normpath(next((c for c in candidates if osp.isfile(c)), candidates[0]))
    return cfg
