"""The teacher side of "A Comprehensive Overhaul of Feature Distillation" (Heo et al., ICCV 2019,
arXiv 1904.01866): the teacher's pre-ReLU feature clipped from below by the margin of its BN layer."""
import torch

from mmdistkd.registry import MODELS

from .base import BaseConnector


@MODELS.register_module()
class OFDTeacherConnector(BaseConnector):
    """``max(T, margin)`` per channel, with the teacher feature ``T`` detached.

    The margin (the expectation of the negative responses of each channel) is computed from the teacher's BN
    layer by ``OFDDistiller``, which calls ``init_margin``. It is a non-persistent buffer: it follows the module
    across devices, and checkpoints need not carry it since it is a function of the teacher's weights (as in
    MMRazor, where it is not in the state dict either).

    Config (with ``type='OFDDistiller'``)::

        loss_1_tfeat=dict(type='OFDTeacherConnector')
    """

    def __init__(self, init_cfg=None):
        super().__init__(init_cfg)
        self.register_buffer('margin', None, persistent=False)

    def init_margin(self, margin):
        """Sets the per-channel margin, ``(C,)`` or MMRazor's ``(1, C, 1, 1)``."""
        self.margin = margin.detach().flatten().clone()

    def forward(self, feature):
        if self.margin is None:
            raise RuntimeError('OFDTeacherConnector has no margin yet: OFDDistiller sets it from the teacher\'s BN '
                               'layers (init_margin); use type="OFDDistiller" or call init_margin(margin) first')
        if feature.dim() < 2 or feature.shape[1] != self.margin.numel():
            raise ValueError(f'OFDTeacherConnector has a margin for {self.margin.numel()} channels (from a teacher BN '
                             f'layer), but got a teacher feature of shape {tuple(feature.shape)}: map it to the '
                             'recorder of the BN layer whose statistics gave the margin')
        margin = self.margin.to(feature.device).view(1, -1, *[1] * (feature.dim() - 2))
        return torch.maximum(feature.detach(), margin)
