"""DPK: Dynamic Prior Knowledge distillation (Qiu et al., ICLR 2023), one module per distilled stage.

Part of the teacher's feature is given to the student as input ("prior knowledge"): both maps are
tokenised, a random share ``pi`` of the token positions is taken from the teacher and the rest from
the student, and a transformer decoder must regenerate the whole teacher map from this hybrid. The
share follows the feature gap, ``pi = 1 - CKA(Fs, Ft)``, so it shrinks as the student catches up.

Pipeline for ``Fs (B, Cs, h, w)`` and ``Ft (B, Ct, H, W)``:

1. ``Fs`` is resized bilinearly to ``H x W`` if needed (``align_corners``, below). If ``H`` or ``W`` is not
   a multiple of the patch size, both maps are zero-padded at the bottom / right to the next multiple and the
   generated map is cropped back, so the loss only covers real positions.
2. ``pi`` (no gradient) by the rule ``pi_from`` (below).
3. ``n = clamp(floor(pi * N), min_tokens, N - 1)`` of the ``N`` tokens are drawn per image as prior.
   The cap at ``N - 1`` keeps at least one student token, the floor of ``min_tokens >= 1`` at least
   one teacher token: both sides' embeddings and encoders then get a gradient every step, which DDP
   without ``find_unused_parameters`` requires (and a hybrid with no student token would not train
   the student at all). A map of a single token cannot hold both and is rejected.
4. Patch embedding per side (conv, kernel = stride = patch size) to ``embed_dims``, then a transformer
   encoder per side over the tokens that side contributes (the teacher encoder sees only the ``n`` prior
   tokens, so ``pi`` bounds how much of the teacher enters), with fixed 2-D sin-cos position embeddings
   (the authors': a 1-D table over the token index).
5. The encoded tokens are put back at their positions (no learnable mask token), projected to
   ``decoder_dims`` by one bias-free linear layer shared by both sides (the authors'
   ``encoder_to_decoder``), decoded by a transformer over all ``N`` tokens, and a linear head predicts
   ``Ct * p * p`` values per token, folded back to ``F_hat (B, Ct, H, W)``.
6. ``loss = loss_weight * feature_loss(F_hat, Ft)`` with the teacher detached: MSE (the authors'
   classification loss), L1, or any registered loss given as a config, e.g. ``FGDLoss`` for detection as
   the authors did. Such a loss gets the batch's data samples (ground truth) when it declares
   ``takes_data_samples``; DPKLoss itself always accepts them and passes them on only then.

The prior ratio, ``pi_from``:

- ``'tokens'`` (ours): linear CKA with the spatial positions of all images as samples (see :mod:`.cka`),
  ``pi = 1 - CKA`` clipped to ``pi_range``; the middle of the range while CKA is not finite.
- ``'authors_imagenet'``: the authors' unbiased batch CKA (images as samples); NaN, CKA <= 0.1 or CKA >= 1
  give 0.8, else ``max(1 - CKA, 0.1)``.
- ``'authors_cifar'``: ``CKA = (|HSIC(K,L)| + 1e-5) / (sqrt(HSIC(K,K) + 1e-5) sqrt(HSIC(L,L) + 1e-5))``;
  NaN, <= 0.1 or >= 1 give 0.9, else ``max(1 - CKA, 0.15)``.
- ``'authors_detection'``: ``pi = 1 - (|HSIC(K,L)| + 1e-5) / sqrt((|HSIC(K,K)| + 1e-5)(|HSIC(L,L)| + 1e-5))``;
  NaN gives 0.5, ``pi >= 1`` 0.85, ``pi <= 0`` 0.15.

A non-finite CKA is warned about once per module (the authors' code fell back silently).

Why detection and segmentation keep ``'tokens'``: the unbiased batch estimator is undefined below 4 images,
and detection and segmentation train at 2 images per GPU. Measured (docs/experiments/dpk_batch_cka.py, the
demo RetinaNets' FPN levels P3-P7 on demo images, 20 batches per size): at 2 images the batch CKA is NaN in
every batch at every level, so the authors' detection rule gives ``pi = 0.5`` on every step, for matched
and for mismatched student / teacher pairs alike: ``pi`` does not move at all (the authors' own COCO runs
trained so). The token estimator gives a ratio that follows the pair at 2 images (numbers in docs/dpk.md).
Classification configs with at least 4 images per GPU (ImageNet 32, CIFAR-100 64, the demo 16) use the
authors' rule of their task.

Settings (the authors' module sizes per pair are in the configs and docs/dpk.md):

- ``embed_dims`` is the token width of both encoders (one value, as the authors': their projection to
  the decoder is shared by both sides), ``decoder_dims`` the decoder's; depths and heads likewise apart.
- Depth 0 is allowed: that encoder or decoder is the identity.
- ``configs/_base_/dpk_light.py``: one block each, 128-wide tokens, 4 heads, for quick runs.

Two settings where the authors' tasks differ (zongdaoming/dpk @7f66025):

- ``align_corners`` of the bilinear resize of ``Fs``: their CIFAR loops resize the student's stage with
  ``align_corners=True`` (``classification/engine.py``, ``train_cifar_one_epoch`` and ``train_cifar_two_epoch``);
  their ImageNet loops and their detector never resize (same-size ResNet stages, FPN levels). Default False;
  True reproduces the authors' CIFAR resize (it matters where the student's map is smaller, e.g. ShuffleNetV1's
  and MobileNetV2's stages on CIFAR).
- ``norm_eps`` of every LayerNorm of the DPK modules: 1e-6 in all their classification modules
  (``classification/modeling_pretrain.py``: each registered module passes ``partial(nn.LayerNorm, eps=1e-6)``),
  PyTorch's 1e-5 in their detection module (``detection/mmdet/models/backbones/mae.py``, class ``MAE``:
  ``norm_layer=nn.LayerNorm``, which ``detection/configs/distillers/dpk/dpk_*_cfg.py`` leave as it is).
  Default 1e-5.
"""
import hashlib
import logging
import math

