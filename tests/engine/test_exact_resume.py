"""Kill-and-resume in a real mmengine Runner ends with exactly (``torch.equal``) the weights and optimizer state
of an uninterrupted run: DPK's random token masks, which the checkpoint does not hold, are drawn alike after the
resume; DIST has no randomness of its own. No hook reseeds the global random state here."""
import pytest
import torch
from mmengine.dataset import pseudo_collate
from mmengine.registry import DefaultScope
from mmengine.runner import Runner

import mmdistkd  # noqa: F401
from mmdistkd.models.losses import DPKLoss
from mmdistkd.registry import MODELS
from mmdistkd.testing import TinyImages

from test_distill_optim_wrapper import (
    BATCH_SIZE,
    NUM_CLASSES,
    NUM_IMAGES,
    SIZE,
    KillAfter,
    Killed,
    build_model,
    classifier,
    separate_optim_wrapper,
)


def build_dist_model():
    torch.manual_seed(0)
    logits = dict(type='ModuleOutputs', source='head.fc')
    distiller = dict(
        type='ConfigurableDistiller', student_recorders=dict(logits=logits), teacher_recorders=dict(logits=logits),
        distill_losses=dict(loss_dist=dict(type='DISTLoss', tau=2.0)),
        loss_forward_mappings=dict(loss_dist=dict(logits_S=dict(from_student=True, recorder='logits'),
                                                  logits_T=dict(from_student=False, recorder='logits'))))
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return MODELS.build(dict(type='mmdistkd.SingleTeacherDistill', architecture=classifier(8),
                                 teacher=classifier(16), distiller=distiller))


MODELS_UNDER_TEST = dict(dpk=(build_model, separate_optim_wrapper()),
                         dist=(build_dist_model, dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9))))


def train(model_builder, optim_wrapper, work_dir, max_iters, resume_from=None, hooks=()):
    runner = Runner(
        model=model_builder(), work_dir=str(work_dir), experiment_name=work_dir.name, default_scope='mmpretrain',
        train_dataloader=dict(dataset=TinyImages(NUM_IMAGES, SIZE, NUM_CLASSES),
                              sampler=dict(type='DefaultSampler', shuffle=True), batch_size=BATCH_SIZE,
                              collate_fn=pseudo_collate, num_workers=0),
        train_cfg=dict(by_epoch=False, max_iters=max_iters), optim_wrapper=optim_wrapper,
        randomness=dict(seed=0),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False)),
        custom_hooks=list(hooks), load_from=resume_from, resume=resume_from is not None)
    runner.train()
    return runner


def optimizer_states(runner):
    wrappers = runner.optim_wrapper.values() if hasattr(runner.optim_wrapper, 'values') else [runner.optim_wrapper]
    return [wrapper.optimizer.state_dict()['state'] for wrapper in wrappers]


@pytest.mark.parametrize('method', sorted(MODELS_UNDER_TEST))
def test_resumed_run_ends_with_exactly_the_weights_of_an_uninterrupted_run(method, tmp_path):
    model_builder, optim_wrapper = MODELS_UNDER_TEST[method]
    whole = train(model_builder, optim_wrapper, tmp_path / 'whole', 4)
    with pytest.raises(Killed):
        train(model_builder, optim_wrapper, tmp_path / 'killed', 4, hooks=[KillAfter(2)])
    # Whatever ran in between leaves the global random state elsewhere than the interrupted run had it.
    torch.rand(1000)
    resumed = train(model_builder, optim_wrapper, tmp_path / 'resumed', 4,
                    resume_from=str(tmp_path / 'killed' / 'iter_2.pth'))

    whole_state, resumed_state = whole.model.state_dict(), resumed.model.state_dict()
    assert whole_state.keys() == resumed_state.keys()
    differing = [key for key, value in whole_state.items() if not torch.equal(resumed_state[key], value)]
    assert not differing, f'{len(differing)} of {len(whole_state)} tensors differ, first {differing[:3]}'
    for whole_optimizer, resumed_optimizer in zip(optimizer_states(whole), optimizer_states(resumed)):
        for index, state in whole_optimizer.items():
            assert all(torch.equal(resumed_optimizer[index][name], value) for name, value in state.items()
                       if torch.is_tensor(value))


def test_masks_differ_between_iterations_and_ranks_and_repeat_for_the_same_ones(fresh_message_hub, monkeypatch):
    dpk = DPKLoss(8, 8, encoder_depth=1, decoder_depth=1, num_heads=2, stage='layer3')
    fresh_message_hub.update_info('loop_stage', 'train')

    def mask_at(iteration, rank=0):
        fresh_message_hub.update_info('iter', iteration)
        monkeypatch.setattr('mmdistkd.models.losses.dpk.get_dist_info', lambda: (rank, 2))
        return dpk.random_prior_mask(4, 64, 16, 'cpu', dpk.mask_generator())

    torch.manual_seed(0)
    first = mask_at(5)
    torch.rand(10)  # the global random state plays no part
    assert torch.equal(mask_at(5), first)
    assert not torch.equal(mask_at(6), first)
    assert not torch.equal(mask_at(5, rank=1), first)
    torch.manual_seed(1)  # another run's seed
    assert not torch.equal(mask_at(5), first)
    # Outside a training loop: the global random state, as before.
    fresh_message_hub.pop_info('loop_stage')
    assert dpk.mask_generator() is None
