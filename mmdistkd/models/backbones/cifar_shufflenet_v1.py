"""The CRD benchmark's CIFAR ShuffleNetV1 (its ``ShuffleV1``: 3 groups, 240-480-960 channels, 4-8-4 blocks)
with a 1x1 stem at full resolution and three stride-2 stages (16x16, 8x8, 4x4 for a 32x32 input).

Module names follow the benchmark's ``ShuffleNetv1.py`` (``layer1.0.conv1.weight``, ...), so its checkpoints
map onto this backbone key for key (``tools/model_converters/crd_to_mmpretrain.py``).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmdistkd.registry import MODELS

from .channel_shuffle import channel_shuffle
from .cifar_backbone import CIFARBackbone


class ShuffleUnit(nn.Module):
    """Grouped 1x1 - shuffle - 3x3 depthwise (strided) - grouped 1x1, bottleneck width out / 4. A stride-2
    unit concatenates a 3x3 average-pooled shortcut (so it outputs ``out_channels + in_channels``); a
    stride-1 unit adds the input. The unit that follows the 24-channel stem uses no groups in its first conv."""

    def __init__(self, in_channels, out_channels, stride, groups):
        super().__init__()
        self.stride = stride
        mid_channels = out_channels // 4
        self.first_groups = 1 if in_channels == 24 else groups
        self.conv1 = nn.Conv2d(in_channels, mid_channels, kernel_size=1, groups=self.first_groups, bias=False)
        self.bn1 = nn.BatchNorm2d(mid_channels)
        self.conv2 = nn.Conv2d(mid_channels, mid_channels, kernel_size=3, stride=stride, padding=1,
                               groups=mid_channels, bias=False)
        self.bn2 = nn.BatchNorm2d(mid_channels)
        self.conv3 = nn.Conv2d(mid_channels, out_channels, kernel_size=1, groups=groups, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)

    def forward(self, x):
        out = channel_shuffle(F.relu(self.bn1(self.conv1(x))), self.first_groups)
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.stride == 2:
            return F.relu(torch.cat([out, F.avg_pool2d(x, kernel_size=3, stride=2, padding=1)], dim=1))
        return F.relu(out + x)


@MODELS.register_module()
class CIFARShuffleNetV1(CIFARBackbone):
    """CIFAR ShuffleNetV1 of the CRD benchmark (Tian et al., ICLR 2020; HobbitLong/RepDistiller
    ``models/ShuffleNetv1.py``, ``ShuffleV1``; Zhang et al., CVPR 2018).

    Args:
        out_indices (int | Sequence[int]): stages (0, 1, 2) whose outputs ``forward`` returns.
        init_cfg (dict | list | None): mmengine init config; ``None``: PyTorch's default init, as the
            benchmark leaves this model.

    Output channels of the last stage: 960. Config::

        backbone=dict(type='mmdistkd.CIFARShuffleNetV1'),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=100, in_channels=960)
    """

    default_init_cfg = None
    stage_channels = (240, 480, 960)
    stage_blocks = (4, 8, 4)
    groups = 3

    def __init__(self, out_indices=(2, ), init_cfg=None):
        super().__init__(num_stages=3, out_indices=out_indices, init_cfg=init_cfg)
        self.conv1 = nn.Conv2d(3, 24, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(24)
        in_channels = 24
        for index, (channels, num_blocks) in enumerate(zip(self.stage_channels, self.stage_blocks)):
            # The stride-2 unit's concatenated shortcut brings in_channels of the stage's width.
            units = [ShuffleUnit(in_channels, channels - in_channels, 2, self.groups)]
            units += [ShuffleUnit(channels, channels, 1, self.groups) for _ in range(num_blocks - 1)]
            self.add_module(f'layer{index + 1}', nn.Sequential(*units))
            in_channels = channels

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        return self.stage_outputs(x, (self.layer1, self.layer2, self.layer3))
