"""The CRD benchmark's CIFAR ResNets (resnet8 ... resnet110, resnet8x4, resnet32x4): a 3x3 stem and three
stages of basic blocks at strides 1, 2, 2 (32x32, 16x16, 8x8 for a 32x32 input).

Module names follow the benchmark's ``resnet.py`` (``conv1``, ``bn1``, ``layer1.0.downsample.0``, ...), so its
checkpoints map onto this backbone key for key (``tools/model_converters/crd_to_mmpretrain.py``).
"""
import torch.nn as nn
import torch.nn.functional as F

from mmdistkd.registry import MODELS

from .cifar_backbone import CIFARBackbone


def conv3x3(in_channels, out_channels, stride=1):
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """Post-activation basic block; a 1x1 conv + BN projects the shortcut when stride or width change."""

    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.conv1 = conv3x3(in_channels, out_channels, stride)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = conv3x3(out_channels, out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(out + shortcut)


@MODELS.register_module()
class CIFARResNet(CIFARBackbone):
    """CIFAR ResNet of the CRD benchmark (Tian et al., ICLR 2020; HobbitLong/RepDistiller ``models/resnet.py``).

    Args:
        arch (str): one of ``CIFARResNet.arch_settings``: ``resnet8/14/20/32/44/56/110`` (16-16-32-64
            channels: stem, then stages) and ``resnet8x4`` / ``resnet32x4`` (32-64-128-256).
        out_indices (int | Sequence[int]): stages (0, 1, 2) whose outputs ``forward`` returns.
        init_cfg (dict | list | None): mmengine init config; ``None``: the benchmark's init.

    Output channels of the last stage: 64 (``x4``: 256). Config::

        backbone=dict(type='mmdistkd.CIFARResNet', arch='resnet56'),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=100, in_channels=64)
    """

    # arch: (depth, (stem, stage 1, stage 2, stage 3) channels); depth = 6 * blocks per stage + 2
    arch_settings = {
        'resnet8': (8, (16, 16, 32, 64)),
        'resnet14': (14, (16, 16, 32, 64)),
        'resnet20': (20, (16, 16, 32, 64)),
        'resnet32': (32, (16, 16, 32, 64)),
        'resnet44': (44, (16, 16, 32, 64)),
        'resnet56': (56, (16, 16, 32, 64)),
        'resnet110': (110, (16, 16, 32, 64)),
        'resnet8x4': (8, (32, 64, 128, 256)),
        'resnet32x4': (32, (32, 64, 128, 256)),
    }

    def __init__(self, arch, out_indices=(2, ), init_cfg=None):
        if arch not in self.arch_settings:
            raise ValueError(f'CIFARResNet arch {arch!r} is unknown; use one of {list(self.arch_settings)}')
        super().__init__(num_stages=3, out_indices=out_indices, init_cfg=init_cfg)
        depth, channels = self.arch_settings[arch]
        blocks_per_stage = (depth - 2) // 6
        self.conv1 = conv3x3(3, channels[0])
        self.bn1 = nn.BatchNorm2d(channels[0])
        in_channels = channels[0]
        for index, (out_channels, stride) in enumerate(zip(channels[1:], (1, 2, 2))):
            blocks = [BasicBlock(in_channels, out_channels, stride)]
            blocks += [BasicBlock(out_channels, out_channels) for _ in range(blocks_per_stage - 1)]
            self.add_module(f'layer{index + 1}', nn.Sequential(*blocks))
            in_channels = out_channels

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        return self.stage_outputs(x, (self.layer1, self.layer2, self.layer3))
