"""mmdistkd: knowledge distillation (DIST, DPK, tolerant teachers) for mmpretrain, mmdet and mmseg.

Importing it registers its models, losses, hooks and loops in the ``mmdistkd`` registry scope, makes
``mmdistkd::`` config paths resolvable, and lets mmengine resume its own checkpoints on torch >= 2.6
through an allow-listed weights-only loader.
"""
from . import engine, models  # noqa: F401, E402
from .engine.safe_checkpoint import register_safe_checkpoint_loaders  # noqa: E402
from .utils.packaging import register_config_package  # noqa: E402
from .version import __version__  # noqa: F401

register_config_package()
register_safe_checkpoint_loaders()
