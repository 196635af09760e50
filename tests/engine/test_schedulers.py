"""LinearWarmupCosineLR against the two mmengine schedulers a config would list with the boundary written out."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.optim import OptimWrapper
from mmengine.registry import PARAM_SCHEDULERS
from mmengine.runner import Runner

import mmdistkd  # noqa: F401
from mmdistkd.testing import REPO

FRAGMENT = osp.join(REPO, 'configs', '_base_', 'recipes', 'dpk_modules_adamw.py')


def optim_wrapper(lr=1e-4):
    return OptimWrapper(torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=lr))


def build(cfgs, wrapper, epoch_length):
    """As mmengine's Runner builds a param_scheduler list (registry build, epoch_length as default)."""
    return [PARAM_SCHEDULERS.build(cfg, default_args=dict(optimizer=wrapper, epoch_length=epoch_length))
            for cfg in cfgs]


def learning_rates(schedulers, wrapper, epochs, epoch_length):
    """The learning rate of every iteration, the schedulers stepped as mmengine's ParamSchedulerHook steps them."""
    rates = []
    for _ in range(epochs):
        for _ in range(epoch_length):
            rates.append(wrapper.param_groups[0]['lr'])
            for scheduler in schedulers:
                if not scheduler.by_epoch:
                    scheduler.step()
        for scheduler in schedulers:
            if scheduler.by_epoch:
                scheduler.step()
    return rates


