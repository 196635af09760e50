"""The CRD benchmark's CIFAR VGGs with batch norm (vgg8, vgg11, vgg13, vgg16, vgg19): five blocks of 3x3
convs (with bias) + BN + ReLU, 64-128-256-512-512 channels, no fully connected layers before the classifier.

Module names follow the benchmark's ``vgg.py`` (``block0.0.weight``, ``block0.1.running_mean``, ...), so
its checkpoints map onto this backbone key for key (``tools/model_converters/crd_to_mmpretrain.py``).
"""
import torch.nn as nn
import torch.nn.functional as F

from mmdistkd.registry import MODELS

from .cifar_backbone import CIFARBackbone


def conv_bn_block(in_channels, channels):
    """conv-BN-ReLU per entry of ``channels``, without the last ReLU (the backbone applies it, so that the
    module indices, ReLUs included, are the benchmark's)."""
    layers = []
    for out_channels in channels:
        layers += [nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1), nn.BatchNorm2d(out_channels),
                   nn.ReLU(inplace=True)]
        in_channels = out_channels
    return nn.Sequential(*layers[:-1])


@MODELS.register_module()
class CIFARVGG(CIFARBackbone):
    """CIFAR VGG-BN of the CRD benchmark (Tian et al., ICLR 2020; HobbitLong/RepDistiller ``models/vgg.py``).

    A 2x2 max pooling follows blocks 0, 1 and 2; blocks 3 and 4 both run at 1/8 of the input (4x4 for
    32x32: the benchmark pools between them only for 64x64 inputs).

    Args:
        arch (str): ``vgg8``, ``vgg11``, ``vgg13``, ``vgg16`` or ``vgg19`` (the benchmark's model names;
            all with batch norm).
        out_indices (int | Sequence[int]): blocks (0-4) whose ReLU outputs ``forward`` returns.
        init_cfg (dict | list | None): mmengine init config; ``None``: the benchmark's init.

    Output channels of the last block: 512. Config::

        backbone=dict(type='mmdistkd.CIFARVGG', arch='vgg13'),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=100, in_channels=512)
    """

    arch_settings = {  # arch: conv widths of blocks 0-4
        'vgg8': ((64, ), (128, ), (256, ), (512, ), (512, )),
        'vgg11': ((64, ), (128, ), (256, 256), (512, 512), (512, 512)),
        'vgg13': ((64, 64), (128, 128), (256, 256), (512, 512), (512, 512)),
        'vgg16': ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512)),
        'vgg19': ((64, 64), (128, 128), (256, 256, 256, 256), (512, 512, 512, 512), (512, 512, 512, 512)),
    }

    def __init__(self, arch, out_indices=(4, ), init_cfg=None):
        if arch not in self.arch_settings:
            raise ValueError(f'CIFARVGG arch {arch!r} is unknown; use one of {list(self.arch_settings)}')
        super().__init__(num_stages=5, out_indices=out_indices, init_cfg=init_cfg)
        in_channels = 3
        for index, channels in enumerate(self.arch_settings[arch]):
            self.add_module(f'block{index}', conv_bn_block(in_channels, channels))
            in_channels = channels[-1]

    def forward(self, x):
        def pooled_block(block):
            return lambda x: F.relu(block(F.max_pool2d(x, kernel_size=2, stride=2)))

        return self.stage_outputs(x, (lambda x: F.relu(self.block0(x)), pooled_block(self.block1),
                                      pooled_block(self.block2), pooled_block(self.block3),
                                      lambda x: F.relu(self.block4(x))))
