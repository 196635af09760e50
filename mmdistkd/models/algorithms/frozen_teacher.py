"""The teacher of a distillation step: its weights, inputs, precision and memory format.

A frozen teacher is held outside the distillation model's module tree, so it is in no ``state_dict``,
checkpoint, optimizer, DDP wrapper or EMA copy (``deepcopy`` shares it); the model forwards ``_apply``
(``.to()/.cuda()/.half()``), ``_set_device`` and ``train()`` to it, and it stays in eval mode under
``no_grad``. It consumes the student's preprocessed batch, re-normalised when its mean, std or channel order
differ, so batch augments such as mixup reach both alike.
"""
import contextlib
import copy
import os.path as osp
import warnings

import torch
from mmengine.logging import print_log
from mmengine.runner import CheckpointLoader, load_checkpoint

from mmdistkd.engine.safe_checkpoint import CheckpointDownloadError, hub_cache_path, verify_sha256_suffix

from .submodel import config_file

# ``teacher_autocast`` names: the precision the teacher's training-step forward runs in.
TEACHER_AUTOCAST_DTYPES = {'bf16': torch.bfloat16, 'fp16': torch.float16}
# Where OpenMMLab data preprocessors keep their BGR<->RGB switch: mmengine and mmdet, mmseg, mmpretrain.
CHANNEL_CONVERSION_ATTRIBUTES = ('_channel_conversion', 'channel_conversion', 'to_rgb')


def is_local_path(path):
    """True when mmengine loads ``path`` from the local file system: it matches no scheme registered with
    mmengine's ``CheckpointLoader`` but the fallback ``''`` (whichever loader serves that; mmdistkd
    registers its own)."""
    return CheckpointLoader._get_checkpoint_loader(path) is CheckpointLoader._get_checkpoint_loader('')


def check_teacher_ckpt(path, teacher_config=None):
    """Refuses a local ``teacher_ckpt`` that does not exist, naming the command that would train it there when
    the teacher's config file (``teacher_config``, a ``cfg_path``) is known; any scheme mmengine knows
    (``https://``, ``s3://``, ``open-mmlab://``, ...) is left to its loader."""
    if is_local_path(path) and not osp.isfile(osp.expanduser(path)):
        train_it = ''
        if teacher_config is not None:
            train_it = (f' If the teacher is not trained yet, train it there first: python tools/train.py '
                        f'{shown_path(config_file(teacher_config))} --work-dir {osp.dirname(path) or "."}.')
        raise FileNotFoundError(
            f'teacher_ckpt {path!r} does not exist.{train_it} Or point teacher_ckpt at the teacher checkpoint (a '
            'local file or a URL that mmengine can load: --cfg-options model.teacher_ckpt=...), or set it to None '
            'to distill from a randomly initialised teacher.')


def shown_path(path):
    """``path`` relative to the current directory when it lies below it (as a user types it), else absolute."""
    path = osp.realpath(path)
    relative = osp.relpath(path)
    return path if relative.startswith('..') else relative


def read_normalisation(preprocessor):
    """(mean, std, converts BGR<->RGB) of an OpenMMLab data preprocessor, mean and std as (C, 1, 1) float
    tensors, or None when it does not normalise."""
    mean, std = getattr(preprocessor, 'mean', None), getattr(preprocessor, 'std', None)
    # mmengine, mmdet, mmseg and mmpretrain register mean/std only when they normalise, and say so here.
    if not getattr(preprocessor, '_enable_normalize', mean is not None and std is not None):
        mean = std = None
    if mean is not None:
        mean, std = (torch.as_tensor(value, dtype=torch.float32).reshape(-1, 1, 1) for value in (mean, std))
    converts = any(bool(getattr(preprocessor, name, False)) for name in CHANNEL_CONVERSION_ATTRIBUTES)
    return mean, std, converts


def same_statistics(first, second):
    """Whether two (mean, std) pairs of ``read_normalisation`` normalise alike (None: no normalisation)."""
    (first_mean, first_std), (second_mean, second_std) = first, second
    if first_mean is None or second_mean is None:
        return first_mean is None and second_mean is None
    return torch.equal(first_mean, second_mean) and torch.equal(first_std, second_std)


def describe_normalisation(normalisation):
    mean, std, converts = normalisation
    if mean is None:
        return 'no normalisation (0-255 pixels)' + (', BGR<->RGB' if converts else '')
    return f'mean {rounded(mean)}, std {rounded(std)}' + (', BGR<->RGB' if converts else '')


def rounded(values):
    return [round(value, 4) for value in values.flatten().tolist()]


