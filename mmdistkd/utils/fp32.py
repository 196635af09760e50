"""Losses compute in fp32, also under autocast: Pearson correlations and KL on fp16 probabilities lose
almost every significant digit."""
import functools

import torch


def fp32(tensor):
    """``tensor`` as float32 (a no-op for float32 tensors); non-tensors pass through."""
    return tensor.float() if torch.is_tensor(tensor) and tensor.is_floating_point() else tensor


def fp32_forward(forward):
    """Decorates a loss ``forward``: autocast is switched off inside, and every floating tensor argument
    (also inside lists and tuples) is cast to float32."""

    def cast(value):
        if isinstance(value, (list, tuple)):
            return type(value)(cast(v) for v in value)
        return fp32(value)

    @functools.wraps(forward)
    def wrapper(self, *args, **kwargs):
        device_type = 'cuda' if torch.cuda.is_available() and torch.is_autocast_enabled('cuda') else 'cpu'
        with torch.autocast(device_type=device_type, enabled=False):
            return forward(self, *(cast(a) for a in args), **{k: cast(v) for k, v in kwargs.items()})

    return wrapper
