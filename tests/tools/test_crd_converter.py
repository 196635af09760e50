"""tools/model_converters/crd_to_mmpretrain.py: a state dict in the CRD benchmark's key layout, converted,
loads strictly into the mmpretrain ImageClassifier and gives the logits of the benchmark's own model."""
import hashlib

import pytest
import torch
from mmengine.registry import DefaultScope
from mmengine.runner import load_checkpoint
from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS

from mmdistkd.models.backbones import CRD_ARCHS, crd_classifier_cfg, crd_model_state_dict, crd_to_mmpretrain
from mmdistkd.testing import run_tool

TOOL = 'tools/model_converters/crd_to_mmpretrain.py'

# Computed with HobbitLong/RepDistiller's models/ (model_dict[name](num_classes=100), float64, eval mode):
# the sha1 (first 16 hex digits) of its state dict's sorted "key shape" lines, and its logits [0, 0] and
# [1, 99] for DETERMINISTIC_INPUT with deterministic_state_dict(its layout) loaded.
REFERENCE = {
    'resnet8': ('c2af3f7d796e9a05', (0.05208999521, 0.2760188352)),
    'resnet14': ('ba6a0c2542719071', (-0.4205264641, -0.37137509)),
    'resnet20': ('2dc80d0b8aa6079d', (0.2748797396, -0.1344364424)),
    'resnet32': ('2bcf2b4842abcd49', (-0.6440089953, -0.4332060149)),
    'resnet44': ('6cef3a94c0655937', (1.291139515, 1.738955212)),
    'resnet56': ('56ad5dab4f57b233', (-1.150733517, -5.038359294)),
    'resnet110': ('2d5c50ba9f0d7db0', (-3677.635929, -1837.000835)),
    'resnet8x4': ('34302751b121142e', (-0.1184753858, 0.2528800832)),
    'resnet32x4': ('d1d73105ecd91ba8', (-5.255896917, 4.330102432)),
    'ResNet50': ('386f1e667977ab18', (-1.650594568, 0.2719911286)),
    'wrn_16_1': ('395bbf4617632c39', (-0.0442622399, 0.09423520985)),
    'wrn_16_2': ('9a5c11b74cc3b7e8', (-0.0636322012, 0.2615638616)),
    'wrn_40_1': ('05ae623696cb684e', (-0.6618863415, -0.2732960677)),
    'wrn_40_2': ('caa302bdf3d2c5a1', (-9.125136865, 0.3680608874)),
    'vgg8': ('0121d0a5b5a87ce9', (0.5986687392, 0.3253054344)),
    'vgg11': ('94ff6ed1f5581320', (0.6346792924, 0.4029489581)),
    'vgg13': ('2755187c9ebc5290', (0.7689103864, 0.5317454551)),
    'vgg16': ('4f31d06194e084fd', (0.6969568844, 0.4309616067)),
    'vgg19': ('b9be8cd6f5aa4e38', (-0.9326588944, -0.7198742835)),
    'MobileNetV2': ('ad33fef5378a7133', (0.8793632592, -1.158370689)),
    'ShuffleV1': ('dc8706dc49a09da2', (-1.781700862, -2.127618481)),
    'ShuffleV2': ('c00233e4da575eb4', (0.8622829429, 0.9418028178)),
}
DETERMINISTIC_INPUT = torch.sin(torch.arange(2 * 3 * 32 * 32, dtype=torch.float64) * 0.01).reshape(2, 3, 32, 32)


def deterministic_state_dict(layout):
    """Weights from a formula (no random generator, so the reference logits above stay reproducible):
    a sine wave per tensor, scaled so that activations stay of order 1 through deep networks."""
    state_dict = {}
    for index, (key, shape) in enumerate(sorted(layout.items())):
        numel = torch.Size(shape).numel()
        wave = torch.sin(torch.arange(numel, dtype=torch.float64) * 0.7 + index).reshape(shape)
        if key.endswith('num_batches_tracked'):
            state_dict[key] = torch.zeros(shape, dtype=torch.long)
        elif key.endswith('running_var'):
            state_dict[key] = 1 + 0.5 * wave**2
        elif len(shape) > 1:
            state_dict[key] = wave / (numel / shape[0])**0.5
        elif key.endswith('weight'):
            state_dict[key] = 0.5 + 0.2 * wave
        else:
            state_dict[key] = 0.1 * wave
    return state_dict


