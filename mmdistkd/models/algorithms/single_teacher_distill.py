"""SingleTeacherDistill: a student trained with a teacher (MMRazor's config keys): the training step.

The teacher's lifecycle (outside the module tree, weights, inputs, precision, memory format) is
``FrozenTeacher``'s; how it runs in a step is the ``teacher_forward`` strategy's.
"""
import torch
from mmdet.models.utils import rename_loss_dict, reweight_loss_dict
from mmengine.model import BaseModel, revert_sync_batchnorm

from mmdistkd.registry import MODELS
from .frozen_teacher import FrozenTeacher
from .submodel import build_submodel
from .teacher_forward import build_teacher_forward


@MODELS.register_module()
class SingleTeacherDistill(BaseModel):
    """The student's training step with a teacher: the teacher's forward (before the student's, or after it
    for a strategy that uses the student's output), the student's task losses, the distillation losses.

    Args:
        architecture (dict): the student: a model dict, or ``cfg_path='mmdet::...'`` (or a local config file)
            plus optional overrides of that file's ``model``.
        teacher (dict): the teacher, given like ``architecture``.
        teacher_ckpt (str | None): the teacher weights: a local path or any URL scheme mmengine's
            ``CheckpointLoader`` knows (``https://``, ``s3://``, ``open-mmlab://``, ...), loaded strictly and
            weights-only. ``None`` keeps a randomly initialised teacher (tests, benchmarks) and warns at the
            first training step.
        teacher_trainable (bool): train the teacher too (then it is a normal submodule).
        teacher_norm_eval (bool): keep the whole frozen teacher in eval mode (BN running statistics).
        student_trainable (bool): False freezes the student (e.g. to train only distiller modules).
        calculate_student_loss (bool): add the student's own task losses.
        student_loss_weight (float): scales the student's task losses (``lambda`` of distillation in
            generations; the distillation losses carry their own ``loss_weight``).
        teacher_forward (str): ``'tensor'``, ``'seg_decode_aux'`` or ``'roi_on_student_rois'`` (see
            ``teacher_forward.py``).
        distiller (dict): ``ConfigurableDistiller`` config.
        data_preprocessor (dict, optional): used for the student when its own config has none (the Runner
            passes a config's top-level ``data_preprocessor`` here).
        teacher_autocast (str | None): ``'bf16'`` or ``'fp16'`` runs the teacher's training-step forward
            under autocast in that precision (the distillation losses still compute in fp32); ``None``
            keeps the ambient precision. Validation of the teacher is unaffected.
        teacher_channels_last (bool): keep the teacher's weights and inputs in channels-last memory format
            (faster convolutions on GPUs with tensor cores, especially with ``teacher_autocast``).
    """

    def __init__(self, architecture, teacher, distiller, teacher_ckpt=None, teacher_trainable=False,
                 teacher_norm_eval=True, student_trainable=True, calculate_student_loss=True,
                 student_loss_weight=1.0, teacher_forward='tensor', data_preprocessor=None, init_cfg=None,
                 teacher_autocast=None, teacher_channels_last=False):
        forward_strategy = build_teacher_forward(teacher_forward)
        student = architecture if isinstance(architecture, torch.nn.Module) else \
            build_submodel(architecture, 'student', data_preprocessor)
        teacher_model = teacher if isinstance(teacher, torch.nn.Module) else build_submodel(teacher, 'teacher')
        if not torch.cuda.is_available():
            # SyncBN (mmseg's default) cannot run on CPU tensors under torch.distributed.
            student = revert_sync_batchnorm(student)
            teacher_model = revert_sync_batchnorm(teacher_model)
        # One preprocessor for the step: the student's (the teacher's inputs are derived from its output).
        super().__init__(data_preprocessor=student.data_preprocessor, init_cfg=init_cfg)
        self.architecture = student
        self.frozen_teacher = FrozenTeacher(
            teacher_model, student.data_preprocessor, ckpt=teacher_ckpt, trainable=teacher_trainable,
            norm_eval=teacher_norm_eval, autocast=teacher_autocast, channels_last=teacher_channels_last)
        if teacher_trainable:
            # nn.Module.__setattr__ registers it as a submodule (the ``teacher`` property reads the same object).
            self.teacher = teacher_model
        if not student_trainable:
            self.architecture.requires_grad_(False)
        self.calculate_student_loss = calculate_student_loss
        self.student_loss_weight = student_loss_weight
        self.teacher_forward = forward_strategy
        forward_strategy.prepare(student)

        # Under an inherited default scope (e.g. 'mmdet') the distiller's types resolve in mmdistkd's scope.
        with MODELS.switch_scope_and_registry('mmdistkd') as registry:
            self.distiller = registry.build(distiller)
        self.distiller.prepare_from_student(self.student)
        self.distiller.prepare_from_teacher(self.teacher)
        self.distiller.check_num_classes(self.student, self.teacher)
        self._register_load_state_dict_pre_hook(self._accept_plain_student_checkpoint)
        self.train()

    @property
    def student(self):
        return self.architecture

    @property
    def teacher(self):
        return self.frozen_teacher.module

    # ------------------------------------------------------------------ the frozen teacher follows the model
    def _apply(self, fn, *args, **kwargs):
        self.frozen_teacher.apply(fn, *args, **kwargs)
        return super()._apply(fn, *args, **kwargs)

    def _set_device(self, device):
        super()._set_device(device)
        self.frozen_teacher.set_device(device)

    def train(self, mode=True):
        super().train(mode)
        self.frozen_teacher.train(mode)
        return self

    def _accept_plain_student_checkpoint(self, state_dict, prefix, *args):
        """``load_from`` a plain mmdet / mmseg / mmpretrain checkpoint of the student: its keys gain the
        ``architecture.`` prefix instead of all missing silently."""
        student_prefix = prefix + 'architecture.'
        own = [k for k in state_dict if k.startswith(prefix)]
        if own and not any(k.startswith(student_prefix) or k.startswith(prefix + 'distiller.') for k in own):
            for key in own:
                state_dict[student_prefix + key[len(prefix):]] = state_dict.pop(key)

    # ------------------------------------------------------------------ forward
    def forward(self, inputs, data_samples=None, mode='tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        return self.student(inputs, data_samples, mode=mode)

    def loss(self, inputs, data_samples):
        # The teacher runs first where its forward allows: the activations of its no-grad forward are then
        # freed before the student's pile up for backward (only its recorded outputs outlive it), so the
        # step's peak memory is that of the larger of the two rather than their sum (DeepLabV3 R101 -> R18
        # at 256x512 on CPU: 1.37x -> ~1.0x the student's own step).
        teacher_first = not self.teacher_forward.runs_after_student
        if teacher_first:
            self.record_teacher(inputs, data_samples)
        student_losses = self.record_student(inputs, data_samples)
        if not teacher_first:
            self.record_teacher(inputs, data_samples)
        losses = {}
        if self.calculate_student_loss:
            losses.update(rename_loss_dict('student.', reweight_loss_dict(student_losses, self.student_loss_weight)))
        losses.update(self.distiller.compute_distill_losses(data_samples))
        return losses

    def record_student(self, inputs, data_samples):
        """The student's loss forward with the distiller's student recorders on; returns its task losses."""
        with self.distiller.student_recorders:
            return self.student(inputs, data_samples, mode='loss')

    def record_teacher(self, inputs, data_samples):
        """``forward_teacher`` with the distiller's teacher recorders on."""
        with self.distiller.teacher_recorders:
            self.forward_teacher(inputs, data_samples)

    def forward_teacher(self, inputs, data_samples):
        """The teacher's share of a training step on the student's preprocessed ``inputs``: the
        ``teacher_forward`` strategy with its own state (a strategy that runs after the student uses what the
        student's last forward left it), run by the frozen teacher (its inputs, precision, memory format)."""
        self.frozen_teacher.run(self.teacher_forward, inputs, data_samples)
