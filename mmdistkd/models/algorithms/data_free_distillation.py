"""Data-free distillation (MMRazor's ``DataFreeDistillation`` and ``DAFLDataFreeDistillation``): a generator
synthesises the images the student learns from, trained against the student (DFAD, ZSKT) or from the teachers'
responses alone (DAFL); no training image reaches any model, the dataloader only sets the batch size.

- DAFL: Chen et al., "Data-Free Learning of Student Networks", ICCV 2019, arXiv 1904.01186.
- DFAD: Fang et al., "Data-Free Adversarial Distillation", arXiv 1912.11006.
- ZSKT: Micaelli and Storkey, "Zero-shot Knowledge Transfer via Adversarial Belief Matching", NeurIPS 2019,
  arXiv 1905.09768.

Config (MMRazor's keys)::

    model = dict(
        type='DataFreeDistillation',
        architecture=dict(cfg_path='mmpretrain::resnet/resnet18_8xb16_cifar10.py'),
        teachers=dict(res34=dict(build_cfg=dict(cfg_path='mmpretrain::resnet/resnet34_8xb16_cifar10.py'),
                                 ckpt_path='https://.../resnet34.pth')),
        generator=dict(type='DAFLGenerator', img_size=32, latent_dim=256, hidden_channels=128),
        distiller=dict(type='ConfigurableDistiller', ...),            # trains the student
        generator_distiller=dict(type='ConfigurableDistiller', ...),  # trains the generator
        student_iter=5, student_train_first=True)
    optim_wrapper = dict(constructor=..., architecture=dict(optimizer=...), generator=dict(optimizer=...))

Teacher recorders name their modules from the teachers' dict (``source='res34.head.fc'``). The teachers are
``FrozenTeacher``s, held outside the module tree (in no state_dict, optimizer or DDP wrapper), each fed the
generated images re-normalised to its own preprocessing. The student and teachers run ``mode='tensor'``: MMRazor
runs ``mode='loss'`` on the batch's labels and drops the task losses; the recorded modules see the same inputs.
"""
import contextlib

import torch
from mmengine.model import BaseModel, is_model_wrapper, revert_sync_batchnorm
from mmengine.optim import OptimWrapperDict
from torch import nn

from mmdistkd.registry import MODELS, build_in_mmdistkd_scope
from mmdistkd.utils.student import accept_plain_student_checkpoint

from .builders import build_student, choose_teacher_weights
from .frozen_teacher import FollowedByFrozenTeachers, FrozenTeacher
from .submodel import build_submodel

TEACHER_KEYS = {'build_cfg', 'ckpt_path'}
OPTIMIZED_PARTS = ('architecture', 'generator')


