"""Classification heads. ``DeiTClsHead`` subclasses mmpretrain's, and ``import mmdistkd`` must not import
mmpretrain's models (detection and segmentation runs do not need them), so the registry holds a factory under the
class's name that imports it when a config builds it."""
from mmdistkd.registry import MODELS

__all__ = ['build_deit_cls_head']


@MODELS.register_module(name='DeiTClsHead')
def build_deit_cls_head(**kwargs):
    """MMRazor's ``DeiTClsHead`` (``deit_cls_head.py``), built from its config arguments."""
    from .deit_cls_head import DeiTClsHead
    return DeiTClsHead(**kwargs)
