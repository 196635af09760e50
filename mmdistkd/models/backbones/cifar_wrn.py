"""The CRD benchmark's CIFAR wide ResNets (wrn_16_1, wrn_16_2, wrn_40_1, wrn_40_2): pre-activation basic
blocks in three stages of widths 16k-32k-64k at strides 1, 2, 2, a final BN-ReLU.

Module names follow the benchmark's ``wrn.py`` (``block1.layer.0.convShortcut``, ...), so its checkpoints
map onto this backbone key for key (``tools/model_converters/crd_to_mmpretrain.py``).
"""
import torch.nn as nn
import torch.nn.functional as F

from mmdistkd.registry import MODELS

from .cifar_backbone import CIFARBackbone


class PreActBlock(nn.Module):
    """BN-ReLU-conv twice. When the width changes, the shortcut is a 1x1 conv of the *activated* input;
    otherwise it is the raw input."""

    def __init__(self, in_channels, out_channels, stride):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=False)
        self.convShortcut = None  # the benchmark's name, kept for its checkpoint keys
        if in_channels != out_channels:
            self.convShortcut = nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False)

    def forward(self, x):
        activated = F.relu(self.bn1(x))
        out = self.conv1(activated)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + (x if self.convShortcut is None else self.convShortcut(activated))


class WideStage(nn.Module):
    """A stage; its blocks live in ``.layer`` as in the benchmark (``block1.layer.0...``)."""

    def __init__(self, num_blocks, in_channels, out_channels, stride):
        super().__init__()
        self.layer = nn.Sequential(*[
            PreActBlock(in_channels if i == 0 else out_channels, out_channels, stride if i == 0 else 1)
            for i in range(num_blocks)
        ])

    def forward(self, x):
        return self.layer(x)


@MODELS.register_module()
class CIFARWideResNet(CIFARBackbone):
    """CIFAR WRN-d-k of the CRD benchmark (Tian et al., ICLR 2020; HobbitLong/RepDistiller ``models/wrn.py``;
    Zagoruyko & Komodakis, 2016), without dropout.

    Args:
        arch (str): ``wrn_16_1``, ``wrn_16_2``, ``wrn_40_1`` or ``wrn_40_2`` (depth d = 6n + 4 with n blocks
            per stage, widening factor k: 16k-32k-64k channels).
        out_indices (int | Sequence[int]): stages (0, 1, 2; 32x32, 16x16, 8x8 for a 32x32 input) whose
            outputs ``forward`` returns. Stages 0 and 1 return their blocks' (pre-activation) sum; the last
            stage's output includes the network's final BN-ReLU, which feeds the pooling and classifier.
        init_cfg (dict | list | None): mmengine init config; ``None``: the benchmark's init.

    Output channels of the last stage: 64k. Config::

        backbone=dict(type='mmdistkd.CIFARWideResNet', arch='wrn_40_2'),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=100, in_channels=128)
    """

    arch_settings = {  # arch: (depth, widening factor)
        'wrn_16_1': (16, 1),
        'wrn_16_2': (16, 2),
        'wrn_40_1': (40, 1),
        'wrn_40_2': (40, 2),
    }

    def __init__(self, arch, out_indices=(2, ), init_cfg=None):
        if arch not in self.arch_settings:
            raise ValueError(f'CIFARWideResNet arch {arch!r} is unknown; use one of {list(self.arch_settings)}')
        super().__init__(num_stages=3, out_indices=out_indices, init_cfg=init_cfg)
        depth, widen = self.arch_settings[arch]
        num_blocks = (depth - 4) // 6
        widths = (16, 16 * widen, 32 * widen, 64 * widen)
        self.conv1 = nn.Conv2d(3, widths[0], kernel_size=3, padding=1, bias=False)
        self.block1 = WideStage(num_blocks, widths[0], widths[1], 1)
        self.block2 = WideStage(num_blocks, widths[1], widths[2], 2)
        self.block3 = WideStage(num_blocks, widths[2], widths[3], 2)
        self.bn1 = nn.BatchNorm2d(widths[3])

    def forward(self, x):
        return self.stage_outputs(self.conv1(x), (self.block1, self.block2,
                                                  lambda x: F.relu(self.bn1(self.block3(x)))))
