"""The CRD benchmark's CIFAR ShuffleNetV2 (its ``ShuffleV2``: width 1x, 116-232-464 channels, 3-7-3 basic
units after each stage's downsampling unit, a 1x1 conv to 1024) with a 1x1 stem at full resolution and
three stride-2 stages (16x16, 8x8, 4x4 for a 32x32 input).

Module names follow the benchmark's ``ShuffleNetv2.py`` (``layer1.0.conv5.weight``, ``conv2.weight``, ...),
so its checkpoints map onto this backbone key for key (``tools/model_converters/crd_to_mmpretrain.py``).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmdistkd.registry import MODELS

from .channel_shuffle import channel_shuffle
from .cifar_backbone import CIFARBackbone


def depthwise_conv3x3(channels, stride=1):
    return nn.Conv2d(channels, channels, kernel_size=3, stride=stride, padding=1, groups=channels, bias=False)


def conv1x1(in_channels, out_channels):
    return nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False)


class BasicUnit(nn.Module):
    """Splits the channels in halves; the second half goes through 1x1 - 3x3 depthwise - 1x1 (BN each,
    ReLU after the 1x1s); halves concatenated (first half untouched) and shuffled in 2 groups."""

    def __init__(self, channels):
        super().__init__()
        self.split = channels // 2
        branch = channels - self.split
        self.conv1 = conv1x1(branch, branch)
        self.bn1 = nn.BatchNorm2d(branch)
        self.conv2 = depthwise_conv3x3(branch)
        self.bn2 = nn.BatchNorm2d(branch)
        self.conv3 = conv1x1(branch, branch)
        self.bn3 = nn.BatchNorm2d(branch)

    def forward(self, x):
        kept, branch = x[:, :self.split], x[:, self.split:]
        out = F.relu(self.bn1(self.conv1(branch)))
        out = self.bn2(self.conv2(out))
        out = F.relu(self.bn3(self.conv3(out)))
        return channel_shuffle(torch.cat([kept, out], dim=1), 2)


class DownUnit(nn.Module):
    """Stride-2 unit: left, 3x3 depthwise (stride 2) - 1x1; right, 1x1 - 3x3 depthwise (stride 2) - 1x1;
    each branch gives half the output channels; concatenated (left first) and shuffled in 2 groups."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        mid_channels = out_channels // 2
        self.conv1 = depthwise_conv3x3(in_channels, stride=2)
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv2 = conv1x1(in_channels, mid_channels)
        self.bn2 = nn.BatchNorm2d(mid_channels)
        self.conv3 = conv1x1(in_channels, mid_channels)
        self.bn3 = nn.BatchNorm2d(mid_channels)
        self.conv4 = depthwise_conv3x3(mid_channels, stride=2)
        self.bn4 = nn.BatchNorm2d(mid_channels)
        self.conv5 = conv1x1(mid_channels, mid_channels)
        self.bn5 = nn.BatchNorm2d(mid_channels)

    def forward(self, x):
        left = F.relu(self.bn2(self.conv2(self.bn1(self.conv1(x)))))
        right = F.relu(self.bn3(self.conv3(x)))
        right = F.relu(self.bn5(self.conv5(self.bn4(self.conv4(right)))))
        return channel_shuffle(torch.cat([left, right], dim=1), 2)


@MODELS.register_module()
class CIFARShuffleNetV2(CIFARBackbone):
    """CIFAR ShuffleNetV2 of the CRD benchmark (Tian et al., ICLR 2020; HobbitLong/RepDistiller
    ``models/ShuffleNetv2.py``, ``ShuffleV2``; Ma et al., ECCV 2018).

    Args:
        out_indices (int | Sequence[int]): stages whose outputs ``forward`` returns: 0-2 the three stages
            (``layer1`` ... ``layer3``), 3 the final 1x1 conv with its BN-ReLU (``conv2``, ``bn2``).
        init_cfg (dict | list | None): mmengine init config; ``None``: PyTorch's default init, as the
            benchmark leaves this model.

    Output channels: 116, 232, 464 (stages), 1024 (final conv). Config::

        backbone=dict(type='mmdistkd.CIFARShuffleNetV2'),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=100, in_channels=1024)
    """

    default_init_cfg = None
    stage_channels = (116, 232, 464)
    stage_blocks = (3, 7, 3)
    out_channels = 1024

    def __init__(self, out_indices=(3, ), init_cfg=None):
        super().__init__(num_stages=4, out_indices=out_indices, init_cfg=init_cfg)
        self.conv1 = conv1x1(3, 24)
        self.bn1 = nn.BatchNorm2d(24)
        in_channels = 24
        for index, (channels, num_blocks) in enumerate(zip(self.stage_channels, self.stage_blocks)):
            units = [DownUnit(in_channels, channels)] + [BasicUnit(channels) for _ in range(num_blocks)]
            self.add_module(f'layer{index + 1}', nn.Sequential(*units))
            in_channels = channels
        self.conv2 = conv1x1(in_channels, self.out_channels)
        self.bn2 = nn.BatchNorm2d(self.out_channels)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        return self.stage_outputs(x, (self.layer1, self.layer2, self.layer3,
                                      lambda x: F.relu(self.bn2(self.conv2(x)))))
