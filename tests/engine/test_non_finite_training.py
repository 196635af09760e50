"""A diverged run stops with a message instead of training on NaN to exit code 0, and its student is never
exported: a real Runner with a real mmpretrain distillation model."""
import os.path as osp

import pytest
import torch
from mmengine.dataset import pseudo_collate
from mmengine.runner import Runner

import mmdistkd  # noqa: F401
from mmdistkd.engine.hooks import NonFiniteLossHook
from mmdistkd.engine.hooks.non_finite_loss_hook import non_finite_entries
from mmdistkd.testing import TinyImages

from test_distill_optim_wrapper import NUM_CLASSES, build_model


def runner(work_dir, lr, max_iters, hooks):
    return Runner(
        model=build_model(), work_dir=str(work_dir), default_scope='mmpretrain',
        train_dataloader=dict(dataset=TinyImages(8, 16, NUM_CLASSES), sampler=dict(type='DefaultSampler'),
                              batch_size=2, collate_fn=pseudo_collate, num_workers=0),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=lr, momentum=0.9)), randomness=dict(seed=0),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1000, by_epoch=False)),
        custom_hooks=hooks)


def test_a_run_whose_loss_stays_nan_stops_naming_the_loss_and_exports_nothing(tmp_path):
    run = runner(tmp_path, lr=1e6, max_iters=40, hooks=[dict(type='mmdistkd.NonFiniteLossHook', patience=3),
                                                        dict(type='mmdistkd.StudentExportHook')])
    with pytest.raises(RuntimeError, match=r'not been finite for 3 consecutive iterations \(since iteration \d+, '
                                           r'where .*loss.* went first\)') as error:
        run.train()
    assert 'nothing is exported' in str(error.value) and run.iter < 40
    assert not osp.exists(tmp_path / 'student_final.pth')


def test_isolated_non_finite_iterations_do_not_stop_the_run():
    hook = NonFiniteLossHook(patience=3)

    class FakeRunner:
        iter = 0

    finite, nan = dict(loss=torch.tensor(1.0)), dict(loss=torch.tensor(float('nan')), loss_kd=torch.tensor(1.0))
    for outputs in (nan, nan, finite, nan, nan, finite):  # e.g. loss-scale overflows under --amp
        hook.after_train_iter(FakeRunner(), 0, outputs=outputs)
    assert non_finite_entries(dict(a=torch.tensor([1.0, float('inf')]), b=2.0)) == ['a']
    with pytest.raises(ValueError, match='positive int'):
        NonFiniteLossHook(patience=0)


def test_export_refuses_a_student_with_non_finite_weights(tmp_path):
    run = runner(tmp_path, lr=0.01, max_iters=1, hooks=[])
    run.train()
    export = mmdistkd.engine.hooks.StudentExportHook()
    with torch.no_grad():
        next(run.model.student.parameters()).fill_(float('nan'))
    with pytest.raises(RuntimeError, match=r'Not exporting .*student_final.pth: 1 of \d+ floating-point tensors'):
        export.after_train(run)
    assert not osp.exists(tmp_path / 'student_final.pth')
