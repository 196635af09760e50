import torch
from mmengine.model import is_model_wrapper
from mmengine.runner import ValLoop
from mmengine.runner.amp import autocast

from mmdistkd.registry import LOOPS


@LOOPS.register_module()
class SingleTeacherDistillValLoop(ValLoop):
    """Validates the student, then the teacher (metrics prefixed ``teacher.``), as MMRazor's loop does. The
    frozen teacher's metrics cannot change, so they are computed once and reported with every validation."""

    def __init__(self, runner, dataloader, evaluator, fp16=False, evaluate_teacher=True):
        super().__init__(runner, dataloader, evaluator, fp16)
        self.evaluate_teacher = evaluate_teacher
        self._teacher_metrics = None

    def run(self):
        self.runner.call_hook('before_val')
        self.runner.call_hook('before_val_epoch')
        self.runner.model.eval()
        self.val_loss.clear()
        for idx, data_batch in enumerate(self.dataloader):
            self.run_iter(idx, data_batch)
        metrics = self.evaluator.evaluate(len(self.dataloader.dataset))
        if self.evaluate_teacher:
            metrics.update(self._evaluate_teacher())
        self.runner.call_hook('after_val_epoch', metrics=metrics)
        self.runner.call_hook('after_val')
        return metrics

    @torch.no_grad()
    def _evaluate_teacher(self):
        model = self.runner.model.module if is_model_wrapper(self.runner.model) else self.runner.model
        if self._teacher_metrics is None or model.teacher_trainable:
            for data_batch in self.dataloader:
                with autocast(enabled=self.fp16):
                    outputs = model.teacher.val_step(data_batch)
                self.evaluator.process(data_samples=outputs, data_batch=data_batch)
            metrics = self.evaluator.evaluate(len(self.dataloader.dataset))
            self._teacher_metrics = {f'teacher.{key}': value for key, value in metrics.items()}
        return self._teacher_metrics
