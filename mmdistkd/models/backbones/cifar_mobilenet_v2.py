"""The CRD benchmark's CIFAR MobileNetV2 (its ``MobileNetV2``: expansion 6, width multiplier 0.5):
MobileNetV2's seven groups of inverted residual blocks with a stride-2 stem and overall stride 16 (2x2
before pooling for a 32x32 input), then a 1x1 conv to 1280 channels.

Module names follow the benchmark's ``mobilenetv2.py`` (``blocks.1.0.conv.3.weight``, ``conv2.0.weight``, ...),
so its checkpoints map onto this backbone key for key (``tools/model_converters/crd_to_mmpretrain.py``).
"""
import torch.nn as nn

from mmdistkd.registry import MODELS

from .cifar_backbone import CIFARBackbone


def conv_bn_relu(in_channels, out_channels, kernel_size, stride=1, groups=1):
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class InvertedResidual(nn.Module):
    """1x1 expansion - 3x3 depthwise (strided) - linear 1x1 projection, in one ``conv`` Sequential of 8
    modules. Unlike torchvision's, the expansion conv is kept at expansion ratio 1."""

    def __init__(self, in_channels, out_channels, stride, expand_ratio):
        super().__init__()
        hidden = in_channels * expand_ratio
        self.use_residual = stride == 1 and in_channels == out_channels
        self.conv = nn.Sequential(
            *conv_bn_relu(in_channels, hidden, 1),
            *conv_bn_relu(hidden, hidden, 3, stride, groups=hidden),
            nn.Conv2d(hidden, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels))

    def forward(self, x):
        return x + self.conv(x) if self.use_residual else self.conv(x)


@MODELS.register_module()
class CIFARMobileNetV2(CIFARBackbone):
    """CIFAR MobileNetV2 of the CRD benchmark (Tian et al., ICLR 2020; HobbitLong/RepDistiller
    ``models/mobilenetv2.py``, ``mobile_half``; from Jin et al., "Route Constrained Optimization", 2019).

    Args:
        expand_ratio (int): expansion of the inverted residual blocks after the first group (which uses 1).
            The benchmark's ``MobileNetV2``: 6.
        widen_factor (float): width multiplier of the blocks and the stem; the last conv has
            ``int(1280 * widen_factor)`` channels above 1, else 1280. The benchmark's ``MobileNetV2``: 0.5.
        out_indices (int | Sequence[int]): stages whose outputs ``forward`` returns: 0-6 are the seven
            block groups (``blocks.0`` ... ``blocks.6``; 16x16, 16x16, 8x8, 4x4, 4x4, 2x2, 2x2 for a 32x32
            input), 7 the final 1x1 conv (``conv2``).
        init_cfg (dict | list | None): mmengine init config; ``None``: the benchmark's init.

    Config::

        backbone=dict(type='mmdistkd.CIFARMobileNetV2'),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=100, in_channels=1280)
    """

    # expansion (None: expand_ratio), output channels, blocks, stride of the first block, per group
    block_groups = ((1, 16, 1, 1), (None, 24, 2, 1), (None, 32, 3, 2), (None, 64, 4, 2), (None, 96, 3, 1),
                    (None, 160, 3, 2), (None, 320, 1, 1))

    def __init__(self, expand_ratio=6, widen_factor=0.5, out_indices=(7, ), init_cfg=None):
        super().__init__(num_stages=len(self.block_groups) + 1, out_indices=out_indices, init_cfg=init_cfg)
        in_channels = int(32 * widen_factor)
        self.conv1 = conv_bn_relu(3, in_channels, 3, stride=2)
        self.blocks = nn.ModuleList()
        for expansion, channels, num_blocks, stride in self.block_groups:
            out_channels = int(channels * widen_factor)
            group = []
            for block_stride in [stride] + [1] * (num_blocks - 1):
                group.append(InvertedResidual(in_channels, out_channels, block_stride, expansion or expand_ratio))
                in_channels = out_channels
            self.blocks.append(nn.Sequential(*group))
        self.out_channels = int(1280 * widen_factor) if widen_factor > 1.0 else 1280
        self.conv2 = conv_bn_relu(in_channels, self.out_channels, 1)

    def forward(self, x):
        return self.stage_outputs(self.conv1(x), (*self.blocks, self.conv2))