@MODELS.register_module()
class DataFreeDistillation(FollowedByFrozenTeachers, BaseModel):
    """Each training step trains the generator once and the student ``student_iter`` times, each on a batch of
    freshly generated images (``student_train_first``: the student's steps come first).

    - Generator step: the ``generator_distiller``'s losses on the generated images, gradients reaching the
      generator through the teachers and the student (whose own weights get none; it runs only when the
      generator distiller records from it), one update of the generator's optimizer.
    - Student step: new images, no gradient to the generator; the ``distiller``'s losses, teachers without
      gradient, one update of the student's optimizer.

    The latent codes come from torch's global random state, as in MMRazor: a run with a fixed ``randomness.seed``
    repeats; ``diff_rank_seed=True`` (MMRazor's configs) gives every rank images of its own.

    Unlike MMRazor, and as the DFAD and ZSKT authors' code (which zeroes the student's gradients before each of
    its updates), the generator's loss leaves no gradient in the student's weights: MMRazor's generator backward
    accumulates one there, which its next student update adds to its own.

    Args:
        architecture (dict | nn.Module): the student: a model dict, or ``cfg_path`` plus overrides (and
            MMRazor's ``pretrained``), as ``SingleTeacherDistill``'s.
        teachers (dict): name -> ``dict(build_cfg=<model dict, or cfg_path plus overrides>, ckpt_path=<weights>)``.
            The weights: ``ckpt_path`` (a local path or URL, loaded strictly), else those the model index lists
            for a ``build_cfg`` with ``cfg_path`` and ``pretrained=True``, else a random initialisation (a warning
            at the first step).
        generator (dict): the image generator (``DAFLGenerator``, ``ZSKTGenerator``).
        distiller (dict): the ``ConfigurableDistiller`` whose losses train the student.
        generator_distiller (dict): the ``ConfigurableDistiller`` whose losses train the generator (losses the
            generator should maximise take a negative ``loss_weight``; teacher inputs that must pass gradients
            to the generator need ``teacher_detach=False``).
        student_iter (int): student steps per training step.
        student_train_first (bool): the student's steps before the generator's.
        data_preprocessor (dict, optional): as ``SingleTeacherDistill``'s: with ``type`` (MMRazor's configs) the
            student's preprocessor, which validation uses, else settings completing the student's config.
        allow_unnormalised_teacher (bool): accept teachers whose preprocessor does not normalise while the
            student's does (otherwise an error at build time).
        init_cfg (dict, optional): mmengine initialisation config.

    Optimizers: an ``OptimWrapperDict`` with an ``architecture`` (student) and a ``generator`` entry, each with
    its own schedule; MMRazor's configs wrap the model in ``MMSeparateDistributedDataParallel``, which gives the
    student and the generator a DDP wrapper each.
    """

    def __init__(self, architecture, teachers, generator, distiller, generator_distiller, student_iter=1,
                 student_train_first=False, data_preprocessor=None, init_cfg=None, allow_unnormalised_teacher=False):
        if isinstance(student_iter, bool) or not isinstance(student_iter, int) or student_iter < 1:
            raise ValueError(f'student_iter={student_iter!r}; give the number of student steps per training step, '
                             'an int from 1')
        check_teachers_config(teachers)
        student, preprocessor_for_teachers = build_student(architecture, data_preprocessor)
        teacher_models = {name: build_teacher(name, cfg['build_cfg'], preprocessor_for_teachers)
                          for name, cfg in teachers.items()}
        super().__init__(data_preprocessor=student.data_preprocessor, init_cfg=init_cfg)
        self.architecture = student
        # A plain dict: the teachers stay out of the module tree (and an EMA copy shares them).
        self.frozen_teachers_by_name = {
            name: FrozenTeacher(model, student.data_preprocessor, ckpt=teacher_weights(teachers[name]),
                                allow_unnormalised=allow_unnormalised_teacher, config=config_path(teachers[name]))
            for name, model in teacher_models.items()}
        self.student_iter = student_iter
        self.student_train_first = student_train_first
        self.generator = build_in_mmdistkd_scope(generator)  # built, as the distillers, in mmdistkd's scope
        self.distiller = build_in_mmdistkd_scope(distiller)
        self.generator_distiller = build_in_mmdistkd_scope(generator_distiller)
        if not self.distiller.student_recorders.recorders:
            raise ValueError('distiller has no student_recorders: its losses train the student, so they need the '
                             "student's outputs (e.g. student_recorders=dict(fc=dict(type='ModuleOutputs', "
                             "source='head.fc')))")
        teachers_tree = self.teachers
        for each in (self.distiller, self.generator_distiller):
            each.prepare(student, teachers_tree)
        self._register_load_state_dict_pre_hook(accept_plain_student_checkpoint)
        self.train()

    @property
    def student(self):
        return self.architecture

    @property
    def teachers(self):
        """The teachers as one ``nn.ModuleDict`` by name, the tree the teacher recorders' sources name; built
        on each call, so that no module holds it."""
        return nn.ModuleDict({name: teacher.module for name, teacher in self.frozen_teachers_by_name.items()})

    def frozen_teachers(self):
        return list(self.frozen_teachers_by_name.values())

    # ------------------------------------------------------------------ forward (validation, export)
    def forward(self, inputs, data_samples=None, mode='tensor'):
        return self.student(inputs, data_samples, mode=mode)

    # ------------------------------------------------------------------ training
    def train_step(self, data, optim_wrapper):
        check_optim_wrapper(optim_wrapper)
        steps = [(self.train_generator, 'generator'), (self.train_student, 'architecture')]
        log_vars = {}
        for step, part in reversed(steps) if self.student_train_first else steps:
            log_vars.update(step(data, optim_wrapper[part])[1])
        return log_vars

    def train_student(self, data, optim_wrapper):
        """``student_iter`` updates of the student, each on new images; returns the last (loss, log vars)."""
        batch_size = len(data['inputs'])
        for _ in range(self.student_iter):
            with optim_wrapper.optim_context(self.student):
                with torch.no_grad():
                    images = unwrapped(self.generator)(batch_size=batch_size)
                loss, log_vars = self.parse_losses(self.distill_losses(images, trains_generator=False))
            optim_wrapper.update_params(loss)
        return loss, prefixed(log_vars, 'distill')

    def train_generator(self, data, optim_wrapper):
        """One update of the generator; returns its (loss, log vars)."""
        with optim_wrapper.optim_context(self.generator):
            images = self.generator(batch_size=len(data['inputs']))
            loss, log_vars = self.parse_losses(self.distill_losses(images, trains_generator=True))
        optim_wrapper.update_params(loss)
        return loss, prefixed(log_vars, 'generator')

    def distill_losses(self, images, trains_generator):
        """The losses of the ``generator_distiller`` (``trains_generator``) or of the ``distiller`` on ``images``,
        from the models it records. For the generator's update gradients reach the images through the teachers
        and the student, whose own weights get none; for the student's, the student runs with its DDP wrapper,
        if any, and the teachers without gradient."""
        distiller = unwrapped(self.generator_distiller if trains_generator else self.distiller)
        if distiller.student_recorders.recorders:
            student = unwrapped(self.student) if trains_generator else self.student
            weights = frozen_parameters(student) if trains_generator else contextlib.nullcontext()
            with distiller.student_recorders, weights:
                student(images, None, mode='tensor')
        if distiller.teacher_recorders.recorders:
            with distiller.teacher_recorders:
                self.forward_teachers(images, with_grad=trains_generator)
        return distiller.compute_distill_losses()

    def forward_teachers(self, images, with_grad):
        """Every teacher on ``images`` (its inputs, precision and memory format as ``FrozenTeacher`` sets them),
        with gradient to the images when ``with_grad``; never to its own weights, which are frozen."""
        def forward(module, inputs, data_samples):
            with torch.set_grad_enabled(with_grad):
                module(inputs, data_samples, mode='tensor')

        for teacher in self.frozen_teachers_by_name.values():
            teacher.run(forward, images, None)


