"""MGDConnector: the masked generation against a float64 reference that redraws the seeded mask and zeroes the
masked cells one by one (the convolutions, torch's, are the reference's primitives)."""
import pytest
import torch
import torch.nn.functional as F

from mmdistkd.models.connectors import MGDConnector


def reference_generation(connector, feature, mask_draw):
    """``conv3x3(relu(conv3x3(align(S) * M)))`` in float64, ``M`` zero where the uniform draw exceeds
    ``1 - lambda_mgd``."""
    params = {name: value.detach().double() for name, value in connector.named_parameters()}
    feature = feature.double()
    if 'align.weight' in params:
        feature = F.conv2d(feature, params['align.weight'], params['align.bias'])
    masked = feature.clone()
    n, c, h, w = feature.shape
    for i in range(n):
        for j in range(c):
            for y in range(h):
                for x in range(w):
                    draw = mask_draw[i, j if mask_draw.shape[1] > 1 else 0,
                                     y if mask_draw.shape[2] > 1 else 0, x if mask_draw.shape[3] > 1 else 0]
                    if draw > 1 - connector.lambda_mgd:
                        masked[i, j, y, x] = 0
    hidden = F.relu(F.conv2d(masked, params['generation.0.weight'], params['generation.0.bias'], padding=1))
    return F.conv2d(hidden, params['generation.2.weight'], params['generation.2.bias'], padding=1)


@pytest.mark.parametrize('student_channels, mask_on_channel', [(3, False), (5, False), (5, True)])
def test_matches_float64_reference_with_the_seeded_mask(student_channels, mask_on_channel):
    torch.manual_seed(0)
    connector = MGDConnector(student_channels, teacher_channels=5, lambda_mgd=0.5, mask_on_channel=mask_on_channel)
    feature = torch.randn(2, student_channels, 4, 6)
    torch.manual_seed(7)
    generated = connector(feature)
    torch.manual_seed(7)
    mask_draw = torch.rand((2, 5, 1, 1) if mask_on_channel else (2, 1, 4, 6))
    assert 0 < (mask_draw > 0.5).sum() < mask_draw.numel()  # both kept and masked cells
    expected = reference_generation(connector, feature, mask_draw)
    torch.testing.assert_close(generated.double(), expected, rtol=1e-5, atol=1e-5)


def test_masks_the_lambda_fraction_and_trains_every_layer():
    torch.manual_seed(0)
    connector = MGDConnector(student_channels=2, teacher_channels=4, lambda_mgd=0.65)
    # A constant aligned feature, so a masked position is exactly where the generator's input is zero.
    torch.nn.init.zeros_(connector.align.weight)
    torch.nn.init.ones_(connector.align.bias)
    masked_input = []
    connector.generation.register_forward_hook(lambda module, inputs, output: masked_input.append(inputs[0]))
    connector(torch.randn(8, 2, 32, 32)).sum().backward()
    zero_fraction = (masked_input[0] == 0).float().mean().item()
    assert abs(zero_fraction - 0.65) < 0.02
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in connector.parameters())


def test_same_channels_have_no_align_layer():
    assert set(MGDConnector(4, 4).state_dict()) == {f'generation.{i}.{p}' for i in (0, 2) for p in ('weight', 'bias')}


def test_wrong_student_channels_name_the_fix():
    with pytest.raises(ValueError, match=r'student_channels=256.*\(1, 128, 4, 4\).*set student_channels=128'):
        MGDConnector(256, 256)(torch.randn(1, 128, 4, 4))
