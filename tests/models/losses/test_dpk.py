import inspect
import math
from unittest import mock

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmdistkd.analysis.synthetic import synthetic_batch
from mmdistkd.models.losses import FGDLoss
from mmdistkd.models.losses.cka import batch_unbiased_cka, token_linear_cka, unbiased_hsic_terms
from mmdistkd.models.losses.dpk import DPKLoss
from mmdistkd.models.losses.dpk_transformer import sincos_pos_embed_2d
from mmdistkd.registry import MODELS

LIGHT = dict(embed_dims=16, encoder_depth=1, decoder_depth=1, num_heads=2, mlp_ratio=2)


def gram_linear_cka(x, y):
    """Reference biased linear CKA in the Gram-matrix form, samples as rows, float64:
    ``tr(KHLH) / sqrt(tr(KHKH) tr(LHLH))`` with ``H = I - 11^T / n``."""
    x, y = x.double(), y.double()
    n = x.shape[0]
    centering = torch.eye(n, dtype=torch.float64) - torch.full((n, n), 1 / n, dtype=torch.float64)
    gram_k, gram_l = centering @ x @ x.T @ centering, centering @ y @ y.T @ centering
    return float((gram_k * gram_l).sum() / torch.sqrt((gram_k * gram_k).sum() * (gram_l * gram_l).sum()))


def u_centred_cka(x, y):
    """Reference unbiased CKA via U-centred Gram matrices (Kornblith et al.'s debiased estimator)."""
    def u_centre(gram):
        n = gram.shape[0]
        gram = gram.clone().fill_diagonal_(0)
        means = gram.sum(0) / (n - 2)
        means = means - means.sum() / (2 * (n - 1))
        return (gram - means[:, None] - means[None, :]).fill_diagonal_(0)

    gram_k, gram_l = u_centre(x.double() @ x.double().T), u_centre(y.double() @ y.double().T)
    return float((gram_k * gram_l).sum() / (gram_k.norm() * gram_l.norm()))


def hsic_reference(x, y):
    """Unbiased HSIC as the inner product of U-centred Gram matrices over ``n (n - 3)`` (Szekely and Rizzo's
    form, equal to Song et al.'s estimator), images as samples, numpy float64."""
    def u_centre(gram):
        n = gram.shape[0]
        gram = gram.copy()
        np.fill_diagonal(gram, 0)
        means = gram.sum(0) / (n - 2)
        means = means - means.sum() / (2 * (n - 1))
        centred = gram - means[:, None] - means[None, :]
        np.fill_diagonal(centred, 0)
        return centred

    x, y = x.reshape(len(x), -1).astype(np.float64), y.reshape(len(y), -1).astype(np.float64)
    n = len(x)
    return float((u_centre(x @ x.T) * u_centre(y @ y.T)).sum() / (n * (n - 3)))


def authors_pi_reference(rule, hsic_st, hsic_ss, hsic_tt):
    """The authors' prior-ratio rules (zongdaoming/dpk: engine.py for ImageNet and CIFAR, distillers/dpk.py for
    detection), written out in numpy float64 from the three HSIC terms."""
    with np.errstate(all='ignore'):
        hsic_st, hsic_ss, hsic_tt = np.float64(hsic_st), np.float64(hsic_ss), np.float64(hsic_tt)
        if rule == 'authors_imagenet':
            cka = hsic_st / (np.sqrt(hsic_ss) * np.sqrt(hsic_tt))
            return 0.8 if np.isnan(cka) or np.isinf(cka) or cka <= 0.1 or cka >= 1 else max(1.0 - cka, 0.1)
        if rule == 'authors_cifar':
            cka = (abs(hsic_st) + 1e-5) / (np.sqrt(hsic_ss + 1e-5) * np.sqrt(hsic_tt + 1e-5))
            return 0.9 if np.isnan(cka) or np.isinf(cka) or cka <= 0.1 or cka >= 1 else max(1.0 - cka, 0.15)
        ratio = 1.0 - (abs(hsic_st) + 1e-5) / np.sqrt((abs(hsic_ss) + 1e-5) * (abs(hsic_tt) + 1e-5))
        if np.isnan(ratio) or np.isinf(ratio):
            return 0.5
        return 0.85 if ratio >= 1.0 else 0.15 if ratio <= 0 else ratio