def check_teacher_normalisation(student_normalisation, teacher_normalisation, allow_unnormalised):
    """Build-time check of what the teacher will see. A teacher that does not normalise while the student does
    almost always means a preprocessor went missing (a model config without ``data_preprocessor`` gets its
    registry's default, which does not normalise): an error unless ``allow_unnormalised``. Statistics that
    differ beyond rounding are legitimate (e.g. a caffe-style teacher) but worth a line in the log."""
    student_mean, teacher_mean = student_normalisation[0], teacher_normalisation[0]
    student_text, teacher_text = (describe_normalisation(n) for n in (student_normalisation, teacher_normalisation))
    if student_mean is not None and teacher_mean is None and not allow_unnormalised:
        raise ValueError(
            f'The teacher\'s data preprocessor does not normalise, so the teacher would see 0-255 pixels, while the '
            f'student\'s normalises ({student_text}). Give the teacher the normalisation its weights were trained '
            'with: `teacher=dict(..., data_preprocessor=dict(mean=[...], std=[...]))` (or leave data_preprocessor '
            'out of the teacher config to use the student\'s). If the teacher really was trained on raw pixels, set '
            '`allow_unnormalised_teacher=True` in the SingleTeacherDistill model.')
    differ = (student_mean is None) != (teacher_mean is None) or student_normalisation[2] != teacher_normalisation[2]
    if not differ and student_mean is not None:
        differ = not (torch.allclose(student_mean, teacher_mean, rtol=1e-3)
                      and torch.allclose(student_normalisation[1], teacher_normalisation[1], rtol=1e-3))
    if differ:
        print_log(f'SingleTeacherDistill: the teacher\'s input normalisation differs from the student\'s; its inputs '
                  f'are re-normalised each step. Student: {student_text}. Teacher: {teacher_text}.',
                  logger='current')


def load_weights(module, ckpt, named, role, local_option):
    """Loads the checkpoint ``ckpt`` (a local path or a URL mmengine loads) strictly, weights-only, into
    ``module``, verifying a file named after its SHA-256 prefix. Errors say what ``named`` it (e.g.
    ``"teacher_ckpt 'x.pth'"``), whose weights they are (``role``: ``'teacher'`` or ``'student'``) and, for a
    failed download, the ``--cfg-options`` setting (``local_option``) that gives a local copy instead."""
    if is_local_path(ckpt):
        verify_sha256_suffix(osp.expanduser(ckpt))
    # Strict: a model that loads only partly would silently train or teach from random layers.
    try:
        load_checkpoint(module, ckpt, map_location='cpu', strict=True, revise_keys=[(r'^module\.', '')])
    except CheckpointDownloadError as error:
        raise CheckpointDownloadError(
            f'{named} cannot be downloaded ({error.__cause__ or error}). Without network access here, download '
            f'the file elsewhere, copy it to this machine and give its path: --cfg-options {local_option}') from error
    except RuntimeError as error:
        raise RuntimeError(f'{named} does not match the {role} architecture ({type(module).__name__}): '
                           f'{error}') from error
    # A download is verified in torch.hub's cache, where later runs read it.
    if ckpt.startswith(('http://', 'https://')):
        verify_sha256_suffix(hub_cache_path(ckpt))


