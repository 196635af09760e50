"""A linear warm-up over the first part of the schedule, then cosine annealing to its end, as one scheduler whose
boundary follows the schedule's length: the DPK modules' schedule in configs whose student sets the length
(``configs/_base_/recipes/dpk_modules_adamw.py``)."""
from fractions import Fraction

from mmengine.optim.scheduler import CosineAnnealingLR, LinearLR
from mmengine.optim.scheduler.param_scheduler import INF

from mmdistkd.registry import PARAM_SCHEDULERS


def warmup_end(begin, end, warmup_ratio):
    """The step where the warm-up ends: ``warmup_ratio`` of ``[begin, end)``, rounded down (exact decimal share:
    ``24 x 0.2`` gives 4, as ``24 // 5``, whatever the binary rounding of 0.2), at least one step; None when the
    schedule is too short for a warm-up and a cosine step."""
    boundary = max(begin + int((end - begin) * Fraction(str(warmup_ratio))), begin + 1)
    return boundary if boundary < end else None


@PARAM_SCHEDULERS.register_module()
class LinearWarmupCosineLR:
    """mmengine's ``LinearLR`` (from ``start_factor`` x the learning rate up to it) over the first
    ``warmup_ratio`` of ``[begin, end)``, then its ``CosineAnnealingLR`` down to ``eta_min`` at ``end``: the same
    two schedulers, built and stepped in that order, as a config listing them with the boundary written out, e.g.
    ``end=max_epochs // 5`` and ``begin=max_epochs // 5`` for ``warmup_ratio=0.2``. Leave ``end`` out: mmengine's
    Runner sets it to the train loop's max epochs (or iterations, ``by_epoch=False``), so a config need not read
    its student's schedule. With ``convert_to_iter_based`` the boundary is a whole epoch, as two epoch-based
    schedulers would have it, unless the schedule has too few epochs for that (a short trial run): then it is
    taken in iterations. Each part has at least one step.
    """

    def __init__(self, optimizer, warmup_ratio, start_factor, eta_min=0.0, begin=0, end=INF, by_epoch=True,
                 epoch_length=None, verbose=False):
        if end == INF:
            raise ValueError('LinearWarmupCosineLR needs the schedule\'s end: leave `end` out of a param_scheduler '
                             'that the Runner builds for training (it sets the max epochs or iterations), or give it')
        if not 0 < warmup_ratio < 1:
            raise ValueError(f'LinearWarmupCosineLR: warmup_ratio is the warm-up\'s share of the schedule, between 0 '
                             f'and 1 (exclusive), got {warmup_ratio}')
        boundary = warmup_end(begin, end, warmup_ratio)
        if epoch_length is not None:  # convert_to_iter_based, as mmengine's build_iter_from_epoch converts
            by_epoch = False
            begin, end = int(begin * epoch_length), int(end * epoch_length)
            boundary = boundary * epoch_length if boundary is not None else warmup_end(begin, end, warmup_ratio)
        if boundary is None:
            raise ValueError(f'LinearWarmupCosineLR: a schedule of {end - begin} '
                             f'{"epochs" if by_epoch else "iterations"} is too short for a warm-up and a cosine step')
        self.warmup = LinearLR(optimizer, start_factor=start_factor, begin=begin, end=boundary, by_epoch=by_epoch,
                               verbose=verbose)
        self.cosine = CosineAnnealingLR(optimizer, eta_min=eta_min, begin=boundary, end=end, by_epoch=by_epoch,
                                        verbose=verbose)
        self.by_epoch = by_epoch

    @classmethod
    def build_iter_from_epoch(cls, *args, epoch_length, **kwargs):
        """mmengine's builder calls this for ``convert_to_iter_based=True``."""
        return cls(*args, epoch_length=epoch_length, **kwargs)

    def step(self):
        self.warmup.step()
        self.cosine.step()

    def state_dict(self):
        return dict(warmup=self.warmup.state_dict(), cosine=self.cosine.state_dict())

    def load_state_dict(self, state_dict):
        self.warmup.load_state_dict(state_dict['warmup'])
        self.cosine.load_state_dict(state_dict['cosine'])
