"""MMRazor's ``WideResNet``: state_dict keys and shapes as MMRazor's construction gives them (so its checkpoints
load), stage output shapes, one block in float64 against the formula written out, the whole network against the
CRD benchmark's WRN with the same weights, frozen stages and norm_eval."""
import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS

import mmdistkd  # noqa: F401
from mmdistkd.models.backbones import CIFARWideResNet, WideResNet
from mmdistkd.registry import MODELS

BN_KEYS = ('weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked')


def mmrazor_wrn_keys(depth, widen_factor):
    """``{key: shape}`` of MMRazor's ``WideResNet(depth, widen_factor)`` state_dict, in its order, following its
    construction: stem ``conv1``; per stage a ``ResLayer`` (an ``nn.Sequential``) of ``BasicBlock``s that
    register ``bn1``, ``conv1``, ``bn2``, ``conv2``, then ``downsample`` (a bare 1x1 conv) where the stride or the
    width changes; the final norm ``bn1``. Widths: stem 16, stage i 16 * widen_factor * 2**i."""
    def bn(prefix, channels):
        return {f'{prefix}.{key}': () if key == 'num_batches_tracked' else (channels, ) for key in BN_KEYS}

    keys = {'conv1.weight': (16, 3, 3, 3)}
    in_channels = 16
    for stage, stride in enumerate((1, 2, 2)):
        out_channels = 16 * widen_factor * 2**stage
        for block in range((depth - 4) // 6):
            prefix = f'layer{stage + 1}.{block}'
            keys.update(bn(f'{prefix}.bn1', in_channels))
            keys[f'{prefix}.conv1.weight'] = (out_channels, in_channels, 3, 3)
            keys.update(bn(f'{prefix}.bn2', out_channels))
            keys[f'{prefix}.conv2.weight'] = (out_channels, out_channels, 3, 3)
            if block == 0 and (stride != 1 or in_channels != out_channels):
                keys[f'{prefix}.downsample.weight'] = (out_channels, in_channels, 1, 1)
            in_channels = out_channels
    keys.update(bn('bn1', in_channels))
    return keys


@pytest.mark.parametrize('depth, widen_factor', [(16, 2), (28, 4)])
def test_state_dict_keys_and_shapes_are_mmrazors(depth, widen_factor):
    backbone = MODELS.build(dict(type='mmdistkd.WideResNet', depth=depth, num_stages=3, widen_factor=widen_factor))
    actual = {key: tuple(value.shape) for key, value in backbone.state_dict().items()}
    expected = mmrazor_wrn_keys(depth, widen_factor)
    assert list(actual) == list(expected)
    assert actual == expected
    # every first block of these two has a downsample conv; no later block has one
    assert sorted(key for key in actual if 'downsample' in key) == [
        f'layer{stage}.0.downsample.weight' for stage in (1, 2, 3)]


def test_mmrazor_checkpoint_state_dict_loads_strictly():
    """A state_dict with MMRazor's keys and shapes (random values) loads without missing or unexpected keys,
    and the backbone then holds those values."""
    generator = torch.Generator().manual_seed(0)
    checkpoint = {key: torch.randn(shape, generator=generator) if shape else torch.tensor(3)
                  for key, shape in mmrazor_wrn_keys(16, 2).items()}
    checkpoint = {key: value.abs() if key.endswith('running_var') else value for key, value in checkpoint.items()}
    backbone = WideResNet(depth=16, widen_factor=2)
    backbone.load_state_dict(checkpoint, strict=True)
    assert all(torch.equal(backbone.state_dict()[key], value) for key, value in checkpoint.items())


def test_ofd_recorder_sources_are_norms_of_the_connectors_channels():
    """MMRazor's OFD config records backbone.layer2.0.bn1, layer3.0.bn1 and bn1 of WRN-16-2 (student, connectors
    from 32, 64, 128 channels) and WRN-28-4 (teacher, 64, 128, 256)."""
    for depth, widen_factor, channels in [(16, 2, (32, 64, 128)), (28, 4, (64, 128, 256))]:
        modules = dict(WideResNet(depth=depth, widen_factor=widen_factor).named_modules())
        recorded = [modules[name] for name in ('layer2.0.bn1', 'layer3.0.bn1', 'bn1')]
        assert [(type(m), m.num_features) for m in recorded] == [(torch.nn.BatchNorm2d, c) for c in channels]


@pytest.mark.parametrize('out_indices, shapes', [
    (-1, [(128, 8)]), (0, [(32, 32)]), (1, [(64, 16)]), (2, [(128, 8)]),
    ((0, 1, 2), [(32, 32), (64, 16), (128, 8)]), ((0, 2), [(32, 32), (128, 8)]),
])
def test_stage_output_shapes(out_indices, shapes):
    torch.manual_seed(0)
    backbone = WideResNet(depth=16, widen_factor=2, out_indices=out_indices).eval()
    outputs = backbone(torch.randn(2, 3, 32, 32))
    assert [tuple(out.shape) for out in outputs] == [(2, channels, side, side) for channels, side in shapes]


def test_last_output_is_the_final_norm_relu_of_the_last_stage_and_norms_record_pre_relu():
    torch.manual_seed(0)
    backbone = WideResNet(depth=16, widen_factor=2, out_indices=(0, 1, 2))
    backbone.init_weights()
    backbone.eval()
    with torch.no_grad():
        backbone.bn1.bias.uniform_(-1, 1)
    norm_outputs = {}
    for name in ('layer2.0.bn1', 'bn1'):
        backbone.get_submodule(name).register_forward_hook(
            lambda module, inputs, output, name=name: norm_outputs.__setitem__(name, output))
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        stage0, stage1, final = backbone(x)
        last_stage = backbone.layer3(stage1)
    torch.testing.assert_close(final, F.relu(backbone.bn1(last_stage)))
    # the recorded norm outputs are the norms' own (negative values kept), not the ReLUs'
    torch.testing.assert_close(norm_outputs['bn1'], backbone.bn1(last_stage))
    torch.testing.assert_close(norm_outputs['layer2.0.bn1'], backbone.layer2[0].bn1(stage0))
    assert all((out < 0).any() for out in norm_outputs.values())


def explicit_conv(x, weight, stride=1, padding=0):
    """Cross-correlation written as a sum over kernel offsets of channel contractions."""
    x = F.pad(x, (padding, ) * 4)
    kernel = weight.shape[-1]
    out_side = (x.shape[-1] - kernel) // stride + 1
    span = stride * (out_side - 1) + 1
    return sum(torch.einsum('bchw,oc->bohw', x[:, :, i:i + span:stride, j:j + span:stride], weight[:, :, i, j])
               for i in range(kernel) for j in range(kernel))


def explicit_bn(x, bn):
    shape = (1, -1, 1, 1)
    return ((x - bn.running_mean.view(shape)) / torch.sqrt(bn.running_var.view(shape) + bn.eps)
            * bn.weight.view(shape) + bn.bias.view(shape))


def randomize(module, generator):
    """Random weights and BN statistics (positive variances); conv weights scaled by 1 / sqrt(fan_in) so that
    activations keep their scale through the network."""
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if name.endswith('running_var'):
                tensor.copy_(torch.rand(tensor.shape, generator=generator, dtype=tensor.dtype) + 0.5)
            elif tensor.is_floating_point():
                fan_in = tensor[0].numel() if tensor.dim() == 4 else 1
                tensor.copy_(torch.randn(tensor.shape, generator=generator, dtype=tensor.dtype) / fan_in**0.5)


@pytest.mark.parametrize('stage', [0, 1])
def test_block_forward_float64_equals_the_formula(stage):
    """out = conv2(relu(bn2(conv1(a)))) + (downsample(a) or x), a = relu(bn1(x)); the first block of layer1
    widens at stride 1, the first of layer2 widens at stride 2, the second of layer1 keeps its input."""
    generator = torch.Generator().manual_seed(stage)
    backbone = WideResNet(depth=16, widen_factor=2).double().eval()
    randomize(backbone, generator)
    layer = backbone.get_submodule(f'layer{stage + 1}')
    for index, block in enumerate(layer):
        stride = 2 if stage == 1 and index == 0 else 1
        x = torch.randn(2, block.bn1.num_features, 8, 8, generator=generator, dtype=torch.float64)
        activated = explicit_bn(x, block.bn1).clamp(min=0)
        residual = explicit_conv(explicit_bn(explicit_conv(activated, block.conv1.weight, stride, 1), block.bn2)
                                 .clamp(min=0), block.conv2.weight, 1, 1)
        shortcut = x if index else explicit_conv(activated, block.downsample.weight, stride)
        with torch.no_grad():
            torch.testing.assert_close(block(x), residual + shortcut, rtol=1e-12, atol=1e-12)


def test_whole_network_equals_the_crd_benchmarks_wrn_16_2_with_the_same_weights():
    """Same architecture as the CRD benchmark's wrn_16_2 under other names (its ``blockN.layer`` and
    ``convShortcut``): with its weights renamed, the outputs agree, in training (batch statistics) as in eval."""
    torch.manual_seed(0)
    crd = CIFARWideResNet('wrn_16_2')
    randomize(crd, torch.Generator().manual_seed(1))
    mmrazor_keys = {key.replace('.layer.', '.', 1).replace('block', 'layer', 1).replace('convShortcut', 'downsample'):
                    value for key, value in crd.state_dict().items()}
    backbone = WideResNet(depth=16, widen_factor=2)
    backbone.load_state_dict(mmrazor_keys, strict=True)
    x = torch.randn(4, 3, 32, 32)
    for train in (False, True):
        crd.train(train), backbone.train(train)
        with torch.no_grad():
            torch.testing.assert_close(backbone(x)[0], crd(x)[0])


def test_frozen_stages_freeze_the_stem_and_stages_and_keep_their_norms_in_eval():
    torch.manual_seed(0)
    unfrozen = WideResNet(depth=10, widen_factor=1).train()
    assert all(param.requires_grad for param in unfrozen.parameters())
    assert all(module.training for module in unfrozen.modules())

    backbone = WideResNet(depth=10, widen_factor=1, frozen_stages=1)
    backbone.train()
    frozen = {name for name, param in backbone.named_parameters() if not param.requires_grad}
    assert frozen == {name for name, _ in backbone.named_parameters() if name.split('.')[0] in ('conv1', 'layer1')}
    assert not backbone.layer1[0].bn1.training and backbone.layer2[0].bn1.training and backbone.bn1.training
    before = {key: value.clone() for key, value in backbone.state_dict().items() if 'running_mean' in key}
    backbone(torch.randn(2, 3, 16, 16))
    after = backbone.state_dict()
    assert [key for key in before if not torch.equal(before[key], after[key])] == [
        key for key in before if not key.startswith('layer1.')]

    all_frozen = WideResNet(depth=10, widen_factor=1, frozen_stages=3).train()
    assert not any(param.requires_grad for param in all_frozen.parameters())
    assert not any(module.training for module in all_frozen.modules() if isinstance(module, torch.nn.BatchNorm2d))


def test_norm_eval_fixes_running_statistics_but_trains_the_norms():
    torch.manual_seed(0)
    backbone = WideResNet(depth=10, widen_factor=1, norm_eval=True).train()
    assert backbone.training
    assert not any(module.training for module in backbone.modules() if isinstance(module, torch.nn.BatchNorm2d))
    before = {key: value.clone() for key, value in backbone.state_dict().items()}
    backbone(torch.randn(2, 3, 16, 16)).__getitem__(0).sum().backward()
    assert all(torch.equal(before[key], value) for key, value in backbone.state_dict().items())
    assert backbone.bn1.weight.grad is not None


@pytest.mark.parametrize('kwargs, message', [
    (dict(depth=18), 'depth 18'), (dict(depth=16, frozen_stages=4), 'frozen_stages=4'),
    (dict(depth=16, num_stages=4), 'num_stages=4'), (dict(depth=16, out_indices=3), 'out_indices'),
])
def test_invalid_arguments_say_what_is_allowed(kwargs, message):
    with pytest.raises(ValueError, match=message):
        WideResNet(**kwargs)


def test_zero_init_residual_makes_identity_blocks_pass_their_input():
    backbone = WideResNet(depth=16, widen_factor=1, zero_init_residual=True)
    backbone.init_weights()
    x = torch.randn(2, 16, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(backbone.layer1[1](x), x)


def test_mmrazor_vanilla_config_builds_a_classifier():
    """MMRazor's ``wrn16_2_cifar10.py`` model, converted (backbone ``mmdistkd.WideResNet``), built in mmpretrain."""
    cfg = dict(type='ImageClassifier',
               backbone=dict(type='mmdistkd.WideResNet', depth=16, num_stages=3, widen_factor=2),
               neck=dict(type='GlobalAveragePooling'),
               head=dict(type='LinearClsHead', num_classes=10, in_channels=128, topk=(1, 5)))
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        classifier = MMPRETRAIN_MODELS.build(cfg)
    classifier.init_weights()
    assert isinstance(classifier.backbone, WideResNet)
    assert classifier(torch.randn(2, 3, 32, 32)).shape == (2, 10)