@MODELS.register_module()
class DAFLDataFreeDistillation(DataFreeDistillation):
    """DAFL's step: one batch of generated images serves both updates. The generator's losses (from the teachers'
    responses) and the student's (on the same images, detached) are computed, then the generator and the student
    are updated once each. ``student_iter`` and ``student_train_first`` do not apply (MMRazor ignores them; here
    they must keep their defaults). The student runs once per step, as in the DAFL authors' code; MMRazor's also
    runs it, unrecorded, in the generator's part, which updates its BN statistics a second time."""

    def __init__(self, *args, student_iter=1, student_train_first=False, **kwargs):
        if student_iter != 1 or student_train_first:
            raise ValueError(f'DAFLDataFreeDistillation updates the student once per step on the generator\'s '
                             f'images: student_iter={student_iter!r} and student_train_first={student_train_first!r} '
                             'do not apply; remove them (or use DataFreeDistillation)')
        super().__init__(*args, **kwargs)

    def train_step(self, data, optim_wrapper):
        check_optim_wrapper(optim_wrapper)
        generator_optim, student_optim = optim_wrapper['generator'], optim_wrapper['architecture']
        with generator_optim.optim_context(self.generator):
            images = self.generator(batch_size=len(data['inputs']))
            generator_loss, generator_vars = self.parse_losses(
                self.distill_losses(images, trains_generator=True))
        with student_optim.optim_context(self.student):
            student_loss, student_vars = self.parse_losses(
                self.distill_losses(images.detach(), trains_generator=False))
        generator_optim.update_params(generator_loss)
        student_optim.update_params(student_loss)
        return {**prefixed(generator_vars, 'generator'), **prefixed(student_vars, 'distill')}


