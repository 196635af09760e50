"""The teacher's validation metrics beside the student's: ``TeacherValHook`` (in every mmdistkd config through
``configs/_base_/distill_runtime.py``), which ``SingleTeacherDistillValLoop`` also registers for itself."""
import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.runner.amp import autocast

from mmdistkd.registry import HOOKS

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


@HOOKS.register_module()
class TeacherValHook(Hook):
    """Adds the teacher's validation metrics, prefixed ``teacher.``, to those of every validation, with
    mmengine's own ``ValLoop`` (no ``val_cfg`` override). A frozen teacher's metrics cannot change, so they are
    computed at the first validation and reported again with every later one; a trainable teacher is evaluated
    each time. Does nothing for a model without a teacher, or under a ``SingleTeacherDistillValLoop``, whose own
    instance of this hook (its ``teacher_hook``, None with ``evaluate_teacher=False``) is the one that runs."""

    # Before mmengine's RuntimeInfoHook (VERY_HIGH) puts the metrics in the message hub, so the logger,
    # save_best and the schedulers see the teacher's too.
    priority = 'HIGHEST'

    def __init__(self):
        self._teacher_metrics = None

    def after_val_epoch(self, runner, metrics=None):
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        another_runs = getattr(runner.val_loop, 'teacher_hook', self) is not self
        if metrics is None or not hasattr(model, 'teacher') or another_runs:
            return
        if self._teacher_metrics is None or model.frozen_teacher.trainable:
            self._teacher_metrics = evaluate_teacher(model.teacher, runner.val_loop)
        metrics.update(self._teacher_metrics)
