"""A normalisation layer as a connector (MMRazor's ``NormConnector``), e.g. to standardise features before a
feature loss; no method of its own."""
from mmcv.cnn import build_norm_layer

from mmdistkd.registry import MODELS

from .base import BaseConnector


@MODELS.register_module()
class NormConnector(BaseConnector):
    """``build_norm_layer(norm_cfg, in_channels)`` applied to the feature.

    Config::

        s_norm=dict(type='NormConnector', in_channels=256, norm_cfg=dict(type='BN', affine=False))
    """

    def __init__(self, in_channels, norm_cfg, init_cfg=None):
        super().__init__(init_cfg)
        self.in_channels = in_channels
        _, self.norm = build_norm_layer(norm_cfg, in_channels)

    def forward(self, feature):
        self.check_channels(feature, self.in_channels, 'in_channels')
        return self.norm(feature)