def tokens_of(feat):
    """``(B, C, H, W)`` -> ``(B*H*W, C)``: spatial positions as samples."""
    return feat.permute(0, 2, 3, 1).flatten(0, 2)


def smooth_maps(batch, channels, size, generator):
    """Spatially smooth random maps: coarse noise upsampled, like real feature maps."""
    coarse = torch.randn(batch, channels, size // 2, size // 2, generator=generator)
    return F.interpolate(coarse, size=(size, size), mode='bilinear', align_corners=False)


@pytest.mark.parametrize('align_corners', [False, True])
def test_pi_is_one_minus_token_cka_of_resized_student(align_corners):
    torch.manual_seed(0)
    feat_s, feat_t = torch.randn(2, 6, 4, 5), torch.randn(2, 8, 8, 10)
    feat_t[:, :6] += F.interpolate(feat_s, size=(8, 10), mode='bilinear', align_corners=False)
    dpk = DPKLoss(6, 8, pi_range=(0.0, 1.0), stage='s4', align_corners=align_corners, **LIGHT)
    assert DPKLoss(6, 8, **LIGHT).align_corners is False
    out = dpk(feat_s, feat_t)

    resized = F.interpolate(feat_s, size=(8, 10), mode='bilinear', align_corners=align_corners)
    expected = 1 - gram_linear_cka(tokens_of(resized), tokens_of(feat_t))
    other = F.interpolate(feat_s, size=(8, 10), mode='bilinear', align_corners=not align_corners)
    assert abs(expected - (1 - gram_linear_cka(tokens_of(other), tokens_of(feat_t)))) > 1e-3  # tells them apart
    assert 0.05 < expected < 0.95
    assert out['dpk_pi.s4'].item() == pytest.approx(expected, abs=1e-6)


def test_generated_map_is_made_from_the_resized_student_of_align_corners():
    """The authors' CIFAR resize (align_corners=True) is what the generator gets: under the same prior mask, the
    loss of a half-size student is that of the map generated from ``F.interpolate(..., align_corners=True)``."""
    torch.manual_seed(0)
    dpk = DPKLoss(6, 8, static_ratio=0.0, min_tokens=1, align_corners=True, **LIGHT)
    feat_s, feat_t = torch.randn(2, 6, 4, 5), torch.randn(2, 8, 8, 10)
    resized = F.interpolate(feat_s, size=(8, 10), mode='bilinear', align_corners=True)
    torch.manual_seed(1)
    loss = dpk(feat_s, feat_t)['loss']
    torch.manual_seed(1)
    prior = dpk.random_prior_mask(2, 80, dpk.num_prior_tokens(0.0, 80), 'cpu')
    torch.testing.assert_close(loss, F.mse_loss(dpk.generate(resized, feat_t, prior), feat_t))


@pytest.mark.parametrize('norm_eps', [1e-5, 1e-6])
def test_every_layer_norm_of_the_modules_has_norm_eps(norm_eps):
    dpk = DPKLoss(8, 8, norm_eps=norm_eps, feature_loss=dict(type='FGDLoss', in_channels=8), **LIGHT)
    norms = [module for name, module in dpk.named_modules()
             if isinstance(module, torch.nn.LayerNorm) and not name.startswith('feature_loss.')]
    assert len(norms) == 9  # two encoders and the decoder of one block each: norm1, norm2 and the final norm
    assert all(norm.eps == norm_eps for norm in norms)
    # The feature loss keeps its own (FGD's context blocks: PyTorch's default).
    assert all(module.eps == 1e-5 for module in dpk.feature_loss.modules() if isinstance(module, torch.nn.LayerNorm))
    assert DPKLoss(8, 8, **LIGHT).decoder.norm.eps == 1e-5  # the default


def test_pi_is_clipped_to_range():
    torch.manual_seed(0)
    feat = torch.randn(2, 8, 4, 4)
    dpk = DPKLoss(8, 8, pi_range=(0.2, 0.6), **LIGHT)
    assert dpk.prior_ratio(feat, feat) == pytest.approx(0.2)  # identical features: CKA 1
    assert dpk.prior_ratio(feat, torch.randn(2, 8, 4, 4)) == pytest.approx(0.6)  # 32 samples, 8 channels: low CKA


def test_token_cka_separates_related_from_unrelated_at_batch_2():
    for seed in range(3):
        generator = torch.Generator().manual_seed(seed)
        feat_s = smooth_maps(2, 8, 16, generator)
        mixing = torch.randn(32, 8, generator=generator)
        related = torch.einsum('oc,bchw->bohw', mixing, feat_s) + 0.1 * torch.randn(2, 32, 16, 16, generator=generator)
        unrelated = smooth_maps(2, 32, 16, generator)

        assert token_linear_cka(feat_s, related) > 0.8
        assert token_linear_cka(feat_s, unrelated) < 0.3
        # Why not images as samples: two centred samples are collinear, so biased CKA is exactly 1.
        assert gram_linear_cka(feat_s.flatten(1), related.flatten(1)) == pytest.approx(1.0)
        assert gram_linear_cka(feat_s.flatten(1), unrelated.flatten(1)) == pytest.approx(1.0)


def test_token_cka_matches_gram_form_reference():
    torch.manual_seed(1)
    feat_s, feat_t = torch.randn(3, 5, 4, 6), torch.randn(3, 7, 4, 6)
    assert float(token_linear_cka(feat_s, feat_t)) == pytest.approx(
        gram_linear_cka(tokens_of(feat_s), tokens_of(feat_t)), abs=1e-10)


def test_batch_cka_matches_unbiased_reference_and_is_nan_below_4_images():
    torch.manual_seed(2)
    feat_s, feat_t = torch.randn(6, 3, 4, 4), torch.randn(6, 5, 2, 2)
    feat_t[:, 0] += 3 * feat_s[:, 0, :2, :2]
    assert float(batch_unbiased_cka(feat_s, feat_t)) == pytest.approx(
        u_centred_cka(feat_s.flatten(1), feat_t.flatten(1)), abs=1e-10)
    assert math.isnan(batch_unbiased_cka(feat_s[:3], feat_t[:3]))


def test_nonfinite_token_cka_falls_back_to_middle_of_range_with_one_warning():
    dpk = DPKLoss(8, 8, pi_range=(0.2, 0.6), **LIGHT)
    with mock.patch('mmdistkd.models.losses.dpk.print_log') as warning:
        for _ in range(2):
            out = dpk(torch.randn(2, 8, 4, 4), torch.ones(2, 8, 4, 4))  # constant teacher: 0 / 0
            assert out['dpk_pi.s3'].item() == pytest.approx(0.4)
            assert torch.isfinite(out['loss'])
    assert warning.call_count == 1


def test_unbiased_hsic_terms_match_u_centred_reference():
    torch.manual_seed(3)
    feat_s, feat_t = torch.randn(7, 3, 4, 4), torch.randn(7, 5, 2, 2)
    feat_t[:, 0] += 2 * feat_s[:, 0, :2, :2]
    terms = unbiased_hsic_terms(feat_s, feat_t)
    expected = (hsic_reference(feat_s.numpy(), feat_t.numpy()), hsic_reference(feat_s.numpy(), feat_s.numpy()),
                hsic_reference(feat_t.numpy(), feat_t.numpy()))
    assert all(term.dtype == torch.float64 for term in terms)
    assert [float(term) for term in terms] == pytest.approx(expected, rel=1e-10)
    assert all(math.isnan(term) for term in unbiased_hsic_terms(feat_s[:3], feat_t[:3]))


def batch_features(batch, relation, seed):
    """Student ``(B, 6, 3, 3)`` and teacher ``(B, 8, 3, 3)`` features with the images as samples: the teacher
    the student zero-padded to 8 channels plus a little noise (``'same'``), a mix of the student's channels plus
    noise (``'related'``) or independent (``'unrelated'``)."""
    generator = torch.Generator().manual_seed(seed)
    feat_s = torch.randn(batch, 6, 3, 3, generator=generator)
    noise = torch.randn(batch, 8, 3, 3, generator=generator)
    if relation == 'unrelated':
        return feat_s, noise
    if relation == 'same':
        return feat_s, F.pad(feat_s, (0, 0, 0, 0, 0, 2)) + 0.01 * noise
    return feat_s, torch.einsum('oc,bchw->bohw', torch.randn(8, 6, generator=generator), feat_s) + 1.5 * noise


# Real features for the branches they reach: fewer than 4 images (NaN), unrelated (CKA near 0), related (in
# range), nearly the same (CKA near 1: the floor).
@pytest.mark.parametrize('rule', ['authors_imagenet', 'authors_cifar', 'authors_detection'])
@pytest.mark.parametrize('batch, relation, branch', [
    (2, 'related', 'nan'), (3, 'related', 'nan'), (16, 'unrelated', 'low'), (16, 'related', 'in range'),
    (16, 'same', 'high'),
])
def test_authors_pi_on_features_matches_float64_reference(rule, batch, relation, branch):
    feat_s, feat_t = batch_features(batch, relation, seed=batch)
    if batch >= 4:
        terms = (hsic_reference(feat_s.numpy(), feat_t.numpy()), hsic_reference(feat_s.numpy(), feat_s.numpy()),
                 hsic_reference(feat_t.numpy(), feat_t.numpy()))
        cka = terms[0] / math.sqrt(terms[1] * terms[2])
        assert {'low': cka <= 0.1, 'in range': 0.2 < cka < 0.8, 'high': cka > 0.9}[branch]
    else:
        terms = (float('nan'), ) * 3
    dpk = DPKLoss(6, 8, pi_from=rule, **LIGHT)
    expected = authors_pi_reference(rule, *terms)
    assert dpk.prior_ratio(feat_s, feat_t) == pytest.approx(expected, abs=1e-9)
    out = dpk(feat_s, feat_t)
    assert out['dpk_pi.s3'].item() == pytest.approx(expected, abs=1e-6) and torch.isfinite(out['loss'])


# HSIC terms at the edges of each rule, where features cannot be made to land exactly.
@pytest.mark.parametrize('rule, terms, expected', [
    ('authors_imagenet', (4.0, 4.0, 4.0), 0.8),  # CKA exactly 1
    ('authors_imagenet', (1.0, 1.0, 100.0), 0.8),  # CKA exactly 0.1
    ('authors_imagenet', (-1.0, 1.0, 1.0), 0.8),  # negative CKA
    ('authors_imagenet', (1.0, -1.0, 1.0), 0.8),  # negative HSIC(K, K): NaN
    ('authors_imagenet', (0.5, 1.0, 1.0), 0.5),
    ('authors_imagenet', (0.95, 1.0, 1.0), 0.1),  # floor
    ('authors_cifar', (8.0, 4.0, 4.0), 0.9),  # CKA about 2
    ('authors_cifar', (0.05, 1.0, 1.0), 0.9),
    ('authors_cifar', (-0.5, 1.0, 1.0), None),  # |HSIC(K, L)|: 1 - 0.5
    ('authors_cifar', (0.9, 1.0, 1.0), 0.15),  # floor
    ('authors_detection', (0.0, float('inf'), 1.0), 0.85),  # pi = 1
    ('authors_detection', (4.0, 1.0, 1.0), 0.15),  # pi < 0
    ('authors_detection', (0.5, -1.0, -1.0), None),  # |HSIC| everywhere: 1 - 0.5
    ('authors_detection', (float('nan'), 1.0, 1.0), 0.5),
])
def test_authors_pi_branches_match_float64_reference(rule, terms, expected):
    dpk = DPKLoss(8, 8, pi_from=rule, **LIGHT)
    feat = torch.randn(8, 8, 2, 2)
    reference = authors_pi_reference(rule, *terms)
    if expected is not None:
        assert reference == pytest.approx(expected, abs=1e-4)
    returned = tuple(torch.tensor(term, dtype=torch.float64) for term in terms)
    with mock.patch('mmdistkd.models.losses.dpk_ratio.unbiased_hsic_terms', return_value=returned):
        assert dpk.prior_ratio(feat, feat) == pytest.approx(reference, abs=1e-12)


def test_authors_rule_warns_once_when_cka_is_undefined():
    dpk = DPKLoss(8, 8, pi_from='authors_detection', **LIGHT)
    with mock.patch('mmdistkd.models.losses.dpk.print_log') as warning:
        for _ in range(2):
            assert dpk(torch.randn(2, 8, 4, 4), torch.randn(2, 8, 4, 4))['dpk_pi.s3'].item() == 0.5
    assert warning.call_count == 1 and 'authors_detection' in warning.call_args.args[0]


def test_static_ratio_skips_cka():
    dpk = DPKLoss(8, 8, static_ratio=0.3, **LIGHT)
    with mock.patch('mmdistkd.models.losses.dpk.token_linear_cka') as cka:
        assert dpk(torch.randn(2, 8, 4, 4), torch.randn(2, 8, 4, 4))['dpk_pi.s3'].item() == pytest.approx(0.3)
    cka.assert_not_called()


def test_num_prior_tokens_keeps_one_token_of_each_side():
    dpk = DPKLoss(8, 8, min_tokens=4, **LIGHT)
    assert dpk.num_prior_tokens(0.5, 49) == 24
    assert dpk.num_prior_tokens(0.01, 49) == 4  # min_tokens
    assert dpk.num_prior_tokens(1.0, 49) == 48  # at least one student token
    assert dpk.num_prior_tokens(0.1, 3) == 2  # min_tokens capped at N - 1
    with pytest.raises(ValueError, match='single token'):
        dpk.num_prior_tokens(0.5, 1)


def test_mask_has_exactly_n_teacher_tokens_per_image():
    torch.manual_seed(0)
    mask = DPKLoss.random_prior_mask(5, 30, 7, 'cpu')
    assert mask.dtype == torch.bool and mask.shape == (5, 30)
    assert mask.sum(dim=1).tolist() == [7] * 5
    assert len({tuple(row.tolist()) for row in mask}) > 1  # drawn per image

    dpk = DPKLoss(8, 8, patch_size=2, static_ratio=0.5, min_tokens=1, **LIGHT)
    with mock.patch.object(dpk, 'generate', wraps=dpk.generate) as generate:
        dpk(torch.randn(3, 8, 7, 9), torch.randn(3, 8, 7, 9))  # 4 x 5 = 20 tokens
    prior_mask = generate.call_args.args[2]
    assert prior_mask.shape == (3, 20) and prior_mask.sum(dim=1).tolist() == [10] * 3


def test_full_teacher_prior_through_identity_path_reproduces_teacher():
    torch.manual_seed(0)
    dpk = DPKLoss(6, 16, embed_dims=16, encoder_depth=0, decoder_depth=0, num_heads=4)
    with torch.no_grad():
        dpk.teacher_embed.weight.copy_(torch.eye(16)[..., None, None])
        dpk.teacher_embed.bias.zero_()
        dpk.encoder_to_decoder.weight.copy_(torch.eye(16))
        dpk.head.weight.copy_(torch.eye(16))
        dpk.head.bias.zero_()
    feat_s, feat_t = torch.randn(2, 6, 5, 7), torch.randn(2, 16, 5, 7)
    generated = dpk.generate(feat_s, feat_t, torch.ones(2, 35, dtype=torch.bool))
    torch.testing.assert_close(generated, feat_t, atol=1e-5, rtol=0)


def test_separate_widths_depths_heads_and_one_bias_free_projection_for_both_sides():
    dpk = DPKLoss(6, 10, embed_dims=24, encoder_depth=3, num_heads=6, decoder_dims=40, decoder_depth=2,
                  decoder_heads=10, mlp_ratio=2)
    for encoder in (dpk.student_encoder, dpk.teacher_encoder):
        assert len(encoder.blocks) == 3 and encoder.blocks[0].attn.num_heads == 6
        assert encoder.blocks[0].attn.qkv.in_features == 24 and encoder.blocks[0].mlp[0].out_features == 48
    assert dpk.student_embed.out_channels == dpk.teacher_embed.out_channels == 24
    assert len(dpk.decoder.blocks) == 2 and dpk.decoder.blocks[0].attn.num_heads == 10
    assert dpk.decoder.blocks[0].attn.qkv.in_features == 40 and dpk.head.in_features == 40
    assert dpk.encoder_to_decoder.weight.shape == (40, 24) and dpk.encoder_to_decoder.bias is None
    assert not [name for name, _ in dpk.named_modules() if 'proj' in name and name != 'encoder_to_decoder'
                and not name.endswith('attn.proj')]

    # Identity embeddings and heads, no blocks: the projection places teacher and student tokens alike.
    dpk = DPKLoss(8, 8, embed_dims=8, encoder_depth=0, decoder_dims=16, decoder_depth=0, num_heads=2)
    with torch.no_grad():
        for embed in (dpk.student_embed, dpk.teacher_embed):
            embed.weight.copy_(torch.eye(8)[..., None, None])
            embed.bias.zero_()
        dpk.encoder_to_decoder.weight.copy_(torch.cat([torch.eye(8), torch.zeros(8, 8)]))
        dpk.head.weight.copy_(torch.cat([torch.eye(8), torch.zeros(8, 8)], dim=1))
        dpk.head.bias.zero_()
    feat_s, feat_t = torch.randn(2, 8, 3, 4), torch.randn(2, 8, 3, 4)
    mask = DPKLoss.random_prior_mask(2, 12, 5, 'cpu')
    expected = torch.where(mask.view(2, 1, 3, 4), feat_t, feat_s)
    torch.testing.assert_close(dpk.generate(feat_s, feat_t, mask), expected, atol=1e-5, rtol=0)


def test_position_embedding_is_row_major_with_row_quarters_first():
    """Float64 reference: token ``r * W + c`` holds ``[sin(r w), cos(r w), sin(c w), cos(c w)]`` with
    ``w_i = 10000^(-i / (D / 4))``, the order the token gathers and the fold back to ``(H, W)`` use."""
    grid_h, grid_w, dims = 3, 5, 8
    omega = 10000.0**(-torch.arange(dims // 4, dtype=torch.float64) / (dims // 4))
    expected = torch.stack([
        torch.cat([(r * omega).sin(), (r * omega).cos(), (c * omega).sin(), (c * omega).cos()])
        for r in range(grid_h) for c in range(grid_w)
    ])
    embed = sincos_pos_embed_2d(grid_h, grid_w, dims, 'cpu')
    assert embed.dtype == torch.float32
    torch.testing.assert_close(embed.double(), expected, atol=1e-6, rtol=0)


def test_generate_rejects_uneven_masks():
    dpk = DPKLoss(8, 8, **LIGHT)
    mask = torch.zeros(2, 16, dtype=torch.bool)
    mask[0, :3], mask[1, :4] = True, True
    with pytest.raises(ValueError, match='same number'):
        dpk.generate(torch.randn(2, 8, 4, 4), torch.randn(2, 8, 4, 4), mask)


@pytest.mark.parametrize('patch_size, size_s, size_t', [(1, (3, 4), (6, 8)), (2, (7, 5), (7, 5)), (4, (2, 5), (2, 5))])
def test_every_parameter_gets_a_finite_gradient(patch_size, size_s, size_t):
    torch.manual_seed(0)
    dpk = DPKLoss(6, 8, patch_size=patch_size, min_tokens=1, **LIGHT)
    feat_s = torch.randn(2, 6, *size_s, requires_grad=True)
    dpk(feat_s, torch.randn(2, 8, *size_t))['loss'].backward()
    for name, param in dpk.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name
    assert feat_s.grad is not None and feat_s.grad.abs().sum() > 0


def test_output_keys_and_built_from_registry():
    # Prefixed, as in configs: a default scope left by another package must not hide it.
    dpk = MODELS.build(dict(type='mmdistkd.DPKLoss', student_channels=8, teacher_channels=8, stage='p4',
                            loss_weight=0.5, **LIGHT))
    out = dpk(torch.randn(2, 8, 4, 4), torch.randn(2, 8, 4, 4))
    assert set(out) == {'loss', 'dpk_pi.p4'}
    assert out['loss'].dim() == 0 and out['dpk_pi.p4'].dim() == 0
    assert not out['dpk_pi.p4'].requires_grad
    with pytest.raises(ValueError, match='loss'):
        DPKLoss(8, 8, stage='loss_s3', **LIGHT)


def test_loss_is_weighted_error_of_generated_map():
    torch.manual_seed(0)
    feat_s, feat_t = torch.randn(2, 8, 4, 4), torch.randn(2, 8, 4, 4)
    for feature_loss, error in (('mse', F.mse_loss), ('l1', F.l1_loss)):
        dpk = DPKLoss(8, 8, static_ratio=0.25, feature_loss=feature_loss, loss_weight=0.2, **LIGHT)
        torch.manual_seed(1)
        loss = dpk(feat_s, feat_t)['loss']
        torch.manual_seed(1)
        mask = dpk.random_prior_mask(2, 16, 4, 'cpu')
        torch.testing.assert_close(loss, 0.2 * error(dpk.generate(feat_s, feat_t, mask), feat_t))


def test_fp32_under_bf16_autocast():
    torch.manual_seed(0)
    dpk = DPKLoss(6, 8, **LIGHT)
    feat_s, feat_t = torch.randn(2, 6, 4, 4), torch.randn(2, 8, 4, 4)
    torch.manual_seed(1)
    expected = dpk(feat_s, feat_t)
    torch.manual_seed(1)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = dpk(feat_s.bfloat16(), feat_t.bfloat16())
    assert out['loss'].dtype == torch.float32 and out['dpk_pi.s3'].dtype == torch.float32
    # Only the bf16 rounding of the inputs differs.
    torch.testing.assert_close(out['loss'], expected['loss'], rtol=2e-2, atol=0)


def test_odd_sizes_are_padded_and_cropped():
    torch.manual_seed(0)
    dpk = DPKLoss(6, 8, patch_size=3, **LIGHT)
    feat_s, feat_t = torch.randn(2, 6, 5, 7), torch.randn(2, 8, 5, 7)
    assert dpk.token_grid(5, 7) == (2, 3)
    generated = dpk.generate(feat_s, feat_t, dpk.random_prior_mask(2, 6, 2, 'cpu'))
    assert generated.shape == feat_t.shape
    assert torch.isfinite(dpk(feat_s, feat_t)['loss'])


def det_samples(batch, size):
    return synthetic_batch('det', batch, size, size, 3)['data_samples']


def test_generated_map_goes_into_fgd_with_the_data_samples():
    torch.manual_seed(0)
    fgd = dict(type='FGDLoss', in_channels=8, temp=0.5, alpha_fgd=2e-3, beta_fgd=2e-4, gamma_fgd=3e-4,
               lambda_fgd=5e-6)
    dpk = DPKLoss(6, 8, static_ratio=0.5, min_tokens=1, feature_loss=fgd, loss_weight=0.5, **LIGHT)
    assert isinstance(dpk.feature_loss, FGDLoss)
    fgd_params = {id(p) for p in dpk.feature_loss.parameters()}
    assert fgd_params and fgd_params <= {id(p) for p in dpk.parameters()}  # trained with the DPK modules

    feat_s, feat_t = torch.randn(2, 6, 8, 8, requires_grad=True), torch.randn(2, 8, 8, 8)
    samples = det_samples(2, 64)
    torch.manual_seed(1)
    out = dpk(feat_s, feat_t, data_samples=samples)
    torch.manual_seed(1)
    generated = dpk.generate(feat_s, feat_t, dpk.random_prior_mask(2, 64, 32, 'cpu'))
    torch.testing.assert_close(out['loss'], 0.5 * dpk.feature_loss(generated, feat_t, samples))
    out['loss'].backward()
    assert all(p.grad is not None for p in dpk.feature_loss.parameters() if p.requires_grad)
    assert feat_s.grad.abs().sum() > 0
    with pytest.raises(ValueError, match='data samples'):
        dpk(feat_s, feat_t)


def test_data_samples_reach_only_a_feature_loss_that_takes_them():
    assert DPKLoss.takes_data_samples is True
    assert inspect.signature(DPKLoss.forward).parameters['data_samples'].default is None
    torch.manual_seed(0)
    dpk = DPKLoss(8, 8, static_ratio=0.5, **LIGHT)
    feat_s, feat_t = torch.randn(2, 8, 4, 4), torch.randn(2, 8, 4, 4)
    torch.manual_seed(1)
    with_samples = dpk(feat_s, feat_t, data_samples=det_samples(2, 32))['loss']
    torch.manual_seed(1)
    torch.testing.assert_close(with_samples, dpk(feat_s, feat_t)['loss'])


def test_invalid_arguments_are_rejected():
    with pytest.raises(ValueError, match='divisible'):
        DPKLoss(8, 8, embed_dims=18, num_heads=2)
    with pytest.raises(ValueError, match='decoder_dims'):
        DPKLoss(8, 8, embed_dims=16, decoder_dims=20, num_heads=2, decoder_heads=8)
    with pytest.raises(ValueError, match='pi_from'):
        DPKLoss(8, 8, pi_from='batch', **LIGHT)
    with pytest.raises(ValueError, match='pi_range applies'):
        DPKLoss(8, 8, pi_from='authors_cifar', pi_range=(0.1, 0.9), **LIGHT)
    with pytest.raises(ValueError, match='feature_loss'):
        DPKLoss(8, 8, feature_loss='smooth_l1', **LIGHT)
    with pytest.raises(ValueError, match='min_tokens'):
        DPKLoss(8, 8, min_tokens=0, **LIGHT)
    with pytest.raises(ValueError, match='norm_eps must be positive'):
        DPKLoss(8, 8, norm_eps=0, **LIGHT)
