"""Validation of the student and, once, of the frozen teacher (MMRazor's ``SingleTeacherDistillValLoop``), and
of a self-distilled student (MMRazor's ``SelfDistillValLoop``).

mmengine's ``ValLoop.run`` validates the student as for any model (metrics, validation losses where the model
reports them, hooks); the teacher's metrics join the student's through a ``TeacherValHook`` of the loop's own,
and ``SelfDistillValLoop``'s hook names the metrics ``student.<name>``. Both hooks run before every other hook, so
the logger, ``save_best`` and schedulers see the final names.
"""
from mmengine.hooks import Hook
from mmengine.runner import ValLoop

from mmdistkd.engine.hooks.teacher_val_hook import TeacherValHook
from mmdistkd.registry import LOOPS


@LOOPS.register_module()
class SingleTeacherDistillValLoop(ValLoop):
    """Validates the student, then the teacher (metrics prefixed ``teacher.``). A frozen teacher's metrics
    cannot change, so they are computed once and reported with every validation; a trainable teacher is
    evaluated each time. ``evaluate_teacher=False`` validates the student only."""

    def __init__(self, runner, dataloader, evaluator, fp16=False, evaluate_teacher=True):
        super().__init__(runner, dataloader, evaluator, fp16)
        self.evaluate_teacher = evaluate_teacher
        self.teacher_hook = TeacherValHook() if evaluate_teacher else None
        if evaluate_teacher:
            runner.register_hook(self.teacher_hook)


class StudentMetricNames(Hook):
    """Renames every validation metric ``<name>`` to ``student.<name>``, before the other hooks see them."""

    priority = 'HIGHEST'

    def after_val_epoch(self, runner, metrics=None):
        if metrics:
            renamed = {f'student.{name}': value for name, value in metrics.items()}
            metrics.clear()
            metrics.update(renamed)


@LOOPS.register_module()
class SelfDistillValLoop(ValLoop):
    """mmengine's validation of the model (a ``SelfDistill`` student), its metrics named ``student.<name>`` as in
    MMRazor (a ``save_best`` then names e.g. ``'student.accuracy/top1'``)."""

    def __init__(self, runner, dataloader, evaluator, fp16=False):
        super().__init__(runner, dataloader, evaluator, fp16)
        runner.register_hook(StudentMetricNames())
