"""The CRD benchmark's ``ResNet50`` for CIFAR: the ImageNet ResNet's four stages (64-128-256-512 base
widths, strides 1, 2, 2, 2) behind a CIFAR stem (one 3x3 stride-1 conv, no max pooling).

Module names follow the benchmark's ``resnetv2.py`` (``layer1.0.shortcut.0``, ...), so its checkpoints map
onto this backbone key for key (``tools/model_converters/crd_to_mmpretrain.py``).
"""
import torch.nn as nn
import torch.nn.functional as F

from mmdistkd.registry import MODELS

from .cifar_backbone import CIFARBackbone


def projection_shortcut(in_channels, out_channels, stride):
    """1x1 conv + BN when stride or width change; an empty Sequential (identity, no weights) otherwise."""
    if stride == 1 and in_channels == out_channels:
        return nn.Sequential()
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
                         nn.BatchNorm2d(out_channels))


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_channels, channels, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, kernel_size=3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.shortcut = projection_shortcut(in_channels, channels, stride)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class Bottleneck(nn.Module):
    """1x1 - 3x3 (strided) - 1x1 bottleneck, 4x expansion."""
    expansion = 4

    def __init__(self, in_channels, channels, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv3 = nn.Conv2d(channels, channels * self.expansion, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(channels * self.expansion)
        self.shortcut = projection_shortcut(in_channels, channels * self.expansion, stride)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + self.shortcut(x))


@MODELS.register_module()
class CIFARStemResNet(CIFARBackbone):
    """ImageNet-layout ResNet with a CIFAR stem, as the CRD benchmark's ``ResNet50`` (Tian et al., ICLR 2020;
    HobbitLong/RepDistiller ``models/resnetv2.py``, which also defines the 18/34/101/152 depths).

    Args:
        arch (str): ``resnet18`` / ``resnet34`` (basic blocks, 512 output channels) or ``resnet50`` /
            ``resnet101`` / ``resnet152`` (bottlenecks, 2048 output channels).
        out_indices (int | Sequence[int]): stages (0-3; 32x32, 16x16, 8x8, 4x4 for a 32x32 input) whose
            outputs ``forward`` returns.
        init_cfg (dict | list | None): mmengine init config; ``None``: the benchmark's init.

    Config::

        backbone=dict(type='mmdistkd.CIFARStemResNet', arch='resnet50'),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=100, in_channels=2048)
    """

    arch_settings = {  # arch: (block, blocks per stage)
        'resnet18': (BasicBlock, (2, 2, 2, 2)),
        'resnet34': (BasicBlock, (3, 4, 6, 3)),
        'resnet50': (Bottleneck, (3, 4, 6, 3)),
        'resnet101': (Bottleneck, (3, 4, 23, 3)),
        'resnet152': (Bottleneck, (3, 8, 36, 3)),
    }

    def __init__(self, arch, out_indices=(3, ), init_cfg=None):
        if arch not in self.arch_settings:
            raise ValueError(f'CIFARStemResNet arch {arch!r} is unknown; use one of {list(self.arch_settings)}')
        super().__init__(num_stages=4, out_indices=out_indices, init_cfg=init_cfg)
        block, blocks_per_stage = self.arch_settings[arch]
        self.conv1 = nn.Conv2d(3, 64, kernel_size=3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        in_channels = 64
        for index, (channels, num_blocks, stride) in enumerate(zip((64, 128, 256, 512), blocks_per_stage,
                                                                   (1, 2, 2, 2))):
            blocks = []
            for block_stride in [stride] + [1] * (num_blocks - 1):
                blocks.append(block(in_channels, channels, block_stride))
                in_channels = channels * block.expansion
            self.add_module(f'layer{index + 1}', nn.Sequential(*blocks))

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        return self.stage_outputs(x, (self.layer1, self.layer2, self.layer3, self.layer4))
