"""SingleTeacherDistill: a student trained with a teacher (MMRazor's config keys): the training step.

The teacher's lifecycle (outside the module tree, weights, inputs, precision, memory format) is
``FrozenTeacher``'s; how it runs in a step is the ``teacher_forward`` strategy's.
"""
import warnings
from collections.abc import Sequence

import torch
from mmengine.model import BaseModel, revert_sync_batchnorm

from mmdistkd.registry import MODELS, build_in_mmdistkd_scope
from mmdistkd.utils.student import accept_plain_student_checkpoint
from mmdistkd.utils.tasks import TASK_OF_PACKAGE, package_of

from .builders import build_student, choose_teacher_weights
from .frozen_teacher import FollowedByFrozenTeachers, FrozenTeacher
from .inherit import inherit_teacher_modules
from .submodel import build_submodel
from .teacher_check import check_teacher, is_first_iteration
from .teacher_forward import build_teacher_forward


@MODELS.register_module()
class SingleTeacherDistill(FollowedByFrozenTeachers, BaseModel):
    """The student's training step with a teacher: the teacher's forward (before the student's, or after it
    for a strategy that uses the student's output), the student's task losses, the distillation losses.

    Args:
        architecture (dict): the student: a model dict, or ``cfg_path='mmdet::...'`` (or a local config file)
            plus optional overrides of that file's ``model``. With ``cfg_path``, MMRazor's ``pretrained=True``
            loads the weights that the package's model index lists for that config (as ``mmengine.hub.get_model``),
            strictly, before training; ``load_from`` or resuming still wins.
        teacher (dict): the teacher, given like ``architecture``. ``pretrained=True`` gives the teacher the
            model index's weights unless ``teacher_ckpt`` is set: ``teacher_ckpt`` wins (MMRazor loads it after
            the pretrained weights), and the pretrained weights are then not downloaded.
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
        teacher_forward (str | dict): ``'tensor'``, ``'extract_feat'``, ``'seg_decode_aux'`` or
            ``'roi_on_student_rois'``, or a dict of that name (``type``) and its options, e.g. a cascade teacher's
            ``stage`` (see ``teacher_forward.py``).
        distiller (dict): ``ConfigurableDistiller`` config.
        data_preprocessor (dict | nn.Module, optional): the training step's preprocessor, see
            :func:`build_student`: without ``type`` (the Runner hands a config's top-level ``data_preprocessor``,
            as mmpretrain configs keep it, to the model) it completes the student's config where that has none;
            with ``type`` (MMRazor's configs) it replaces the student's own, as MMRazor's ``BaseAlgorithm``.
        teacher_autocast (str | None): ``'bf16'`` or ``'fp16'`` runs the teacher's training-step forward
            under autocast in that precision (the distillation losses still compute in fp32); ``None``
            keeps the ambient precision. Validation of the teacher is unaffected.
        teacher_channels_last (bool): keep the teacher's weights and inputs in channels-last memory format
            (faster convolutions on GPUs with tensor cores, especially with ``teacher_autocast``).
        inherit_from_teacher (list[str] | None): student modules (names as in ``named_modules()``, e.g.
            ``['neck', 'bbox_head']``) that start from the weights (parameters and buffers) of the teacher's
            modules of the same names, "inheriting" as the FGD authors' ``init_student``. Copied at build, after
            the teacher checkpoint loads, and again after ``init_weights`` (which the Runner calls before
            training and which would re-initialise them); mmengine loads ``load_from`` or resumes after both,
            so a loaded checkpoint wins. Each pair must match in names and shapes.
        allow_unnormalised_teacher (bool): accept a teacher whose data preprocessor does not normalise while the
            student's does (a teacher trained on raw 0-255 pixels); otherwise that is an error at build time, as
            it almost always means the teacher's normalisation went missing. A teacher config without
            ``data_preprocessor`` uses the student's.
        check_teacher (bool): at the first iteration of a run (not after resuming), log the frozen teacher's own
            task loss on the batch beside the student's, and warn when the teacher is no better
            (``teacher_check.py``): a wrong checkpoint, normalisation or class order shows in minutes.

    Optimizers: one ``optim_wrapper`` covers the student and the distiller's modules; with
    ``constructor='mmdistkd.SeparateDistillerOptimWrapperConstructor'`` the distiller's modules get an optimizer
    and schedule of their own and a trainable teacher goes with the student's (``docs/optimizers.md``). mmengine's
    ``train_step`` steps either form.
    """

    def __init__(self, architecture, teacher, distiller, teacher_ckpt=None, teacher_trainable=False,
                 teacher_norm_eval=True, student_trainable=True, calculate_student_loss=True,
                 student_loss_weight=1.0, teacher_forward='tensor', data_preprocessor=None, init_cfg=None,
                 teacher_autocast=None, teacher_channels_last=False, inherit_from_teacher=None,
                 allow_unnormalised_teacher=False, check_teacher=True):
        forward_strategy = build_teacher_forward(teacher_forward)
        student, preprocessor_for_teacher = build_student(architecture, data_preprocessor)
        # A teacher without a preprocessor of its own sees the data as the student does: its weights were
        # trained on the same dataset, normalised alike (the registry default would feed it raw 0-255 pixels).
        teacher_model = teacher if isinstance(teacher, torch.nn.Module) else \
            build_submodel(teacher, 'teacher', preprocessor_for_teacher)
        teacher_ckpt = choose_teacher_weights(teacher, teacher_ckpt)
        if not torch.cuda.is_available():
            teacher_model = revert_sync_batchnorm(teacher_model)  # as the student's (build_student)
        # One preprocessor for the step: the student's (the teacher's inputs are derived from its output).
        super().__init__(data_preprocessor=student.data_preprocessor, init_cfg=init_cfg)
        self.architecture = student
        self.frozen_teacher = FrozenTeacher(
            teacher_model, student.data_preprocessor, ckpt=teacher_ckpt, trainable=teacher_trainable,
            norm_eval=teacher_norm_eval, autocast=teacher_autocast, channels_last=teacher_channels_last,
            allow_unnormalised=allow_unnormalised_teacher,
            config=teacher.get('cfg_path') if isinstance(teacher, dict) else None)
        # A trainable teacher starts untrained by design: nothing to check.
        self._teacher_check_pending = check_teacher and not teacher_trainable
        self.inherit_from_teacher = list(inherit_from_teacher or [])
        if self.inherit_from_teacher:
            if teacher_ckpt is None:
                warnings.warn(f'SingleTeacherDistill: inherit_from_teacher={self.inherit_from_teacher} copies a '
                              'randomly initialised teacher, as teacher_ckpt is None. Set teacher_ckpt for real '
                              'training.')
            inherit_teacher_modules(self.student, self.teacher, self.inherit_from_teacher)
        if teacher_trainable:
            # nn.Module.__setattr__ registers it as a submodule (the ``teacher`` property reads the same object).
            self.teacher = teacher_model
            # Its checkpoint is its initialisation: the Runner's init_weights must not redo it.
            teacher_model._is_init = teacher_ckpt is not None
        if not student_trainable:
            self.architecture.requires_grad_(False)
        self.calculate_student_loss = calculate_student_loss
        self.student_loss_weight = student_loss_weight
        self.teacher_forward = forward_strategy
        forward_strategy.prepare(student, teacher_model)

        self.distiller = build_in_mmdistkd_scope(distiller)
        self.distiller.prepare(self.student, self.teacher)
        self._register_load_state_dict_pre_hook(accept_plain_student_checkpoint)
        self.train()

    @property
    def student(self):
        return self.architecture

    @property
    def teacher(self):
        return self.frozen_teacher.module

    # ------------------------------------------------------------------ inheriting
    def init_weights(self):
        super().init_weights()
        # The student's init_cfg has just re-initialised the inherited modules.
        inherit_teacher_modules(self.student, self.teacher, self.inherit_from_teacher)

    def frozen_teachers(self):
        return [self.frozen_teacher]

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
        # Without distillation losses (inheriting alone) nothing reads the teacher's outputs: it does not run.
        teacher_runs = bool(self.distiller.distill_losses)
        teacher_first = not self.teacher_forward.runs_after_student
        if teacher_runs and teacher_first:
            self.record_teacher(inputs, data_samples)
        student_losses = self.record_student(inputs, data_samples)
        if teacher_runs and not teacher_first:
            self.record_teacher(inputs, data_samples)
        if self._teacher_check_pending:
            self._teacher_check_pending = False
            if is_first_iteration():
                check_teacher(self.frozen_teacher, inputs, data_samples, student_losses,
                              classifies=TASK_OF_PACKAGE.get(package_of(self.student)) == 'cls')
        losses = {}
        if self.calculate_student_loss:
            losses.update(weighted_student_losses(student_losses, self.student_loss_weight))
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


def weighted_student_losses(losses, weight):
    """The student's task losses named ``student.<name>``, those whose names hold ``loss`` scaled by ``weight``
    (others, e.g. accuracies, are only logged), as mmdet's ``rename_loss_dict`` of ``reweight_loss_dict``."""
    def scaled(value):
        return [item * weight for item in value] if isinstance(value, Sequence) else value * weight

    return {'student.' + name: scaled(value) if 'loss' in name else value for name, value in losses.items()}
