"""The CRD benchmark's CIFAR models as mmpretrain backbones: stage output shapes on a 2x3x32x32 input, and
parameter counts (backbone + 100-class linear head) equal to the benchmark's own model definitions."""
import pytest
import torch
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS
from mmpretrain.structures import DataSample

import mmdistkd  # noqa: F401
from mmdistkd.models.backbones import CRD_ARCHS, CIFARResNet, crd_classifier_cfg
from mmdistkd.registry import MODELS

# Parameters of each model with num_classes=100, counted on HobbitLong/RepDistiller's models/ definitions
# (model_dict). The published ones: ResNet-8x4 1.23M, ResNet-32x4 7.43M, WRN-40-2 2.26M.
PARAMETERS = {
    'resnet8': 83892, 'resnet14': 181108, 'resnet20': 278324, 'resnet32': 472756, 'resnet44': 667188,
    'resnet56': 861620, 'resnet110': 1736564, 'resnet8x4': 1233540, 'resnet32x4': 7433860,
    'ResNet50': 23705252, 'wrn_16_1': 180916, 'wrn_16_2': 703284, 'wrn_40_1': 569780, 'wrn_40_2': 2255156,
    'vgg8': 3965028, 'vgg11': 9277284, 'vgg13': 9462180, 'vgg16': 14774436, 'vgg19': 20086692,
    'MobileNetV2': 812836, 'ShuffleV1': 949258, 'ShuffleV2': 1355528,
}
PUBLISHED_MILLIONS = {'resnet8x4': 1.23, 'resnet32x4': 7.43, 'wrn_40_2': 2.26}
# The other depths of RepDistiller's models/resnetv2.py (same 100-class head).
STEM_RESNET_PARAMETERS = {'resnet18': 11220132, 'resnet34': 21328292, 'resnet101': 42697380,
                          'resnet152': 58341028}

RESNET = [(16, 32), (32, 16), (64, 8)]
RESNET_X4 = [(64, 32), (128, 16), (256, 8)]
VGG = [(64, 32), (128, 16), (256, 8), (512, 4), (512, 4)]
# (channels, side) of every stage for a 32x32 input
STAGE_SHAPES = {
    **{name: RESNET for name in ('resnet8', 'resnet14', 'resnet20', 'resnet32', 'resnet44', 'resnet56',
                                 'resnet110')},
    'resnet8x4': RESNET_X4, 'resnet32x4': RESNET_X4,
    'ResNet50': [(256, 32), (512, 16), (1024, 8), (2048, 4)],
    'wrn_16_1': [(16, 32), (32, 16), (64, 8)], 'wrn_40_1': [(16, 32), (32, 16), (64, 8)],
    'wrn_16_2': [(32, 32), (64, 16), (128, 8)], 'wrn_40_2': [(32, 32), (64, 16), (128, 8)],
    **{name: VGG for name in ('vgg8', 'vgg11', 'vgg13', 'vgg16', 'vgg19')},
    'MobileNetV2': [(8, 16), (12, 16), (16, 8), (32, 4), (48, 4), (80, 2), (160, 2), (1280, 2)],
    'ShuffleV1': [(240, 16), (480, 8), (960, 4)],
    'ShuffleV2': [(116, 16), (232, 8), (464, 4), (1024, 4)],
}


def num_parameters(module):
    return sum(p.numel() for p in module.parameters())


def test_every_crd_model_is_covered():
    assert set(CRD_ARCHS) == set(PARAMETERS) == set(STAGE_SHAPES)


@pytest.mark.parametrize('arch', list(CRD_ARCHS))
def test_parameter_count_matches_the_benchmark(arch):
    backbone_cfg, in_channels, _ = CRD_ARCHS[arch]
    head = in_channels * 100 + 100
    assert num_parameters(MODELS.build(backbone_cfg)) + head == PARAMETERS[arch]
    if arch in PUBLISHED_MILLIONS:
        assert round(PARAMETERS[arch] / 1e6, 2) == PUBLISHED_MILLIONS[arch]


@pytest.mark.parametrize('arch', list(STEM_RESNET_PARAMETERS))
def test_other_stem_resnet_depths_match_the_benchmark(arch):
    backbone = MODELS.build(dict(type='mmdistkd.CIFARStemResNet', arch=arch))
    channels = 512 if arch in ('resnet18', 'resnet34') else 2048
    assert num_parameters(backbone) + channels * 100 + 100 == STEM_RESNET_PARAMETERS[arch]


@pytest.mark.parametrize('arch', list(CRD_ARCHS))
def test_stage_outputs_have_the_benchmark_shapes(arch):
    shapes = STAGE_SHAPES[arch]
    backbone = MODELS.build(dict(CRD_ARCHS[arch][0], out_indices=tuple(range(len(shapes)))))
    backbone.eval()
    with torch.no_grad():
        outs = backbone(torch.randn(2, 3, 32, 32))
    assert [tuple(out.shape) for out in outs] == [(2, channels, side, side) for channels, side in shapes]
    # The default output is the last stage, the one the pooling and classifier use.
    with torch.no_grad():
        (last, ) = MODELS.build(CRD_ARCHS[arch][0]).eval()(torch.randn(2, 3, 32, 32))
    assert last.shape[1] == CRD_ARCHS[arch][1]


def test_out_indices_negative_and_errors_name_the_valid_range():
    backbone = CIFARResNet('resnet8', out_indices=(-1, 0))
    assert backbone.out_indices == (0, 2)
    assert [out.shape[1] for out in backbone(torch.randn(1, 3, 32, 32))] == [16, 64]
    with pytest.raises(ValueError, match=r'has 3 stages \(use 0..2'):
        CIFARResNet('resnet8', out_indices=3)
    with pytest.raises(ValueError, match='resnet8x4'):
        CIFARResNet('resnet9')


def test_classifier_builds_from_an_mmpretrain_scope_and_trains():
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MMPRETRAIN_MODELS.build(crd_classifier_cfg('wrn_16_1'))
    model.init_weights()
    inputs = torch.randn(4, 3, 32, 32)
    assert model(inputs, mode='tensor').shape == (4, 100)
    samples = [DataSample().set_gt_label(label) for label in (0, 5, 17, 99)]
    losses = model(inputs, samples, mode='loss')
    losses['loss'].backward()
    assert torch.isfinite(losses['loss'])
    assert all(p.grad is not None for p in model.backbone.parameters())
