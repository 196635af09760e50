"""DPK's token transformer: fixed 2-D sin-cos position embeddings and pre-norm transformer blocks, the encoders
and decoder of ``DPKLoss`` (:mod:`.dpk`). Sizes follow the DPK authors' modules (zongdaoming/dpk @7f66025)."""
import functools

import torch.nn.functional as F
from torch import nn


def sincos_pos_embed_2d(grid_h, grid_w, dims, device):
    """Fixed 2-D sin-cos position embedding as in MAE, ``(grid_h * grid_w, dims)`` in row-major token
    order, channels ``[sin(row), cos(row), sin(col), cos(col)]`` (a quarter each).

    mmpretrain's builder, given ``(h, w)``, lays tokens out column-major with the column quarters first
    (its meshgrid runs over ``(w, h)``); given ``(grid_w, grid_h)`` it gives exactly the layout above, which
    the token gathers and the fold back to ``(H, W)`` rely on."""
    return _cpu_sincos_pos_embed_2d(grid_h, grid_w, dims).to(device, copy=True)


@functools.lru_cache(maxsize=64)
def _cpu_sincos_pos_embed_2d(grid_h, grid_w, dims):
    """Built once per grid and width: a training run sees a handful of grids."""
    # Imported here: mmpretrain.models imports every mmpretrain model, which detection and segmentation
    # runs do not otherwise need at import time.
    from mmpretrain.models.utils import build_2d_sincos_position_embedding
    return build_2d_sincos_position_embedding((grid_w, grid_h), dims)[0]


class SelfAttention(nn.Module):
    """Multi-head self-attention over ``(B, N, C)`` tokens with fused scaled dot-product attention."""

    def __init__(self, dims, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dims, 3 * dims)
        self.proj = nn.Linear(dims, dims)

    def forward(self, tokens):
        batch, num_tokens, dims = tokens.shape
        qkv = self.qkv(tokens).reshape(batch, num_tokens, 3, self.num_heads, dims // self.num_heads)
        query, key, value = qkv.permute(2, 0, 3, 1, 4)
        attended = F.scaled_dot_product_attention(query, key, value)
        return self.proj(attended.transpose(1, 2).reshape(batch, num_tokens, dims))


class TransformerBlock(nn.Module):
    """Pre-norm transformer block: attention and MLP, each on a residual branch."""

    def __init__(self, dims, num_heads, mlp_ratio, norm_eps):
        super().__init__()
        self.norm1 = nn.LayerNorm(dims, eps=norm_eps)
        self.attn = SelfAttention(dims, num_heads)
        self.norm2 = nn.LayerNorm(dims, eps=norm_eps)
        hidden = int(dims * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dims, hidden), nn.GELU(), nn.Linear(hidden, dims))

    def forward(self, tokens):
        tokens = tokens + self.attn(self.norm1(tokens))
        return tokens + self.mlp(self.norm2(tokens))


class TokenTransformer(nn.Module):
    """A stack of pre-norm blocks with a final LayerNorm; the position embedding is added at its input.

    Depth 0 is the identity: without attention, position does not matter.
    """

    def __init__(self, dims, depth, num_heads, mlp_ratio, norm_eps):
        super().__init__()
        self.blocks = nn.ModuleList(TransformerBlock(dims, num_heads, mlp_ratio, norm_eps) for _ in range(depth))
        self.norm = nn.LayerNorm(dims, eps=norm_eps) if depth else nn.Identity()

    def forward(self, tokens, pos_embed):
        if not self.blocks:
            return tokens
        tokens = tokens + pos_embed
        for block in self.blocks:
            tokens = block(tokens)
        return self.norm(tokens)


def take_tokens(tokens, ids):
    """``tokens (B, N, C)`` at the positions ``ids (B, K)`` of each image: ``(B, K, C)``."""
    return tokens.gather(1, ids[..., None].expand(-1, -1, tokens.shape[-1]))