import torch
import torch.nn.functional as F
from mmengine.dist import get_dist_info
from mmengine.logging import MessageHub, print_log
from torch import nn

from mmdistkd.registry import MODELS, build_in_mmdistkd_scope

from .base import DistillLoss
from .cka import token_linear_cka
from .dpk_ratio import AUTHORS_RATIOS, DEFAULT_PI_RANGE
from .dpk_transformer import TokenTransformer, sincos_pos_embed_2d, take_tokens


@MODELS.register_module()
class DPKLoss(DistillLoss):
    """DPK feature distillation for one stage (see the module docstring for the method and settings).

    Args:
        student_channels (int): Channels of the student feature map.
        teacher_channels (int): Channels of the teacher feature map (the generated map's channels).
        patch_size (int): Kernel and stride of the patch embeddings; keeps the token count moderate
            on large maps (attention is quadratic in it).
        embed_dims (int, optional): Token width of both encoders; default ``teacher_channels``. Must be
            divisible by 4 (sin-cos embedding) and by ``num_heads``.
        encoder_depth (int): Blocks of each side's encoder (0: identity).
        num_heads (int): Attention heads of the encoders.
        decoder_dims (int, optional): Token width of the decoder; default ``embed_dims``. Must be
            divisible by 4 and by ``decoder_heads``.
        decoder_depth (int): Blocks of the decoder (0: identity).
        decoder_heads (int, optional): Attention heads of the decoder; default ``num_heads``.
        mlp_ratio (float): Hidden width of the MLPs relative to their token width.
        norm_eps (float): Epsilon of every LayerNorm of the encoders and the decoder: 1e-5 (default; the authors'
            detection module) or 1e-6 (the authors' classification modules); module docstring.
        align_corners (bool): ``align_corners`` of the bilinear resize of a student map whose size differs from
            the teacher's: False (default) or True (the authors' CIFAR loops); module docstring.
        pi_from (str): The prior-ratio rule: ``'tokens'``, ``'authors_imagenet'``, ``'authors_cifar'`` or
            ``'authors_detection'`` (module docstring).
        pi_range (tuple[float, float], optional): Clip range of ``1 - CKA`` with ``pi_from='tokens'``
            (default ``(0.1, 0.85)``); the authors' rules have their own bounds and refuse it.
        static_ratio (float, optional): A fixed prior ratio instead of the dynamic one (ablations).
        min_tokens (int): Least number of teacher tokens per image (at least 1; the authors': 4 on
            ImageNet, 2 on CIFAR, 40 in detection).
        feature_loss (str | dict): Compares the generated and the teacher map: ``'mse'`` (authors'
            classification), ``'l1'``, or the config of a registered loss called as
            ``loss(generated, teacher)``, plus ``data_samples=`` when it declares ``takes_data_samples``
            (e.g. ``dict(type='FGDLoss', in_channels=256, ...)``). A tensor result, or a dict's ``'loss'``.
        loss_weight (float): Weight of the loss.
        stage (str): Name of the stage; the ratio is returned as ``'dpk_pi.<stage>'``.

    ``forward(preds_S, preds_T, data_samples=None)`` returns ``{'loss': ..., 'dpk_pi.<stage>': ...}`` (plus
    the feature loss's extra keys). The teacher feature is always detached: it is the generation target
    and the prior, never trained through this loss.
    """

    teacher_inputs = ('preds_T',)
    takes_data_samples = True

    _ERRORS = {'mse': F.mse_loss, 'l1': F.l1_loss}
    PI_RULES = ('tokens', *AUTHORS_RATIOS)

    def __init__(self,
                 student_channels,
                 teacher_channels,
                 patch_size=1,
                 embed_dims=None,
                 encoder_depth=6,
                 num_heads=8,
                 decoder_dims=None,
                 decoder_depth=4,
                 decoder_heads=None,
                 mlp_ratio=4,
                 norm_eps=1e-5,
                 align_corners=False,
                 pi_from='tokens',
                 pi_range=None,
                 static_ratio=None,
                 min_tokens=4,
                 feature_loss='mse',
                 loss_weight=1.0,
                 stage='s3'):
        super().__init__()
        embed_dims = embed_dims or teacher_channels
        decoder_dims = decoder_dims or embed_dims
        decoder_heads = decoder_heads or num_heads
        for name, dims, heads in (('embed_dims', embed_dims, num_heads), ('decoder_dims', decoder_dims,
                                                                           decoder_heads)):
            if dims % 4 or dims % heads:
                raise ValueError(f'{name} ({dims}) must be divisible by 4 (sin-cos position embedding) and by '
                                 f'its number of heads ({heads})')
        if pi_from not in self.PI_RULES:
            raise ValueError(f'pi_from must be one of {self.PI_RULES}, got {pi_from!r}')
        if pi_range is not None and pi_from != 'tokens':
            raise ValueError(f'pi_range applies to pi_from="tokens" only; the rule {pi_from!r} has the authors\' '
                             'bounds: remove pi_range')
        pi_range = tuple(pi_range or DEFAULT_PI_RANGE)
        if not 0 <= pi_range[0] <= pi_range[1] <= 1:
            raise ValueError(f'pi_range must satisfy 0 <= low <= high <= 1, got {pi_range}')
        if static_ratio is not None and not 0 <= static_ratio <= 1:
            raise ValueError(f'static_ratio must lie in [0, 1], got {static_ratio}')
        if min_tokens < 1:
            raise ValueError(f'min_tokens must be at least 1, got {min_tokens}')
        if not norm_eps > 0:
            raise ValueError(f'norm_eps must be positive (1e-5, or 1e-6 as in the authors\' classification '
                             f'modules), got {norm_eps}')
        self.ratio_key = f'dpk_pi.{stage}'
        if 'loss' in self.ratio_key:
            raise ValueError(f'stage must not contain "loss" (mmengine would sum the ratio), got {stage!r}')

        self.teacher_channels = teacher_channels
        self.patch_size = patch_size
        self.embed_dims = embed_dims
        self.decoder_dims = decoder_dims
        self.pi_from = pi_from
        self.pi_range = pi_range
        self.static_ratio = static_ratio
        self.min_tokens = min_tokens
        self.loss_weight = loss_weight
        self.align_corners = align_corners
        self._warned_nonfinite_cka = False

        self.student_embed = nn.Conv2d(student_channels, embed_dims, patch_size, stride=patch_size)
        self.teacher_embed = nn.Conv2d(teacher_channels, embed_dims, patch_size, stride=patch_size)
        self.student_encoder = TokenTransformer(embed_dims, encoder_depth, num_heads, mlp_ratio, norm_eps)
        self.teacher_encoder = TokenTransformer(embed_dims, encoder_depth, num_heads, mlp_ratio, norm_eps)
        self.encoder_to_decoder = nn.Linear(embed_dims, decoder_dims, bias=False)
        self.decoder = TokenTransformer(decoder_dims, decoder_depth, decoder_heads, mlp_ratio, norm_eps)
        self.head = nn.Linear(decoder_dims, teacher_channels * patch_size * patch_size)
        self.apply(self._init_weights)
        # Built after the initialisation above: a loss module keeps its own (FGD zero-initialises convs).
        self.feature_loss = self._build_feature_loss(feature_loss)

    @classmethod
    def _build_feature_loss(cls, feature_loss):
        if isinstance(feature_loss, str):
            if feature_loss not in cls._ERRORS:
                raise ValueError(f'feature_loss must be one of {sorted(cls._ERRORS)} or a loss config dict, '
                                 f'got {feature_loss!r}')
            return cls._ERRORS[feature_loss]
        # A 'mmdet.' prefix still reaches mmdet.
        return build_in_mmdistkd_scope(feature_loss)

    @staticmethod
    def _init_weights(module):
        # MAE's initialisation: xavier-uniform for linear layers and patch projections (seen as linear).
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            nn.init.xavier_uniform_(module.weight.view(module.weight.shape[0], -1))
            if module.bias is not None:
                nn.init.zeros_(module.bias)

    def token_grid(self, height, width):
        """Token rows and columns of a ``height x width`` map (padded up to multiples of the patch)."""
        return math.ceil(height / self.patch_size), math.ceil(width / self.patch_size)

    def prior_ratio(self, feat_s, feat_t):
        """The share ``pi`` of teacher tokens, a Python float: ``static_ratio`` if set, else the rule
        ``pi_from`` (module docstring)."""
        if self.static_ratio is not None:
            return float(self.static_ratio)
        if self.pi_from == 'tokens':
            cka = float(token_linear_cka(feat_s, feat_t))
            low, high = self.pi_range
            ratio = (low + high) / 2 if not math.isfinite(cka) else min(max(1 - cka, low), high)
        else:
            ratio, cka = AUTHORS_RATIOS[self.pi_from](feat_s, feat_t)
        if not math.isfinite(cka) and not self._warned_nonfinite_cka:
            print_log(f'DPK {self.ratio_key}: CKA is not finite (constant features, or fewer than 4 images with '
                      f'pi_from={self.pi_from!r}); using pi = {ratio} while it is not finite (warned once)',
                      logger='current', level=logging.WARNING)
            self._warned_nonfinite_cka = True
        return ratio

    def num_prior_tokens(self, ratio, num_tokens):
        """``clamp(floor(ratio * N), min_tokens, N - 1)``: at least one token from each side."""
        if num_tokens < 2:
            raise ValueError(f'DPK {self.ratio_key}: the feature map gives a single token, which cannot '
                             'hold both a teacher and a student token; use a smaller patch_size')
        return min(max(math.floor(ratio * num_tokens), self.min_tokens), num_tokens - 1)

    @staticmethod
    def random_prior_mask(batch, num_tokens, num_prior, device, generator=None):
        """``(B, N)`` boolean mask, True at exactly ``num_prior`` random positions per image, drawn from
        ``generator`` (a CPU one) or else from the global random state of ``device``."""
        scores = torch.rand(batch, num_tokens, generator=generator, device='cpu' if generator is not None else device)
        prior_ids = scores.argsort(dim=1)[:, :num_prior].to(device)
        return torch.zeros(batch, num_tokens, dtype=torch.bool, device=device).scatter_(1, prior_ids, True)

    def mask_generator(self):
        """In a Runner's training loop, a generator seeded from the run's seed, the iteration, the rank and the
        stage: a resumed run draws the masks of an uninterrupted one (the global random state is not in
        checkpoints), and ranks, whose images differ, draw masks of their own. Outside a training loop there
        is no iteration to seed from: None, the global random state."""
        message_hub = MessageHub.get_current_instance()
        if message_hub.get_info('loop_stage') != 'train':
            return None
        # torch.initial_seed() is the seed the Runner set (and set again from the checkpoint on resume).
        key = f'{torch.initial_seed()}/{message_hub.get_info("iter")}/{get_dist_info()[0]}/{self.ratio_key}'
        return torch.Generator().manual_seed(int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], 'little'))

    def generate(self, feat_s, feat_t, prior_mask):
        """The generated teacher map ``F_hat (B, Ct, H, W)`` from ``feat_s (B, Cs, H, W)`` and
        ``feat_t (B, Ct, H, W)`` (same size), taking the teacher's token where ``prior_mask (B, N)``
        is True. Every image must have the same number of True entries; a mask that is all True or all
        False leaves one encoder without tokens, which only depth 0 handles (``forward`` never does)."""
        batch, _, height, width = feat_t.shape
        grid_h, grid_w = self.token_grid(height, width)
        counts = prior_mask.sum(dim=1)
        if (counts != counts[0]).any():
            raise ValueError('prior_mask must select the same number of teacher tokens in every image')
        num_prior = int(counts[0])

        padding = (0, grid_w * self.patch_size - width, 0, grid_h * self.patch_size - height)
        tokens_s = self.student_embed(F.pad(feat_s, padding)).flatten(2).transpose(1, 2)
        tokens_t = self.teacher_embed(F.pad(feat_t, padding)).flatten(2).transpose(1, 2)
        # Computed per call: it is cheap, and detection inputs come in many sizes.
        pos_encoder = sincos_pos_embed_2d(grid_h, grid_w, self.embed_dims, feat_t.device).expand(batch, -1, -1)
        pos_decoder = sincos_pos_embed_2d(grid_h, grid_w, self.decoder_dims, feat_t.device).expand(batch, -1, -1)

        # Stable sort puts each image's prior positions first, then its student positions.
        order = prior_mask.to(torch.uint8).argsort(dim=1, descending=True, stable=True)
        prior_ids, student_ids = order[:, :num_prior], order[:, num_prior:]
        encoded_t = self.teacher_encoder(take_tokens(tokens_t, prior_ids), take_tokens(pos_encoder, prior_ids))
        encoded_s = self.student_encoder(
            take_tokens(tokens_s, student_ids), take_tokens(pos_encoder, student_ids))
        hybrid = take_tokens(torch.cat([encoded_t, encoded_s], dim=1), order.argsort(dim=1))

        patches = self.head(self.decoder(self.encoder_to_decoder(hybrid), pos_decoder))
        p = self.patch_size
        generated = patches.reshape(batch, grid_h, grid_w, self.teacher_channels, p, p)
        generated = generated.permute(0, 3, 1, 4, 2, 5).reshape(batch, self.teacher_channels, grid_h * p, grid_w * p)
        return generated[:, :, :height, :width]

    def compare(self, generated, feat_t, data_samples):
        """``feature_loss(generated, feat_t)`` as a dict with ``'loss'``, ``data_samples`` passed on only to
        a loss that declares ``takes_data_samples``."""
        if getattr(self.feature_loss, 'takes_data_samples', False):
            result = self.feature_loss(generated, feat_t, data_samples=data_samples)
        else:
            result = self.feature_loss(generated, feat_t)
        return dict(result) if isinstance(result, dict) else {'loss': result}

    def forward(self, preds_S, preds_T, data_samples=None):
        feat_t = preds_T
        batch, _, height, width = feat_t.shape
        feat_s = preds_S
        if feat_s.shape[-2:] != feat_t.shape[-2:]:
            feat_s = F.interpolate(feat_s, size=(height, width), mode='bilinear', align_corners=self.align_corners)

        ratio = self.prior_ratio(feat_s, feat_t)
        num_tokens = math.prod(self.token_grid(height, width))
        prior_mask = self.random_prior_mask(batch, num_tokens, self.num_prior_tokens(ratio, num_tokens),
                                            feat_t.device, self.mask_generator())
        out = self.compare(self.generate(feat_s, feat_t, prior_mask), feat_t, data_samples)
        out['loss'] = self.loss_weight * out['loss']
        out[self.ratio_key] = feat_t.new_tensor(ratio)
        return out
