"""Stops a run whose loss stays non-finite, saying which loss went first.

A diverged run (too high a learning rate, a broken teacher) otherwise trains on with ``loss: nan`` in every log
line and ends with exit code 0; its weights are NaN. A few non-finite steps can be harmless under a dynamic loss
scale (the scaler skips them), so only a streak stops the run.
"""
import math

import torch
from mmengine.hooks import Hook

from mmdistkd.registry import HOOKS


def non_finite_entries(log_vars):
    """Keys of the logged values that are not finite."""
    return [key for key, value in (log_vars or {}).items()
            if not (torch.isfinite(value).all() if torch.is_tensor(value) else math.isfinite(float(value)))]


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Raises when the logged losses have been non-finite for ``patience`` consecutive training iterations.

    Args:
        patience (int): consecutive non-finite iterations tolerated (e.g. loss-scale overflows under ``--amp``).
    """

    priority = 'ABOVE_NORMAL'

    def __init__(self, patience=20):
        if not isinstance(patience, int) or patience < 1:
            raise ValueError(f'NonFiniteLossHook patience must be a positive int, got {patience!r}')
        self.patience = patience
        self.streak = 0
        self.first = None

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        losses = {key: value for key, value in (outputs or {}).items() if 'loss' in key}
        bad = non_finite_entries(losses)
        if not bad:
            self.streak, self.first = 0, None
            return
        if self.first is None:
            # The total 'loss' goes with any of its parts: name the parts that went first.
            parts = [key for key in bad if key != 'loss'] or bad
            values = ', '.join(f'{key}={float(torch.as_tensor(losses[key]).detach().mean()):g}' for key in parts)
            self.first = (runner.iter, values)
        self.streak += 1
        if self.streak >= self.patience:
            start, values = self.first
            raise RuntimeError(
                f'The loss has not been finite for {self.streak} consecutive iterations (since iteration '
                f'{start + 1}, where {values} went first); the weights are no longer usable and nothing is '
                'exported. Lower the learning rate or add gradient clipping (optim_wrapper.clip_grad), check the '
                'teacher checkpoint and the distillation loss weights, and resume from a checkpoint saved before '
                'that iteration.')
