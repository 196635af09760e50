"""MMRazor's ``WideResNet``: the three-stage pre-activation wide ResNet for tiny images of "Wide Residual Networks"
(Zagoruyko & Komodakis, BMVC 2016, arXiv 1605.07146), with MMRazor's arguments and module names, so MMRazor's
WRN checkpoints load key for key and recorder sources such as ``backbone.layer2.0.bn1`` (MMRazor's OFD config)
name the same layers.

It is kept apart from ``CIFARWideResNet`` (the CRD benchmark's WRN, ``cifar_wrn.py``): the two compute the same
blocks but name them differently (``layer1.0.downsample`` vs ``block1.layer.0.convShortcut``) and this one builds
its layers from ``conv_cfg`` / ``norm_cfg`` as MMRazor does; one block class could not keep both checkpoints' keys.
"""
from mmcv.cnn import build_conv_layer, build_norm_layer
from mmengine.model.weight_init import constant_init
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from mmdistkd.registry import MODELS

from .cifar_backbone import CIFARBackbone


class WideBasicBlock(nn.Module):
    """Pre-activation basic block: ``norm1``-ReLU-``conv1`` (stride, dilation), ``norm2``-ReLU-``conv2``. The
    shortcut is the raw input, or, where the stride or the width changes, a 1x1 conv (``downsample``) of the
    *activated* input."""

    def __init__(self, in_channels, out_channels, stride=1, dilation=1, conv_cfg=None, norm_cfg=dict(type='BN')):
        super().__init__()
        self.norm1_name, norm1 = build_norm_layer(norm_cfg, in_channels, postfix=1)
        self.norm2_name, norm2 = build_norm_layer(norm_cfg, out_channels, postfix=2)
        self.add_module(self.norm1_name, norm1)
        # Not in place (MMRazor's are): a recorder on the norm layer must keep its pre-ReLU output.
        self.relu1 = nn.ReLU()
        self.conv1 = build_conv_layer(conv_cfg, in_channels, out_channels, 3, stride=stride, padding=dilation,
                                      dilation=dilation, bias=False)
        self.add_module(self.norm2_name, norm2)
        self.relu2 = nn.ReLU()
        self.conv2 = build_conv_layer(conv_cfg, out_channels, out_channels, 3, padding=1, bias=False)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = build_conv_layer(conv_cfg, in_channels, out_channels, 1, stride=stride, bias=False)

    @property
    def norm1(self):
        return getattr(self, self.norm1_name)

    @property
    def norm2(self):
        return getattr(self, self.norm2_name)

    def forward(self, x):
        activated = self.relu1(self.norm1(x))
        out = self.conv2(self.relu2(self.norm2(self.conv1(activated))))
        return out + (x if self.downsample is None else self.downsample(activated))


