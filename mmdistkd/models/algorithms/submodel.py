"""Builds the student and the teacher, each in its own registry scope.

A distillation config runs under one ``default_scope`` (often an inherited ``'mmdet'``), but the student
and teacher types (``RetinaNet``, ``ResNet``, ...) must resolve in their own package's registry while the
distiller's types resolve in mmdistkd's. A model is given as a dict or as ``cfg_path`` (a ``pkg::`` path or a
local config file) plus optional overrides merged into that file's ``model``, and MMRazor's ``pretrained=True``
beside ``cfg_path`` names the weights of that config in its package's model index (:func:`pretrained_weights`).
"""
import copy
import os.path as osp

from mmengine.config import Config
from mmengine.config.utils import MODULE2PACKAGE, _get_cfg_metainfo, _get_external_cfg_base_path
from mmengine.registry import MODELS as ROOT_MODELS
from mmengine.registry import DefaultScope
from mmengine.utils import get_installed_path

# Packages whose registries may hold a student or teacher type, searched when nothing names the scope.
CANDIDATE_SCOPES = ('mmdet', 'mmseg', 'mmpretrain')


def config_file(cfg_path):
    """The file of a config given as ``pkg::rel/path.py`` (inside an installed package) or as a local path.

    Through mmengine's config helpers rather than ``mmengine.hub.get_config``, which pip-installs a package that
    is missing: a build must never download; an uninstalled package is an error here."""
    if '::' in cfg_path:
        package, rel_path = cfg_path.split('::', 1)
        if package not in MODULE2PACKAGE:
            raise ValueError(f'cfg_path {cfg_path!r}: unknown package {package!r}; known: {sorted(MODULE2PACKAGE)}')
        return _get_external_cfg_base_path(get_installed_path(MODULE2PACKAGE[package]), rel_path)
    if not osp.isfile(cfg_path):
        raise FileNotFoundError(
            f'cfg_path {cfg_path!r} does not exist (looked for {osp.abspath(cfg_path)!r}). tools/train.py and '
            'tools/test.py read a relative cfg_path from the folder of the config file that names it, as _base_, '
            'then from the current directory; from Python, give a path from the current directory or a pkg:: '
            'path (e.g. "mmdet::retinanet/retinanet_r50_fpn_2x_coco.py").')
    return cfg_path


def pretrained_weights(model_cfg, role):
    """The weights URL that MMRazor's ``pretrained=True`` beside ``cfg_path`` names in a student or teacher config
    (``role`` names it in errors), as ``mmengine.hub.get_model`` finds it: the ``Weights`` of that config in the
    metafiles of its package's ``.mim/model-index.yml``. None without ``cfg_path`` or unless ``pretrained`` is True.
    ``pretrained=False`` is MMRazor's "no weights"; any other value (None, a path: mmseg's segmentors take
    ``pretrained='open-mmlab://resnet18_v1c'``) is the model's own argument, merged into it as an override."""
    if not isinstance(model_cfg, dict) or 'cfg_path' not in model_cfg or model_cfg.get('pretrained') is not True:
        return None
    cfg_path, pretrained = model_cfg['cfg_path'], model_cfg['pretrained']
    where = f'the {role}\'s pretrained={pretrained!r} (cfg_path={cfg_path!r})'
    package, _, rel_path = cfg_path.partition('::')
    if not rel_path or package not in MODULE2PACKAGE:
        raise ValueError(f'{where}: pretrained=True looks the weights up in the model index of a package, so '
                         'cfg_path must be a "pkg::rel/path.py" path; for a local config give the weights as '
                         'teacher_ckpt (teacher) or load_from (student) and set pretrained=False')
    try:
        weights = _get_cfg_metainfo(get_installed_path(MODULE2PACKAGE[package]), rel_path).get('Weights')
    except (ValueError, FileNotFoundError):  # not in the index (ValueError lists all configs); no index file
        weights = None
    if not weights:
        raise ValueError(f'{where}: the model index of {MODULE2PACKAGE[package]} lists no weights for {rel_path!r}. '
                         'Give the weights as teacher_ckpt (teacher) or load_from (student) and set pretrained=False')
    return weights


