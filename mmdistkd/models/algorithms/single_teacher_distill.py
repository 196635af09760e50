"""SingleTeacherDistill: a student trained with a frozen teacher (MMRazor's config keys).

The teacher is held outside the module tree, so it is in no ``state_dict``, checkpoint, optimizer, DDP
wrapper or EMA copy; it still follows the model through ``.to()/.cuda()/.cpu()/.half()`` and stays in
eval mode under ``no_grad``. It consumes the student's preprocessed batch (re-normalised when its mean,
std or channel order differ), so batch augments such as mixup reach both alike.
"""
import contextlib
import copy
import os.path as osp
import warnings

import torch
from mmengine.model import BaseModel, revert_sync_batchnorm
from mmengine.runner import load_checkpoint
from mmengine.utils import is_list_of

from mmdistkd.registry import MODELS
from .submodel import build_submodel
from .teacher_forward import TEACHER_FORWARDS


# Teacher forwards that consume what the student's forward produced (its sampled RoIs), so run after it.
STUDENT_FIRST_TEACHER_FORWARDS = frozenset({'roi_on_student_rois'})
# ``teacher_autocast`` names: the precision the frozen teacher's training-step forward runs in.
TEACHER_AUTOCAST_DTYPES = {'bf16': torch.bfloat16, 'fp16': torch.float16}


def is_url(path):
    return path.startswith(('http://', 'https://', 's3://', 'open-mmlab://', 'torchvision://'))


def normalisation(preprocessor):
    """(mean, std, converts BGR<->RGB) of an OpenMMLab data preprocessor; mean/std None when it does not
    normalise."""
    enabled = getattr(preprocessor, '_enable_normalize', False)
    mean = getattr(preprocessor, 'mean', None) if enabled else None
    std = getattr(preprocessor, 'std', None) if enabled else None
    converts = bool(getattr(preprocessor, '_channel_conversion', False) or
                    getattr(preprocessor, 'channel_conversion', False) or getattr(preprocessor, 'to_rgb', False))
    return mean, std, converts


def scale_losses(losses, weight):
    """Multiplies every loss entry (keys containing 'loss', tensors or lists of tensors) by ``weight``."""
    if weight == 1:
        return losses
    return {key: ([v * weight for v in value] if is_list_of(value, torch.Tensor) else value * weight)
            if 'loss' in key else value for key, value in losses.items()}