# ---------------------------------------------------------------------- building
def check_teachers_config(teachers):
    form = 'name -> dict(build_cfg=<the teacher model>, ckpt_path=<its weights, optional>)'
    if not isinstance(teachers, dict) or not teachers:
        raise TypeError(f'teachers must be a non-empty dict of {form}; got {teachers!r}')
    for name, cfg in teachers.items():
        if not isinstance(cfg, dict) or 'build_cfg' not in cfg or set(cfg) - TEACHER_KEYS:
            raise ValueError(f'teachers[{name!r}] must be dict(build_cfg=..., ckpt_path=...) ({form}); got {cfg!r}')


def teacher_weights(teacher_cfg):
    """The teacher's ``ckpt_path``, else the weights of its ``build_cfg``'s ``pretrained=True``, else None."""
    return choose_teacher_weights(teacher_cfg['build_cfg'], teacher_cfg.get('ckpt_path'))


def config_path(teacher_cfg):
    """The teacher's config file (``cfg_path``) where its ``build_cfg`` names one, for error messages."""
    build_cfg = teacher_cfg['build_cfg']
    return build_cfg.get('cfg_path') if isinstance(build_cfg, dict) else None


def build_teacher(name, build_cfg, data_preprocessor):
    """The teacher ``name`` from its ``build_cfg`` (a built module as it is), with ``data_preprocessor`` where its
    config has none."""
    if isinstance(build_cfg, nn.Module):
        return build_cfg
    teacher = build_submodel(build_cfg, f'teacher {name!r}', data_preprocessor)
    # SyncBN (mmseg's default) cannot run on CPU tensors under torch.distributed.
    return teacher if torch.cuda.is_available() else revert_sync_batchnorm(teacher)


# ---------------------------------------------------------------------- training helpers
def check_optim_wrapper(optim_wrapper):
    if not isinstance(optim_wrapper, OptimWrapperDict) or not set(OPTIMIZED_PARTS) <= set(optim_wrapper.keys()):
        raise TypeError(f'data-free distillation updates the student and the generator with optimizers of their '
                        f'own: it needs an OptimWrapperDict with the entries {OPTIMIZED_PARTS}, got '
                        f'{type(optim_wrapper).__name__}. Give optim_wrapper a constructor that builds one per '
                        'submodule (MMRazor\'s SeparateOptimWrapperConstructor) with architecture=dict(optimizer='
                        '...) and generator=dict(optimizer=...)')


def unwrapped(module):
    """``module`` without its DDP wrapper (``MMSeparateDistributedDataParallel`` wraps each submodule)."""
    return module.module if is_model_wrapper(module) else module


@contextlib.contextmanager
def frozen_parameters(module):
    """``module``'s trainable parameters without gradient for the span of the block: a forward in it passes
    gradients through the module to its inputs without computing (or accumulating) the parameters' own."""
    trainable = [param for param in module.parameters() if param.requires_grad]
    for param in trainable:
        param.requires_grad_(False)
    try:
        yield
    finally:
        for param in trainable:
            param.requires_grad_(True)


def prefixed(log_vars, prefix):
    return {f'{prefix}.{name}': value for name, value in log_vars.items()}
