"""Validation of the student and, once, of the frozen teacher (MMRazor's ``SingleTeacherDistillValLoop``).

mmengine's ``ValLoop.run`` validates the student as for any model (metrics, validation losses where the model
reports them, hooks); the teacher's metrics join the student's through a hook on ``after_val_epoch`` that runs
before every other hook, so the logger, ``save_best`` and schedulers see both.
"""
import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.runner import ValLoop
from mmengine.runner.amp import autocast

from mmdistkd.registry import LOOPS

TEACHER_METRIC_PREFIX = 'teacher.'


@torch.no_grad()
def evaluate_teacher(teacher, loop):
    """The metrics of ``teacher`` on the dataloader and evaluator of ``loop`` (a ValLoop), prefixed ``teacher.``."""
    for data_batch in loop.dataloader:
        with autocast(enabled=loop.fp16):
            outputs = teacher.val_step(data_batch)
        loop.evaluator.process(data_samples=outputs, data_batch=data_batch)
    metrics = loop.evaluator.evaluate(len(loop.dataloader.dataset))
    return {f'{TEACHER_METRIC_PREFIX}{key}': value for key, value in metrics.items()}


class TeacherMetricsHook(Hook):
    """Adds the teacher's metrics of ``loop`` to the validation metrics, ahead of the other hooks."""

    def __init__(self, loop):
        self.loop = loop

    def after_val_epoch(self, runner, metrics=None):
        if metrics is not None:
            metrics.update(self.loop.teacher_metrics())


@LOOPS.register_module()
class SingleTeacherDistillValLoop(ValLoop):
    """Validates the student, then the teacher (metrics prefixed ``teacher.``). A frozen teacher's metrics
    cannot change, so they are computed once and reported with every validation; a trainable teacher is
    evaluated each time. ``evaluate_teacher=False`` validates the student only."""

    def __init__(self, runner, dataloader, evaluator, fp16=False, evaluate_teacher=True):
        super().__init__(runner, dataloader, evaluator, fp16)
        self.evaluate_teacher = evaluate_teacher
        self._teacher_metrics = None
        if evaluate_teacher:
            runner.register_hook(TeacherMetricsHook(self), priority='HIGHEST')

    @torch.no_grad()
    def teacher_metrics(self):
        """The teacher's metrics on this loop's dataloader and evaluator, prefixed ``teacher.``."""
        model = self.runner.model.module if is_model_wrapper(self.runner.model) else self.runner.model
        if self._teacher_metrics is None or model.frozen_teacher.trainable:
            self._teacher_metrics = evaluate_teacher(model.teacher, self)
        return self._teacher_metrics
