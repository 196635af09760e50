"""SingleTeacherDistillValLoop in a real mmengine Runner (tiny mmpretrain classifiers, 2 iterations, a validation
after each): mmengine's validation (metrics, and the validation losses it reports when the model returns them)
plus the teacher's metrics, computed once, prefixed ``teacher.``, seen by every hook."""
import pytest
import torch
import torch.nn.functional as F
from mmengine.dataset import pseudo_collate
from mmengine.registry import DefaultScope
from mmengine.runner import Runner
from mmengine.structures import BaseDataElement
from mmpretrain.models import ImageClassifier

from mmdistkd.models.algorithms import SingleTeacherDistill
from mmdistkd.testing import MetricsLog, TinyImages

from test_single_teacher_distill import NUM_CLASSES, classifier, kd_distiller

NUM_IMAGES, BATCH_SIZE, SIZE = 8, 4, 16


class ClassifierReportingValLoss(ImageClassifier):
    """Appends its loss on the batch to its predictions, the form in which mmengine 0.10.7's ValLoop picks up
    validation losses."""

    def predict(self, inputs, data_samples=None, **kwargs):
        predictions = super().predict(inputs, data_samples, **kwargs)
        scores = torch.stack([sample.pred_score for sample in predictions])
        labels = torch.cat([sample.gt_label for sample in predictions])
        return predictions + [BaseDataElement(loss=dict(loss_val=F.nll_loss(scores.log(), labels)))]


def reference_accuracy(model, loader):
    """Top-1 accuracy (percent) of ``model``'s own predictions over ``loader``."""
    correct = 0
    with torch.no_grad():
        for data_batch in loader:
            for sample in model.val_step(data_batch):
                correct += int(sample.pred_score.argmax() == sample.gt_label)
    return 100.0 * correct / NUM_IMAGES


def train_with_validation(tmp_path, evaluate_teacher):
    torch.manual_seed(0)
    student_cfg = classifier()
    student_cfg.pop('type')
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = SingleTeacherDistill(architecture=ClassifierReportingValLoss(**student_cfg),
                                     teacher=classifier(depth=34), distiller=kd_distiller())
    teacher_val_steps = []
    teacher_val_step = model.teacher.val_step
    model.teacher.val_step = lambda data_batch: teacher_val_steps.append(1) or teacher_val_step(data_batch)
    loader = torch.utils.data.DataLoader(TinyImages(NUM_IMAGES, SIZE, NUM_CLASSES), batch_size=BATCH_SIZE,
                                         collate_fn=pseudo_collate)
    log = MetricsLog()
    runner = Runner(
        model=model, work_dir=str(tmp_path), default_scope='mmpretrain',
        train_dataloader=loader, val_dataloader=loader, val_evaluator=dict(type='Accuracy'),
        train_cfg=dict(by_epoch=False, max_iters=2, val_interval=1),
        val_cfg=dict(type='mmdistkd.SingleTeacherDistillValLoop', evaluate_teacher=evaluate_teacher),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        default_hooks=dict(checkpoint=None), custom_hooks=[log])
    runner.train()
    return runner, model, loader, log.metrics, len(teacher_val_steps)


def test_teacher_metrics_join_every_validation_computed_once(tmp_path):
    runner, model, loader, metrics, teacher_val_steps = train_with_validation(tmp_path, evaluate_teacher=True)
    assert len(metrics) == 2
    assert teacher_val_steps == len(loader)
    teacher_accuracy = reference_accuracy(model.teacher, loader)
    for validation in metrics:
        assert validation['teacher.accuracy/top1'] == pytest.approx(teacher_accuracy)
        assert 'accuracy/top1' in validation
        # mmengine's validation losses: the model's own, and their sum as val_loss.
        assert validation['val_loss'] == pytest.approx(validation['loss_val']) and validation['loss_val'] > 0
    # The hook runs before mmengine's RuntimeInfoHook: the message hub has the teacher's metric too.
    assert runner.message_hub.get_scalar('val/teacher.accuracy/top1').current() == pytest.approx(teacher_accuracy)


def test_evaluate_teacher_false_validates_the_student_only(tmp_path):
    _, _, _, metrics, teacher_val_steps = train_with_validation(tmp_path, evaluate_teacher=False)
    assert teacher_val_steps == 0
    assert all(not key.startswith('teacher.') for validation in metrics for key in validation)
    assert all('loss_val' in validation and 'accuracy/top1' in validation for validation in metrics)