def build_classifier(arch):
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return MMPRETRAIN_MODELS.build(crd_classifier_cfg(arch))


def crd_layout(model, arch):
    """The CRD benchmark's key layout of ``model`` (backbone keys as they are, the head as its classifier)."""
    classifier = CRD_ARCHS[arch][2]
    layout = {}
    for key, value in model.state_dict().items():
        if key.startswith('backbone.'):
            layout[key[len('backbone.'):]] = tuple(value.shape)
        else:
            layout[key.replace('head.fc', classifier)] = tuple(value.shape)
    return layout


def fingerprint(layout):
    lines = '\n'.join(f'{key} {shape}' for key, shape in sorted(layout.items()))
    return hashlib.sha1(lines.encode()).hexdigest()[:16]


@pytest.mark.parametrize('arch', list(CRD_ARCHS))
def test_converted_crd_state_dict_loads_strictly_and_gives_the_benchmark_logits(arch):
    assert set(REFERENCE) == set(CRD_ARCHS)
    model = build_classifier(arch)
    layout = crd_layout(model, arch)
    expected_fingerprint, (logit_00, logit_199) = REFERENCE[arch]
    assert fingerprint(layout) == expected_fingerprint, 'key layout differs from the benchmark model'
    checkpoint = {'epoch': 240, 'model': deterministic_state_dict(layout)}  # as RepDistiller saves

    model.double().eval()  # before loading, so that the float64 weights are not rounded to float32
    model.load_state_dict(crd_to_mmpretrain(crd_model_state_dict(checkpoint), arch), strict=True)
    with torch.no_grad():
        logits = model(DETERMINISTIC_INPUT, mode='tensor')
    assert logits.shape == (2, 100)
    torch.testing.assert_close(logits[0, 0].item(), logit_00, rtol=1e-8, atol=1e-8)
    torch.testing.assert_close(logits[1, 99].item(), logit_199, rtol=1e-8, atol=1e-8)


def test_wrong_arch_names_the_mismatched_keys():
    layout = crd_layout(build_classifier('resnet8'), 'resnet8')
    with pytest.raises(ValueError, match=r"not a CRD 'resnet14' model \(missing \(36\): backbone.layer1.1"):
        crd_to_mmpretrain(deterministic_state_dict(layout), 'resnet14')
    with pytest.raises(ValueError, match=r"shape mismatch \(46\): .*backbone.conv1.weight \(16, 3, 3, 3\) "
                       r"\(expected \(32, 3, 3, 3\)\)"):
        crd_to_mmpretrain(deterministic_state_dict(layout), 'resnet8x4')
    with pytest.raises(ValueError, match='unknown CRD model'):
        crd_to_mmpretrain({}, 'resnet18')


def test_tool_writes_a_checkpoint_mmengine_loads_strictly(tmp_path):
    model = build_classifier('wrn_16_1')
    layout = crd_layout(model, 'wrn_16_1')
    state_dict = {key: value.float() if value.is_floating_point() else value
                  for key, value in deterministic_state_dict(layout).items()}
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    # The entries of RepDistiller's ckpt_epoch_240.pth.
    torch.save({'epoch': 240, 'model': state_dict, 'accuracy': torch.tensor(71.2),
                'optimizer': optimizer.state_dict()}, tmp_path / 'ckpt_epoch_240.pth')
    out = tmp_path / 'teachers' / 'cifar100_wrn_16_1.pth'
    result = run_tool([TOOL, str(tmp_path / 'ckpt_epoch_240.pth'), str(out), '--arch', 'wrn_16_1'])
    assert f'written to {out}' in result.stdout
    load_checkpoint(model, str(out), map_location='cpu', strict=True)
    torch.testing.assert_close(model.head.fc.weight, state_dict['fc.weight'])
    torch.testing.assert_close(model.backbone.block1.layer[0].conv1.weight, state_dict['block1.layer.0.conv1.weight'])