@MODELS.register_module()
class WideResNet(CIFARBackbone):
    """WRN-depth-k for 32x32 images (MMRazor's ``WideResNet``, same arguments): a 3x3 stem conv (``conv1``),
    stages ``layer1``.. of ``WideBasicBlock`` whose first block has the stage's stride, a final norm (``bn1``
    for BN) and ReLU. Stage ``i`` outputs ``base_channels * k * 2**i`` channels.

    Args:
        depth (int): 10, 16, 22, 28 or 40: (depth - 4) / 6 blocks per stage.
        widen_factor (int): k, the width multiplier.
        in_channels (int): image channels.
        stem_channels (int): output channels of the stem conv.
        base_channels (int): channels of the first stage before widening.
        expansion (int | None): the width multiplier to use instead of ``widen_factor`` when given.
        num_stages (int): how many of the three stages to build.
        strides (Sequence[int]): stride of each stage's first block.
        dilations (Sequence[int]): dilation of each stage's first 3x3 convs.
        out_indices (int | Sequence[int]): stages whose outputs ``forward`` returns (not an MMRazor argument;
            the default, the last stage, returns what MMRazor's returns). The last stage's output includes the
            final norm and ReLU; earlier stages return their last block's (pre-activation) sum.
        frozen_stages (int): -1 freezes nothing; ``i >= 0`` freezes the stem conv and stages 1..i (their
            parameters stop training, their norms stay in eval mode); ``num_stages`` also freezes the final norm.
        conv_cfg (dict | None): mmcv conv config of every conv.
        norm_cfg (dict): mmcv norm config of every norm.
        norm_eval (bool): keep every batch norm in eval mode (running statistics fixed) while training.
        zero_init_residual (bool): ``init_weights`` zeroes each block's ``norm2``, so that every residual branch
            starts at zero (not with a ``Pretrained`` init).
        init_cfg (dict | list | None): mmengine init config; ``None``: MMRazor's default, Kaiming convs and
            norms at weight 1.

    Where MMRazor's differs: ``frozen_stages >= 0`` raised an AttributeError there and ``norm_eval`` had no
    effect; they work here as described. Its ReLUs were in place, so a recorder on a block's ``bn1`` or on the
    final ``bn1`` recorded the ReLU's output (the ReLU overwrote the recorded tensor); here it records the
    norm's pre-ReLU output, which is what OFD (arXiv 1904.01866) distils. The blocks' dropout, whose rate
    MMRazor never passed on from the backbone (always 0), is left out.

    Config (MMRazor's ``wrn16_2_cifar10.py``)::

        backbone=dict(type='mmdistkd.WideResNet', depth=16, num_stages=3, widen_factor=2),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=10, in_channels=128)
    """

    stage_blocks = {10: 1, 16: 2, 22: 3, 28: 4, 40: 6}  # depth: blocks per stage
    default_init_cfg = [dict(type='Kaiming', layer=['Conv2d']),
                        dict(type='Constant', val=1, layer=['_BatchNorm', 'GroupNorm'])]

    def __init__(self, depth, widen_factor=4, in_channels=3, stem_channels=16, base_channels=16, expansion=None,
                 num_stages=3, strides=(1, 2, 2), dilations=(1, 1, 1), out_indices=-1, frozen_stages=-1,
                 conv_cfg=None, norm_cfg=dict(type='BN', requires_grad=True), norm_eval=False,
                 zero_init_residual=False, init_cfg=None):
        if depth not in self.stage_blocks:
            raise ValueError(f'WideResNet depth {depth} is not supported; use one of {list(self.stage_blocks)}')
        if not 1 <= num_stages <= 3:
            raise ValueError(f'WideResNet num_stages={num_stages}: it has 1 to 3 stages')
        if len(strides) < num_stages or len(dilations) < num_stages:
            raise ValueError(f'WideResNet with num_stages={num_stages} needs a stride and a dilation per stage; '
                             f'got strides={tuple(strides)}, dilations={tuple(dilations)}')
        if not -1 <= frozen_stages <= num_stages:
            raise ValueError(f'WideResNet frozen_stages={frozen_stages}: use -1 (none) to {num_stages} (all stages)')
        super().__init__(num_stages=num_stages, out_indices=out_indices, init_cfg=init_cfg)
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.zero_init_residual = zero_init_residual
        width = base_channels * (widen_factor if expansion is None else expansion)

        self.conv1 = build_conv_layer(conv_cfg, in_channels, stem_channels, 3, padding=1, bias=False)
        self.res_layers = []
        stage_in = stem_channels
        for index in range(num_stages):
            stage_out = width * 2**index
            blocks = [WideBasicBlock(stage_in if block == 0 else stage_out, stage_out,
                                     stride=strides[index] if block == 0 else 1, dilation=dilations[index],
                                     conv_cfg=conv_cfg, norm_cfg=norm_cfg)
                      for block in range(self.stage_blocks[depth])]
            self.add_module(f'layer{index + 1}', nn.Sequential(*blocks))
            self.res_layers.append(f'layer{index + 1}')
            stage_in = stage_out
        self.norm1_name, norm1 = build_norm_layer(norm_cfg, stage_in, postfix=1)
        self.add_module(self.norm1_name, norm1)
        self.relu = nn.ReLU()
        self._freeze_stages()

    @property
    def norm1(self):
        return getattr(self, self.norm1_name)

    def _frozen_modules(self):
        if self.frozen_stages < 0:
            return []
        stages = [getattr(self, name) for name in self.res_layers[:self.frozen_stages]]
        final_norm = [self.norm1] if self.frozen_stages == self.num_stages else []
        return [self.conv1] + stages + final_norm

    def _freeze_stages(self):
        for module in self._frozen_modules():
            module.eval()
            module.requires_grad_(False)

    def train(self, mode=True):
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, _BatchNorm):
                    module.eval()
        return self

    def init_weights(self):
        super().init_weights()
        pretrained = isinstance(self.init_cfg, dict) and self.init_cfg.get('type') == 'Pretrained'
        if self.zero_init_residual and not pretrained:
            for module in self.modules():
                if isinstance(module, WideBasicBlock):
                    constant_init(module.norm2, 0)

    def forward(self, x):
        stages = [getattr(self, name) for name in self.res_layers]
        last_stage = stages[-1]
        stages[-1] = lambda x: self.relu(self.norm1(last_stage(x)))
        return self.stage_outputs(self.conv1(x), stages)
