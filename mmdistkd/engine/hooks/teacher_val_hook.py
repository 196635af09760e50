from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmdistkd.engine.runner.distill_val_loop import SingleTeacherDistillValLoop, evaluate_teacher
from mmdistkd.registry import HOOKS


@HOOKS.register_module()
class TeacherValHook(Hook):
    """Adds the teacher's validation metrics, prefixed ``teacher.``, to those of every validation, with
    mmengine's own ``ValLoop`` (no ``val_cfg`` override). A frozen teacher's metrics cannot change, so they are
    computed at the first validation and reported again with every later one; a trainable teacher is evaluated
    each time. Does nothing for a model without a teacher, or under ``SingleTeacherDistillValLoop``, which
    evaluates the teacher itself."""

    # Before mmengine's RuntimeInfoHook (VERY_HIGH) puts the metrics in the message hub, so the logger,
    # save_best and the schedulers see the teacher's too.
    priority = 'HIGHEST'

    def __init__(self):
        self._teacher_metrics = None

    def after_val_epoch(self, runner, metrics=None):
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if metrics is None or not hasattr(model, 'teacher') or isinstance(runner.val_loop,
                                                                          SingleTeacherDistillValLoop):
            return
        if self._teacher_metrics is None or model.frozen_teacher.trainable:
            self._teacher_metrics = evaluate_teacher(model.teacher, runner.val_loop)
        metrics.update(self._teacher_metrics)
