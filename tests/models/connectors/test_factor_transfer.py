"""Paraphraser / Translator: the conv and transposed-conv stacks against a float64 reference written from the
layout (batch-statistics BN and LeakyReLU(0.1) written out; a stride-1 transposed conv as the convolution with the
flipped, transposed kernel), the two phases of the paraphraser, and build errors."""
import pytest
import torch
import torch.nn.functional as F

from mmdistkd.models.connectors import Paraphraser, Translator


def leaky_relu(x):
    return torch.where(x > 0, x, 0.1 * x)


def batch_norm(x, weight, bias, eps=1e-5):
    mean = x.mean((0, 2, 3), keepdim=True)
    var = ((x - mean)**2).mean((0, 2, 3), keepdim=True)
    return (x - mean) / (var + eps).sqrt() * weight.view(1, -1, 1, 1) + bias.view(1, -1, 1, 1)


def reference_stack(x, p, prefix, transposed, use_bn):
    """Three ``conv3x3 - [BN] - LeakyReLU(0.1)`` stages at layer indices 0, 3, 6 of ``prefix``."""
    for index in (0, 3, 6):
        weight, bias = p[f'{prefix}.{index}.weight'], p[f'{prefix}.{index}.bias']
        if transposed:  # (in, out, k, k) -> the equivalent convolution's (out, in, k, k), flipped
            weight = weight.transpose(0, 1).flip(2, 3)
        x = F.conv2d(x, weight, bias, padding=1)
        if use_bn:
            x = batch_norm(x, p[f'{prefix}.{index + 1}.weight'], p[f'{prefix}.{index + 1}.bias'])
        x = leaky_relu(x)
    return x


def parameters64(module):
    return {name: value.detach().double() for name, value in module.named_parameters()}


@pytest.mark.parametrize('use_bn', [False, True])
def test_pretrain_phase_reconstructs_through_encoder_and_decoder(use_bn):
    torch.manual_seed(0)
    paraphraser = Paraphraser(in_channel=6, out_channel=4, phase='pretrain', use_bn=use_bn)
    feature = torch.randn(2, 6, 5, 5)
    reconstruction = paraphraser(feature)
    p = parameters64(paraphraser)
    factor = reference_stack(feature.double(), p, 'encoder', transposed=False, use_bn=use_bn)
    expected = reference_stack(factor, p, 'decoder', transposed=True, use_bn=use_bn)
    assert reconstruction.shape == (2, 6, 5, 5)
    torch.testing.assert_close(reconstruction.double(), expected, rtol=1e-5, atol=1e-5)
    (reconstruction * torch.randn_like(reconstruction)).sum().backward()
    assert not [name for name, p in paraphraser.named_parameters() if p.grad is None or not p.grad.any()]


def test_train_phase_gives_the_constant_factor_and_is_frozen():
    torch.manual_seed(1)
    paraphraser = Paraphraser(in_channel=6, out_channel=4, phase='train')
    feature = torch.randn(2, 6, 5, 5, requires_grad=True)
    factor = paraphraser(feature)
    expected = reference_stack(feature.detach().double(), parameters64(paraphraser), 'encoder', False, False)
    torch.testing.assert_close(factor.double(), expected, rtol=1e-5, atol=1e-5)
    assert not factor.requires_grad  # FTLoss's target
    # No parameter waits for a gradient (DDP without find_unused_parameters); the pre-trained weights stay in
    # the state dict.
    assert not any(p.requires_grad for p in paraphraser.parameters())
    assert set(paraphraser.state_dict()) == set(Paraphraser(6, 4, phase='pretrain').state_dict())


@pytest.mark.parametrize('use_bn', [True, False])
def test_translator_is_the_encoder_stack(use_bn):
    torch.manual_seed(2)
    translator = Translator(in_channel=3, out_channel=5, use_bn=use_bn)
    feature = torch.randn(4, 3, 6, 6)
    factor = translator(feature)
    expected = reference_stack(feature.double(), parameters64(translator), 'encoder', False, use_bn)
    assert factor.shape == (4, 5, 6, 6)
    torch.testing.assert_close(factor.double(), expected, rtol=1e-5, atol=1e-5)
    factor.sum().backward()
    assert all(p.grad is not None for p in translator.parameters())


def test_errors_say_what_to_change():
    with pytest.raises(ValueError, match='phase=.finetune.*"pretrain".*"train"'):
        Paraphraser(8, 4, phase='finetune')
    with pytest.raises(ValueError, match=r'in_channel=64.*\(1, 16, 4, 4\).*set in_channel=16'):
        Paraphraser(64, 32)(torch.randn(1, 16, 4, 4))
    with pytest.raises(ValueError, match=r'in_channel=32.*\(1, 8, 4, 4\).*set in_channel=8'):
        Translator(32, 64)(torch.randn(1, 8, 4, 4))
