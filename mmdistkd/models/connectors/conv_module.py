"""A conv / norm / activation connector that maps student features to the teacher's channels: the hint regressor
of "FitNets: Hints for Thin Deep Nets" (Romero et al., ICLR 2015, arXiv 1412.6550), used by MMRazor's FitNets,
OFD and AB configs."""
from mmcv.cnn import ConvModule

from mmdistkd.registry import MODELS

from .base import BaseConnector


@MODELS.register_module()
class ConvModuleConnector(BaseConnector):
    """mmcv's ``ConvModule(in_channel, out_channel, ...)`` as a connector; the arguments after the channels are
    ``ConvModule``'s (``kernel_size=1``, ``norm_cfg=None``, ``act_cfg=dict(type='ReLU')``, ``order`` ...).

    Config (MMRazor's OFD student connector)::

        loss_1_sfeat=dict(type='ConvModuleConnector', in_channel=32, out_channel=64, norm_cfg=dict(type='BN'),
                          act_cfg=None)
    """

    def __init__(self, in_channel, out_channel, kernel_size=1, stride=1, padding=0, dilation=1, groups=1,
                 bias='auto', conv_cfg=None, norm_cfg=None, act_cfg=dict(type='ReLU'), inplace=True,
                 with_spectral_norm=False, padding_mode='zeros', order=('conv', 'norm', 'act'), init_cfg=None):
        super().__init__(init_cfg)
        self.in_channel = in_channel
        self.conv_module = ConvModule(
            in_channel, out_channel, kernel_size, stride=stride, padding=padding, dilation=dilation, groups=groups,
            bias=bias, conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg, inplace=inplace,
            with_spectral_norm=with_spectral_norm, padding_mode=padding_mode, order=order)

    def forward(self, feature):
        self.check_channels(feature, self.in_channel, 'in_channel')
        return self.conv_module(feature)
