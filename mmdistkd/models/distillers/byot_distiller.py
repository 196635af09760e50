"""BYOTDistiller (MMRazor's name): the distiller of "Be Your Own Teacher: Improve the Performance of
Convolutional Neural Networks via Self Distillation" (Zhang et al., arXiv 1905.08094), trained by ``SelfDistill``.

The network teaches its own shallow stages: the "teacher" recorders hook the same model as the student ones (its
deepest features, logits and labels) and what they record is detached, so the distillation losses train the
shallow stages and their classifiers without pulling the deep part towards them.
"""
import torch

from mmdistkd.registry import MODELS

from .configurable_distiller import ConfigurableDistiller


def detached(value):
    """``value`` with every tensor in it (also inside lists and tuples) detached from the graph."""
    if torch.is_tensor(value):
        return value.detach()
    if isinstance(value, (list, tuple)):
        return type(value)(detached(item) for item in value)
    return value


@MODELS.register_module()
class BYOTDistiller(ConfigurableDistiller):
    """``ConfigurableDistiller`` whose teacher-side mapping items (``from_student=False``) are detached after
    their connector and ``connector_idx``; same arguments."""

    def _gather(self, item):
        value = super()._gather(item)
        return value if item['from_student'] else detached(value)