@MODELS.register_module()
class SingleTeacherDistill(BaseModel):
    """Args:
        architecture (dict): the student: a model dict, or ``cfg_path='mmdet::...'`` (or a local config file)
            plus optional overrides of that file's ``model``.
        teacher (dict): the teacher, given like ``architecture``.
        teacher_ckpt (str | None): local path or URL of the teacher weights, loaded weights-only. ``None``
            keeps a randomly initialised teacher (tests, benchmarks) and warns at the first training step.
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
        if teacher_forward not in TEACHER_FORWARDS:
            raise ValueError(f'teacher_forward={teacher_forward!r}; choose one of {sorted(TEACHER_FORWARDS)}')
        if teacher_autocast is not None and teacher_autocast not in TEACHER_AUTOCAST_DTYPES:
            raise ValueError(f'teacher_autocast={teacher_autocast!r}; choose None or one of '
                             f'{sorted(TEACHER_AUTOCAST_DTYPES)}')
        if teacher_ckpt is not None and not is_url(teacher_ckpt) and not osp.isfile(teacher_ckpt):
            raise FileNotFoundError(
                f'teacher_ckpt {teacher_ckpt!r} does not exist. Point it at the teacher checkpoint (a local file '
                'or a URL), or set teacher_ckpt=None to distill from a randomly initialised teacher.')
        student = architecture if isinstance(architecture, torch.nn.Module) else \
            build_submodel(architecture, 'student', data_preprocessor)
        teacher_model = teacher if isinstance(teacher, torch.nn.Module) else build_submodel(teacher, 'teacher')
        # One preprocessor for the step: the student's (the teacher's inputs are derived from its output).
        super().__init__(data_preprocessor=student.data_preprocessor, init_cfg=init_cfg)
        self.architecture = student
        if not torch.cuda.is_available():
            # SyncBN (mmseg's default) cannot run on CPU tensors under torch.distributed.
            self.architecture = revert_sync_batchnorm(self.architecture)
            teacher_model = revert_sync_batchnorm(teacher_model)
        self.teacher_trainable = teacher_trainable
        self.teacher_norm_eval = teacher_norm_eval
        self.calculate_student_loss = calculate_student_loss
        self.student_loss_weight = student_loss_weight
        self.teacher_forward = teacher_forward
        self.teacher_ckpt = teacher_ckpt
        self.teacher_autocast = teacher_autocast
        self.teacher_channels_last = teacher_channels_last
        self._warned_random_teacher = False
        if teacher_trainable:
            self.teacher = teacher_model
        else:
            # Kept out of the module tree: see the module docstring.
            object.__setattr__(self, 'teacher', teacher_model)
            teacher_model.requires_grad_(False)
        if teacher_ckpt is not None:
            # Strict: a teacher that loads only partly would silently teach from random layers.
            try:
                load_checkpoint(teacher_model, teacher_ckpt, map_location='cpu', strict=True,
                                revise_keys=[(r'^module\.', '')])
            except RuntimeError as error:
                raise RuntimeError(f'teacher_ckpt {teacher_ckpt!r} does not match the teacher architecture '
                                   f'({type(teacher_model).__name__}): {error}') from error
        if teacher_channels_last:
            # Later .to(device) calls keep the format (they preserve the strides of dense tensors).
            teacher_model.to(memory_format=torch.channels_last)
        if not student_trainable:
            self.architecture.requires_grad_(False)

        # Under an inherited default scope (e.g. 'mmdet') the distiller's types resolve in mmdistkd's scope.
        with MODELS.switch_scope_and_registry('mmdistkd') as registry:
            self.distiller = registry.build(distiller)
        self.distiller.prepare_from_student(self.student)
        self.distiller.prepare_from_teacher(self.teacher)
        self.distiller.check_num_classes(self.student, self.teacher)
        self._teacher_input_transform = self._build_teacher_input_transform()
        self._student_rois = None
        if teacher_forward == 'roi_on_student_rois':
            self.student.roi_head.bbox_roi_extractor.register_forward_pre_hook(self._keep_student_rois)
        self._register_load_state_dict_pre_hook(self._accept_plain_student_checkpoint)
        self.train()

    @property
    def student(self):
        return self.architecture

    # ------------------------------------------------------------------ the teacher beside the tree
    def _apply(self, fn, *args, **kwargs):
        if not self.teacher_trainable:
            self.teacher._apply(fn, *args, **kwargs)
        return super()._apply(fn, *args, **kwargs)

    def _set_device(self, device):
        super()._set_device(device)
        if not self.teacher_trainable and hasattr(self.teacher, '_set_device'):
            self.teacher._set_device(device)

    def train(self, mode=True):
        super().train(mode)
        if not self.teacher_trainable:
            self.teacher.train(False if self.teacher_norm_eval else mode)
        return self

    def __deepcopy__(self, memo):
        # EMA copies the model: share the frozen teacher instead of copying it.
        if not self.teacher_trainable:
            memo[id(self.teacher)] = self.teacher
        copied = self.__class__.__new__(self.__class__)
        memo[id(self)] = copied
        for key, value in self.__dict__.items():
            object.__setattr__(copied, key, copy.deepcopy(value, memo))
        return copied

    def _accept_plain_student_checkpoint(self, state_dict, prefix, *args):
        """``load_from`` a plain mmdet / mmseg / mmpretrain checkpoint of the student: its keys gain the
        ``architecture.`` prefix instead of all missing silently."""
        student_prefix = prefix + 'architecture.'
        own = [k for k in state_dict if k.startswith(prefix)]
        if own and not any(k.startswith(student_prefix) or k.startswith(prefix + 'distiller.') for k in own):
            for key in own:
                state_dict[student_prefix + key[len(prefix):]] = state_dict.pop(key)

    # ------------------------------------------------------------------ teacher inputs
    def _build_teacher_input_transform(self):
        """The affine map from the student's normalised inputs to the teacher's, or None if they match."""
        s_mean, s_std, s_converts = normalisation(self.student.data_preprocessor)
        t_mean, t_std, t_converts = normalisation(self.teacher.data_preprocessor)
        flip = s_converts != t_converts
        same_norm = (s_mean is None) == (t_mean is None) and (
            s_mean is None or (torch.equal(s_mean, t_mean) and torch.equal(s_std, t_std)))
        if same_norm and not flip:
            return None

        def transform(inputs):
            raw = inputs * s_std.to(inputs) + s_mean.to(inputs) if s_mean is not None else inputs
            if flip:
                raw = raw.flip(1)
            return (raw - t_mean.to(inputs)) / t_std.to(inputs) if t_mean is not None else raw

        return transform

    def _keep_student_rois(self, module, inputs):
        self._student_rois = inputs[1]

    # ------------------------------------------------------------------ forward
    def forward(self, inputs, data_samples=None, mode='tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        return self.student(inputs, data_samples, mode=mode)

    def loss(self, inputs, data_samples):
        if self.teacher_ckpt is None and not self._warned_random_teacher:
            warnings.warn('SingleTeacherDistill: teacher_ckpt is None, so the student is distilled from a '
                          'randomly initialised teacher. Set teacher_ckpt for real training.')
            self._warned_random_teacher = True
        # The teacher runs first where its forward allows: the activations of its no-grad forward are then
        # freed before the student's pile up for backward (only its recorded outputs outlive it), so the
        # step's peak memory is that of the larger of the two rather than their sum (DeepLabV3 R101 -> R18
        # at 256x512 on CPU: 1.37x -> ~1.0x the student's own step).
        teacher_first = self.teacher_forward not in STUDENT_FIRST_TEACHER_FORWARDS
        if teacher_first:
            with self.distiller.teacher_recorders:
                self.forward_teacher(inputs, data_samples)
        with self.distiller.student_recorders:
            student_losses = self.student(inputs, data_samples, mode='loss')
        if not teacher_first:
            with self.distiller.teacher_recorders:
                self.forward_teacher(inputs, data_samples, self._student_rois)
            self._student_rois = None
        losses = {}
        if self.calculate_student_loss:
            losses.update({f'student.{key}': value
                           for key, value in scale_losses(student_losses, self.student_loss_weight).items()})
        losses.update(self.distiller.compute_distill_losses(data_samples))
        return losses

    def forward_teacher(self, inputs, data_samples, student_rois=None):
        """The teacher's share of a training step (what its recorders see), on the student's preprocessed
        ``inputs``: re-normalised for the teacher, in its memory format and ``teacher_autocast`` precision,
        without gradient unless the teacher trains. ``student_rois`` serve ``'roi_on_student_rois'``."""
        if self._teacher_input_transform is not None:
            inputs = self._teacher_input_transform(inputs)
        if self.teacher_channels_last:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        precision = contextlib.nullcontext() if self.teacher_autocast is None else torch.autocast(
            device_type=inputs.device.type, dtype=TEACHER_AUTOCAST_DTYPES[self.teacher_autocast])
        with torch.set_grad_enabled(self.teacher_trainable), precision:
            TEACHER_FORWARDS[self.teacher_forward](self.teacher, inputs, data_samples, student_rois)
