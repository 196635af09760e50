"""mmdistkd's registries: children of mmengine's roots under the scope ``mmdistkd``.

``type='mmdistkd.X'`` then resolves from any mmdet / mmseg / mmpretrain config that imports mmdistkd
(``custom_imports = dict(imports=['mmdistkd'], allow_failed_imports=False)``).
"""
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import LOOPS as MMENGINE_LOOPS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import PARAM_SCHEDULERS as MMENGINE_PARAM_SCHEDULERS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import Registry

MODELS = Registry('model', parent=MMENGINE_MODELS, scope='mmdistkd', locations=['mmdistkd.models'])
HOOKS = Registry('hook', parent=MMENGINE_HOOKS, scope='mmdistkd', locations=['mmdistkd.engine'])
LOOPS = Registry('loop', parent=MMENGINE_LOOPS, scope='mmdistkd', locations=['mmdistkd.engine'])
OPTIM_WRAPPER_CONSTRUCTORS = Registry('optimizer wrapper constructor', parent=MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS,
                                      scope='mmdistkd', locations=['mmdistkd.engine'])
PARAM_SCHEDULERS = Registry('parameter scheduler', parent=MMENGINE_PARAM_SCHEDULERS, scope='mmdistkd',
                            locations=['mmdistkd.engine'])
# Imported on first use (``type='mmdistkd.CRDDataset'``), not by ``import mmdistkd``: they import mmpretrain.
DATASETS = Registry('dataset', parent=MMENGINE_DATASETS, scope='mmdistkd', locations=['mmdistkd.datasets'])
TRANSFORMS = Registry('transform', parent=MMENGINE_TRANSFORMS, scope='mmdistkd', locations=['mmdistkd.datasets'])
# Recorders and connectors are models in MMRazor too (``type='ModuleOutputs'`` resolves in MODELS).

# How the teacher runs in a training step (``teacher_forward``): mmdistkd's own kind, so it has no mmengine parent.
TEACHER_FORWARDS = Registry('teacher forward', scope='mmdistkd',
                            locations=['mmdistkd.models.algorithms.teacher_forward'])


def build_in_mmdistkd_scope(cfg):
    """``cfg`` built with its unprefixed types resolved in mmdistkd's model registry, whatever the default scope
    (a config inheriting ``default_scope='mmdet'``, a distiller or recorder built under an mmpretrain runner)."""
    with MODELS.switch_scope_and_registry('mmdistkd') as registry:
        return registry.build(cfg)