def load_model_config(cfg_path):
    """(model cfg, default scope) of a config file given as ``pkg::rel/path.py`` or a local path."""
    path = config_file(cfg_path)
    cfg = Config.fromfile(path)
    if 'model' not in cfg:
        raise ValueError(f'{cfg_path} defines no `model`')
    model = cfg.model
    # mmpretrain keeps the data preprocessor at the top level of its configs.
    if 'data_preprocessor' in cfg and 'data_preprocessor' not in model:
        model.data_preprocessor = cfg.data_preprocessor
    return model, cfg.get('default_scope')


def _scope_holding(type_name):
    """The first scope, the current one first, whose model registry has ``type_name``."""
    current = DefaultScope.get_current_instance()
    scopes = ([current.scope_name] if current is not None else []) + list(CANDIDATE_SCOPES)
    for scope in dict.fromkeys(s for s in scopes if s != 'mmdistkd'):
        with ROOT_MODELS.switch_scope_and_registry(scope) as registry:
            if registry.scope == scope and registry.get(type_name) is not None:
                return scope
    return None


def resolve_submodel(model_cfg, role, data_preprocessor=None):
    """(model cfg, registry scope) of the student or teacher (``role`` names it in errors): ``cfg_path`` read
    and its overrides merged, ``data_preprocessor`` filled in where the model config has none (the Runner hands
    a config's top-level one, as mmpretrain configs keep it, to the distillation model)."""
    model_cfg = copy.deepcopy(model_cfg)
    scope = model_cfg.pop('_scope_', None)
    if 'cfg_path' in model_cfg:
        cfg_path = model_cfg.pop('cfg_path')
        if isinstance(model_cfg.get('pretrained'), bool):
            del model_cfg['pretrained']  # MMRazor's key: see pretrained_weights
        loaded, file_scope = load_model_config(cfg_path)
        # Overrides merge recursively into the file's model, as --cfg-options would.
        merged = Config(dict(model=loaded))
        merged.merge_from_dict({f'model.{key}': value for key, value in model_cfg.items()})
        # A ConfigDict, not a dict: heads read their train_cfg / test_cfg by attribute.
        model_cfg, scope = merged.model, scope or file_scope
    if data_preprocessor is not None and 'data_preprocessor' not in model_cfg:
        model_cfg['data_preprocessor'] = copy.deepcopy(data_preprocessor)
    if 'type' not in model_cfg:
        raise ValueError(f'the {role} config needs `type` or `cfg_path`')
    type_name = model_cfg['type']
    if isinstance(type_name, str) and '.' in type_name and scope is None:
        scope, model_cfg['type'] = type_name.split('.', 1)
    if scope is None:
        scope = _scope_holding(type_name) if isinstance(type_name, str) else None
        if scope is None:
            raise ValueError(f'the {role} type {type_name!r} is not registered in any of {CANDIDATE_SCOPES}; '
                             'prefix it with its package (e.g. "mmdet.RetinaNet") or give `cfg_path`')
    return model_cfg, scope


def build_resolved(model_cfg, scope, role):
    """Builds a model config of :func:`resolve_submodel` in its registry ``scope``."""
    with ROOT_MODELS.switch_scope_and_registry(scope) as registry:
        if registry.scope != scope:
            raise ValueError(f'the {role} needs the registry scope {scope!r}, which is not installed')
        model = registry.build(model_cfg)
    model._mmdistkd_scope = scope
    return model


def build_submodel(model_cfg, role, data_preprocessor=None):
    """Builds the student or teacher (``role`` names it in errors) under its own scope; see
    :func:`resolve_submodel` for ``data_preprocessor``."""
    return build_resolved(*resolve_submodel(model_cfg, role, data_preprocessor), role)