def written_out(max_len, by_epoch, convert):
    """The explicit pair the det configs listed (warm-up over the first fifth, then cosine to the end)."""
    common = dict(by_epoch=by_epoch, **(dict(convert_to_iter_based=True) if convert else {}))
    return [dict(type='LinearLR', start_factor=0.01, begin=0, end=max_len // 5, **common),
            dict(type='CosineAnnealingLR', eta_min=1e-5, begin=max_len // 5, end=max_len, **common)]


@pytest.mark.parametrize('max_epochs,epoch_length,by_epoch,convert', [
    (12, 7, True, True),  # a 1x detection schedule, converted to iterations
    (24, 5, True, True),  # 2x
    (13, 3, True, True),  # a length the ratio does not divide
    (12, 4, True, False),  # stepped per epoch
    (1, 203, False, False),  # iteration-based (max_iters 203), as the demo and Cityscapes configs
])
def test_same_learning_rates_as_the_written_out_pair(max_epochs, epoch_length, by_epoch, convert):
    max_len = max_epochs if by_epoch else max_epochs * epoch_length
    ours_wrapper, theirs_wrapper = optim_wrapper(), optim_wrapper()
    ours = build([dict(type='mmdistkd.LinearWarmupCosineLR', warmup_ratio=0.2, start_factor=0.01, eta_min=1e-5,
                       by_epoch=by_epoch, end=max_len, **(dict(convert_to_iter_based=True) if convert else {}))],
                 ours_wrapper, epoch_length)
    theirs = build(written_out(max_len, by_epoch, convert), theirs_wrapper, epoch_length)
    ours_rates = learning_rates(ours, ours_wrapper, max_epochs, epoch_length)
    assert ours_rates == learning_rates(theirs, theirs_wrapper, max_epochs, epoch_length)
    assert ours_rates[0] == pytest.approx(1e-6) and ours_rates[-1] < 2e-5  # warmed up from 1e-6, annealed


def test_resumes_where_it_stopped():
    epochs, epoch_length = 10, 6
    cfg = dict(type='mmdistkd.LinearWarmupCosineLR', warmup_ratio=0.2, start_factor=0.01, eta_min=1e-5, end=epochs,
               convert_to_iter_based=True)
    whole_wrapper = optim_wrapper()
    whole = learning_rates(build([cfg], whole_wrapper, epoch_length), whole_wrapper, epochs, epoch_length)

    first_wrapper = optim_wrapper()
    first = build([cfg], first_wrapper, epoch_length)
    rates = learning_rates(first, first_wrapper, 3, epoch_length)
    # A resumed run, in the Runner's order: new optimizer and scheduler, then both load the first run's states.
    resumed_wrapper = optim_wrapper()
    resumed = build([cfg], resumed_wrapper, epoch_length)
    resumed_wrapper.load_state_dict(first_wrapper.state_dict())
    resumed[0].load_state_dict(first[0].state_dict())
    rates += learning_rates(resumed, resumed_wrapper, epochs - 3, epoch_length)
    assert rates == whole


def test_a_schedule_without_end_or_room_for_both_parts_says_what_to_set():
    with pytest.raises(ValueError, match='needs the schedule\'s end'):
        build([dict(type='mmdistkd.LinearWarmupCosineLR', warmup_ratio=0.2, start_factor=0.01)], optim_wrapper(), 1)
    with pytest.raises(ValueError, match='a schedule of 1 iterations is too short for a warm-up and a cosine step'):
        build([dict(type='mmdistkd.LinearWarmupCosineLR', warmup_ratio=0.2, start_factor=0.01, end=1,
                    by_epoch=False)], optim_wrapper(), 1)
    with pytest.raises(ValueError, match='between 0 and 1'):
        build([dict(type='mmdistkd.LinearWarmupCosineLR', warmup_ratio=20, start_factor=0.01, end=100)],
              optim_wrapper(), 1)


@pytest.mark.parametrize('epochs, epoch_length, by_epoch, convert, warmup_steps', [
    (2, 1, False, False, 1),  # a 2-iteration trial run: one step each
    (1, 10, True, True, 2),  # one epoch, converted: the fifth of its 10 iterations
    (2, 10, True, True, 10),  # two epochs: one whole epoch of warm-up (its fifth rounds down to none)
])
def test_short_trial_runs_keep_a_step_of_each_part(epochs, epoch_length, by_epoch, convert, warmup_steps):
    wrapper = optim_wrapper()
    cfg = dict(type='mmdistkd.LinearWarmupCosineLR', warmup_ratio=0.2, start_factor=0.01, eta_min=1e-5,
               by_epoch=by_epoch, end=epochs if by_epoch else epochs * epoch_length,
               **(dict(convert_to_iter_based=True) if convert else {}))
    scheduler, = build([cfg], wrapper, epoch_length)
    assert (scheduler.warmup.begin, scheduler.warmup.end) == (0, warmup_steps)
    assert (scheduler.cosine.begin, scheduler.cosine.end) == (warmup_steps, epochs * epoch_length)
    rates = learning_rates([scheduler], wrapper, epochs, epoch_length)
    assert rates[0] == pytest.approx(1e-6) and all(0 < rate < 1.001e-4 for rate in rates)


class Line(BaseModel):
    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(1))

    def forward(self, inputs, data_samples=None, mode='tensor'):
        return dict(loss=(self.weight * torch.stack(inputs)).sum())


class LearningRates(Hook):
    def __init__(self):
        self.rates = []

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.rates.append(runner.optim_wrapper.get_lr()['lr'][0])


def runner_rates(param_scheduler, tmp_path, name):
    """Learning rates of a 7-epoch run of 5 iterations each, trained by mmengine's Runner."""
    rates = LearningRates()
    Runner(model=Line(), work_dir=str(tmp_path / name), experiment_name=name,
           train_dataloader=dict(dataset=[dict(inputs=torch.ones(1))] * 10, batch_size=2,
                                 sampler=dict(type='DefaultSampler', shuffle=False)),
           train_cfg=dict(by_epoch=True, max_epochs=7), optim_wrapper=dict(optimizer=dict(type='AdamW', lr=1e-4)),
           param_scheduler=param_scheduler, custom_hooks=[rates], default_hooks=dict(checkpoint=None),
           default_scope='mmengine').train()
    return rates.rates


def test_the_runner_sets_the_end_of_the_configs_schedule(tmp_path):
    """The fragment's schedule, which leaves `end` to the Runner, trains as the pair written out for 7 epochs."""
    fragment = Config.fromfile(FRAGMENT).dpk_modules_warmup_cosine
    assert 'end' not in fragment
    ours = runner_rates(fragment.to_dict(), tmp_path, 'ours')
    assert ours == runner_rates(written_out(7, by_epoch=True, convert=True), tmp_path, 'written_out')
    assert len(ours) == 35 and ours[0] == pytest.approx(1e-6)
