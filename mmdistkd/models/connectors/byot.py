"""The shallow classifiers of "Be Your Own Teacher: Improve the Performance of Convolutional Neural Networks via
Self Distillation" (Zhang et al., ICCV 2019, arXiv 1905.08094): an attention module and a bottleneck of
separable convs bring an intermediate feature to the depth of the final one, then a linear classifier; the
deepest classifier teaches them."""
from mmcv.cnn import build_norm_layer
from torch import nn
from torch.nn.modules.utils import _pair

from mmdistkd.registry import MODELS

from .base import BaseConnector


class SepConv(nn.Module):
    """DARTS' separable conv (MMRazor's ``DartsSepConv``): twice ``ReLU - depthwise kxk - pointwise 1x1 - BN``,
    the first with ``stride``, the second from ``in_channels`` to ``out_channels``."""

    def __init__(self, in_channels, out_channels, kernel_size, stride, norm_cfg=dict(type='BN')):
        super().__init__()
        padding = _pair(kernel_size)[0] // 2, _pair(kernel_size)[1] // 2
        self.conv1 = nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(in_channels, in_channels, kernel_size, stride, padding, groups=in_channels, bias=False),
            nn.Conv2d(in_channels, in_channels, 1, bias=False),
            build_norm_layer(norm_cfg, in_channels)[1])
        self.conv2 = nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(in_channels, out_channels, kernel_size, 1, padding, groups=in_channels, bias=False),
            nn.Conv2d(out_channels, out_channels, 1, bias=False),
            build_norm_layer(norm_cfg, out_channels)[1])

    def forward(self, x):
        return self.conv2(self.conv1(x))


@MODELS.register_module()
class BYOTConnector(BaseConnector):
    """``(feat, logits)`` of a feature ``F`` with ``in_channel * expansion`` channels:

    - attention ``A = sigmoid(upsample_x2(ReLU(BN(SepConv_stride(F)))))``, a map of ``F``'s size;
    - ``feat = flatten(AvgPool2d(pool_size)(SepConv_stride(...)(A * F)))``, ``log2(out_channel / in_channel)``
      separable convs each doubling the channels, so ``feat`` has ``out_channel * expansion`` values
      (the final feature's, which ``L2Loss`` compares it with);
    - ``logits = fc(feat)`` over ``num_classes``.

    ``BYOTDistiller`` picks one of the two by ``connector_idx``. The layout is MMRazor's, whose attention module
    the paper's shallow classifiers (bottleneck and FC) do not have; it only keeps ``F``'s size with ``stride=2``
    (the map is upsampled x2), which is checked at build time, and is the default here (MMRazor's default,
    ``stride=1``, cannot run).

    Config (MMRazor's BYOT config)::

        loss_s1_sfeat=dict(type='BYOTConnector', in_channel=64, out_channel=512, expansion=1, kernel_size=3,
                           stride=2, num_classes=100)
    """

    def __init__(self, in_channel, out_channel, num_classes, expansion=4, pool_size=4, kernel_size=3, stride=2,
                 init_cfg=None):
        super().__init__(init_cfg)
        ratio = out_channel // in_channel
        if out_channel % in_channel or ratio & (ratio - 1):
            raise ValueError(f'BYOTConnector: out_channel / in_channel must be a power of 2 (each separable conv '
                             f'doubles the channels), got in_channel={in_channel}, out_channel={out_channel}')
        if _pair(stride) != (2, 2):
            raise ValueError(f'BYOTConnector: stride={stride}, but its attention upsamples x2 what a stride-'
                             f'{stride} separable conv gives, so only stride=2 keeps the attention map the size of '
                             'the feature: set stride=2 (MMRazor\'s BYOT config does)')
        self.in_channels = in_channel * expansion
        self.attention = nn.Sequential(
            SepConv(self.in_channels, self.in_channels, kernel_size, stride),
            nn.BatchNorm2d(self.in_channels),
            nn.ReLU(),
            nn.Upsample(scale_factor=2, mode='bilinear'),
            nn.Sigmoid())
        channels = [self.in_channels * 2**i for i in range(ratio.bit_length())]
        self.scala = nn.Sequential(
            *[SepConv(c, 2 * c, kernel_size, stride) for c in channels[:-1]], nn.AvgPool2d(pool_size))
        self.fc = nn.Linear(out_channel * expansion, num_classes)

    def forward(self, feature):
        self.check_channels(feature, self.in_channels, 'in_channel * expansion')
        attention = self.attention(feature)
        if attention.shape != feature.shape:
            raise ValueError(f'BYOTConnector: the attention map {tuple(attention.shape)} (halved by the stride-2 '
                             f'separable conv, then upsampled x2) does not match the feature '
                             f'{tuple(feature.shape)}: record a feature with even height and width')
        *stages, pool = self.scala
        reduced = attention * feature
        for stage in stages:
            reduced = stage(reduced)
        feat = pool(reduced).flatten(1)
        if feat.shape[1] != self.fc.in_features:
            raise ValueError(f'BYOTConnector: the separable convs leave a {tuple(reduced.shape[2:])} map of the '
                             f'feature of shape {tuple(feature.shape)}, which AvgPool2d(pool_size={pool.kernel_size}) '
                             f'makes {feat.shape[1]} values per sample, but fc takes out_channel * expansion = '
                             f'{self.fc.in_features}: set pool_size={tuple(reduced.shape[2:])}')
        return feat, self.fc(feat)