class FrozenTeacher:
    """The teacher of a distillation step: weights, inputs, precision, memory format, and its place beside
    (or, trainable, inside) the distillation model.

    Args:
        module (BaseModel): the teacher model.
        student_preprocessor: the student's data preprocessor, whose output the teacher receives.
        ckpt (str | None): local path or URL (any scheme mmengine's ``CheckpointLoader`` knows) of the teacher
            weights, loaded strictly. ``None`` keeps the random initialisation and warns at the first forward.
        trainable (bool): the teacher trains too; then the distillation model holds it as a normal submodule
            and this object does not move, copy or freeze it.
        norm_eval (bool): keep the whole frozen teacher in eval mode (BN running statistics).
        autocast (str | None): ``'bf16'`` or ``'fp16'``: the precision of the training-step forward.
        channels_last (bool): weights and inputs in channels-last memory format.
        config (str | None): the teacher's ``cfg_path``, named in the error for a missing ``ckpt``.
        allow_unnormalised (bool): accept a teacher whose preprocessor does not normalise while the student's
            does (otherwise an error at build time: see :func:`check_teacher_normalisation`).
    """

    def __init__(self, module, student_preprocessor, ckpt=None, trainable=False, norm_eval=True, autocast=None,
                 channels_last=False, allow_unnormalised=False, config=None):
        if autocast is not None and autocast not in TEACHER_AUTOCAST_DTYPES:
            raise ValueError(f'teacher_autocast={autocast!r}; choose None or one of '
                             f'{sorted(TEACHER_AUTOCAST_DTYPES)}')
        if ckpt is not None:
            check_teacher_ckpt(ckpt, config)
        self.module = module
        self.ckpt = ckpt
        self.trainable = trainable
        self.norm_eval = norm_eval
        self.autocast = autocast
        self.channels_last = channels_last
        self._warned_random = False
        if not trainable:
            module.requires_grad_(False)
        if ckpt is not None:
            self._load(ckpt)
        if channels_last:
            # Later .to(device) calls keep the format (they preserve the strides of dense tensors).
            module.to(memory_format=torch.channels_last)
        self._student_normalisation = read_normalisation(student_preprocessor)
        self._teacher_normalisation = read_normalisation(module.data_preprocessor)
        check_teacher_normalisation(self._student_normalisation, self._teacher_normalisation, allow_unnormalised)
        self._same_statistics = same_statistics(self._student_normalisation[:2], self._teacher_normalisation[:2])
        self._converts_differ = self._student_normalisation[2] != self._teacher_normalisation[2]

    def _load(self, ckpt):
        load_weights(self.module, ckpt, f'teacher_ckpt {ckpt!r}', 'teacher', 'model.teacher_ckpt=/path/file.pth')

    # ------------------------------------------------------------------ following the distillation model
    def apply(self, fn, *args, **kwargs):
        """The model's ``_apply`` (device and dtype moves) reaches the teacher only through here."""
        if not self.trainable:
            self.module._apply(fn, *args, **kwargs)

    def set_device(self, device):
        if not self.trainable and hasattr(self.module, '_set_device'):
            self.module._set_device(device)

    def train(self, mode=True):
        if not self.trainable:
            self.module.train(False if self.norm_eval else mode)

    def __deepcopy__(self, memo):
        # EMA copies the model: a frozen teacher is shared; a trainable one is part of the model, copied.
        if not self.trainable:
            return self
        copied = self.__class__.__new__(self.__class__)
        memo[id(self)] = copied
        copied.__dict__.update(copy.deepcopy(self.__dict__, memo))
        return copied

    # ------------------------------------------------------------------ the forward
    def transform_inputs(self, inputs):
        """The student's preprocessed ``inputs`` (N, C, H, W) as the teacher's own preprocessor would have
        produced them from the same images: un-normalised with the student's mean/std, channels flipped when
        only one of the two converts BGR<->RGB (as the preprocessors do, 3-channel inputs only), normalised
        with the teacher's. ``inputs`` itself when nothing differs."""
        flip = self._converts_differ and inputs.shape[1] == 3
        if self._same_statistics and not flip:
            return inputs
        s_mean, s_std, _ = self._student_normalisation
        t_mean, t_std, _ = self._teacher_normalisation
        raw = inputs * s_std.to(inputs) + s_mean.to(inputs) if s_mean is not None else inputs
        if flip:
            raw = raw.flip(1)
        return (raw - t_mean.to(inputs)) / t_std.to(inputs) if t_mean is not None else raw

    def run(self, forward, inputs, data_samples):
        """Runs the teacher-forward strategy ``forward`` on the student's preprocessed ``inputs``: transformed
        for the teacher, in its memory format and ``autocast`` precision, without gradient unless it trains."""
        if self.ckpt is None and not self._warned_random:
            warnings.warn('SingleTeacherDistill: teacher_ckpt is None, so the student is distilled from a '
                          'randomly initialised teacher. Set teacher_ckpt for real training.')
            self._warned_random = True
        inputs = self.transform_inputs(inputs)
        if self.channels_last:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        precision = contextlib.nullcontext() if self.autocast is None else torch.autocast(
            device_type=inputs.device.type, dtype=TEACHER_AUTOCAST_DTYPES[self.autocast])
        with torch.set_grad_enabled(self.trainable), precision:
            forward(self.module, inputs, data_samples)


class FollowedByFrozenTeachers:
    """Mixin for a model (``BaseModel``) whose ``frozen_teachers()`` live outside its module tree: moving the model
    (``.to``, ``.cuda``, ``.half``, mmengine's device placement) and switching train / eval mode reach them too."""

    def frozen_teachers(self):
        """The model's ``FrozenTeacher`` objects."""
        raise NotImplementedError

    def _apply(self, fn, *args, **kwargs):
        for teacher in self.frozen_teachers():
            teacher.apply(fn, *args, **kwargs)
        return super()._apply(fn, *args, **kwargs)

    def _set_device(self, device):
        super()._set_device(device)
        for teacher in self.frozen_teachers():
            teacher.set_device(device)

    def train(self, mode=True):
        super().train(mode)
        for teacher in self.frozen_teachers():
            teacher.train(mode)
        return self
