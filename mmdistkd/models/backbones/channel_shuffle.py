"""ShuffleNet's channel shuffle. The same as ``mmpretrain.models.utils.channel_shuffle``, kept here because importing
that loads every mmpretrain model at ``import mmdistkd``, which detection and segmentation users do not need."""


def channel_shuffle(x, groups):
    """``(N, C, H, W)``: interleaves the channels of ``groups`` equal groups (channel ``g * C/groups + i``
    moves to ``i * groups + g``), so that the next grouped conv sees channels of every group."""
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)
