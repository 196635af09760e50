"""TeacherValHook in a real mmengine Runner with mmengine's own ValLoop (the tiny distillation of
test_distill_optim_wrapper.py, 2 iterations, a validation after each): the teacher's metrics, computed once,
prefixed ``teacher.``, in every validation's record of the message hub (which the logger and save_best read);
under SingleTeacherDistillValLoop the hook leaves the teacher to the loop."""
import pytest
import torch
from mmengine.dataset import pseudo_collate
from mmengine.runner import Runner

from mmdistkd.testing import TinyImages

from test_distill_optim_wrapper import BATCH_SIZE, NUM_CLASSES, NUM_IMAGES, SIZE, build_model


def train_with_validation(tmp_path, val_cfg):
    """The runner after training, the model, the loader, and how often the teacher ran a validation step."""
    model = build_model()
    teacher_val_steps = []
    teacher_val_step = model.teacher.val_step
    model.teacher.val_step = lambda data_batch: teacher_val_steps.append(1) or teacher_val_step(data_batch)
    loader = torch.utils.data.DataLoader(TinyImages(NUM_IMAGES, SIZE, NUM_CLASSES), batch_size=BATCH_SIZE,
                                         collate_fn=pseudo_collate)
    runner = Runner(
        model=model, work_dir=str(tmp_path), default_scope='mmpretrain',
        # a message hub of its own: two runners built in the same second would share one
        experiment_name=tmp_path.name,
        train_dataloader=loader, val_dataloader=loader, val_evaluator=dict(type='Accuracy'),
        train_cfg=dict(by_epoch=False, max_iters=2, val_interval=1), val_cfg=val_cfg,
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        default_hooks=dict(checkpoint=None), custom_hooks=[dict(type='mmdistkd.TeacherValHook')])
    runner.train()
    return runner, model, loader, len(teacher_val_steps)


def teacher_accuracy(model, loader):
    """Top-1 accuracy (percent) of the teacher's own predictions over ``loader``."""
    with torch.no_grad():
        correct = sum(int(sample.pred_score.argmax() == sample.gt_label)
                      for data_batch in loader for sample in model.teacher.val_step(data_batch))
    return 100.0 * correct / NUM_IMAGES


@pytest.mark.parametrize('val_cfg', [dict(), dict(type='mmdistkd.SingleTeacherDistillValLoop')],
                         ids=['mmengine_val_loop', 'distill_val_loop'])
def test_teacher_metrics_join_every_validation_computed_once(tmp_path, val_cfg):
    runner, model, loader, teacher_val_steps = train_with_validation(tmp_path, val_cfg)
    assert teacher_val_steps == len(loader), 'once in all, by the hook or by the loop, not by both'
    recorded = runner.message_hub.get_scalar('val/teacher.accuracy/top1').data[0]
    assert list(recorded) == pytest.approx([teacher_accuracy(model, loader)] * 2)
    assert len(runner.message_hub.get_scalar('val/accuracy/top1').data[0]) == 2
