"""What the CRD benchmark's CIFAR models share as mmpretrain backbones: which stage outputs ``forward``
returns (``out_indices``) and their initialisation."""
from mmengine.model import BaseModule

# The CRD models' own init: normal(0, sqrt(2 / (k * k * out_channels))) convolutions (kaiming, fan_out),
# batch norms at weight 1 and bias 0. The linear classifier is mmpretrain's head and keeps its own init.
DEFAULT_INIT_CFG = [
    dict(type='Kaiming', layer='Conv2d', mode='fan_out', nonlinearity='relu'),
    dict(type='Constant', val=1, layer='_BatchNorm'),
]


def normalize_out_indices(out_indices, num_stages):
    """``out_indices`` (an int or a sequence, negative values counting from the last stage) as a sorted
    tuple of stage indices in ``[0, num_stages)``."""
    indices = (out_indices, ) if isinstance(out_indices, int) else tuple(out_indices)
    if not indices:
        raise ValueError('out_indices is empty: name at least one stage whose output the backbone returns')
    normalized = []
    for index in indices:
        if not -num_stages <= index < num_stages:
            raise ValueError(f'out_indices {tuple(indices)}: {index} is not a stage of this backbone, which '
                             f'has {num_stages} stages (use 0..{num_stages - 1} or -1..-{num_stages})')
        normalized.append(index % num_stages)
    return tuple(sorted(set(normalized)))


class CIFARBackbone(BaseModule):
    """Base of the CIFAR backbones: subclasses build their layers and call ``stage_outputs`` in ``forward``.
    ``init_cfg=None`` means the subclass's ``default_init_cfg``, the benchmark's init of that model."""

    default_init_cfg = DEFAULT_INIT_CFG

    def __init__(self, num_stages, out_indices, init_cfg=None):
        super().__init__(init_cfg=self.default_init_cfg if init_cfg is None else init_cfg)
        self.num_stages = num_stages
        self.out_indices = normalize_out_indices(out_indices, num_stages)

    def stage_outputs(self, x, stages):
        """Runs ``x`` through ``stages`` (callables, one per stage) and returns the tuple of the outputs
        of the stages in ``out_indices``, as mmpretrain backbones do."""
        outs = []
        for index, stage in enumerate(stages):
            x = stage(x)
            if index in self.out_indices:
                outs.append(x)
            if index == self.out_indices[-1]:
                break  # later stages feed no output
        return tuple(outs)
