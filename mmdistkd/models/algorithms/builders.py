"""The parts of a distillation algorithm built from its config: the student (with the algorithm's
``data_preprocessor`` and MMRazor's ``pretrained=True``), the distiller, and which weights the teacher loads."""
import copy
import logging

import torch
from mmengine.logging import print_log
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import MODELS as ROOT_MODELS

from .frozen_teacher import describe_normalisation, load_weights, read_normalisation, same_statistics
from .submodel import build_resolved, pretrained_weights, resolve_submodel


def is_step_preprocessor(data_preprocessor):
    """Whether a distillation model's ``data_preprocessor`` is the step's own (MMRazor's semantics: it names its
    ``type``, or is built) rather than settings completing the student's config."""
    return isinstance(data_preprocessor, torch.nn.Module) or (
        isinstance(data_preprocessor, dict) and 'type' in data_preprocessor)


def build_student(architecture, data_preprocessor=None):
    """(student, the preprocessor a teacher without its own takes: a config dict, a module or None).

    The student's ``data_preprocessor`` serves the whole training step (and validation). The distillation model's
    ``data_preprocessor``:

    - without ``type``: completes the student's config where that has none (the Runner hands a config's top-level
      ``data_preprocessor`` to the model: mmpretrain configs keep it there);
    - with ``type`` (or built): MMRazor's ``BaseAlgorithm`` semantics, the step's preprocessor, built as given
      (not merged into the student's model config, whose class may add arguments it does not take, e.g.
      mmpretrain's ``batch_augments``), replacing the student's own. Where the student's config names a
      preprocessor of the same ``type``, its settings that ``data_preprocessor`` leaves out are kept: mmseg
      configs keep a typed preprocessor at the top level, without the crop ``size`` of their model's.

    A student ``cfg_path`` with ``pretrained=True`` loads its model index's weights (``pretrained_weights``).
    """
    step_preprocessor = data_preprocessor if is_step_preprocessor(data_preprocessor) else None
    teacher_preprocessor = data_preprocessor
    if isinstance(architecture, torch.nn.Module):
        student, scope, own_preprocessor = architecture, getattr(architecture, '_mmdistkd_scope', None), True
    else:
        student_cfg, scope = resolve_submodel(architecture, 'student', None if step_preprocessor else data_preprocessor)
        own = student_cfg.get('data_preprocessor')
        own_preprocessor = own is not None
        if isinstance(step_preprocessor, dict) and own_preprocessor and own.get('type') == step_preprocessor['type']:
            student_cfg['data_preprocessor'] = {**own, **copy.deepcopy(step_preprocessor)}
            step_preprocessor = None
        # Copied before the student's build, which may alter it (RandomBatchAugment appends to its probs).
        teacher_preprocessor = copy.deepcopy(student_cfg.get('data_preprocessor'))
        student = build_resolved(student_cfg, scope, 'student')
        weights = pretrained_weights(architecture, 'student')
        if weights is not None:
            load_weights(student, weights, f'the student\'s pretrained weights {weights!r}', 'student',
                         'load_from=/path/file.pth model.architecture.pretrained=False')
            student._is_init = True  # as mmengine.hub.get_model: init_weights must not overwrite them
    if step_preprocessor is not None:
        if isinstance(step_preprocessor, dict):
            with ROOT_MODELS.switch_scope_and_registry(scope) as registry:
                step_preprocessor = registry.build(step_preprocessor)
        if own_preprocessor:
            warn_if_normalisation_differs(student.data_preprocessor, step_preprocessor)
        student.data_preprocessor = teacher_preprocessor = step_preprocessor
    if not torch.cuda.is_available():
        # SyncBN (mmseg's default) cannot run on CPU tensors under torch.distributed.
        student = revert_sync_batchnorm(student)
    return student, teacher_preprocessor


def warn_if_normalisation_differs(own_preprocessor, step_preprocessor):
    """A step preprocessor that normalises unlike the student's own trains a student that its own config would
    test wrongly (e.g. MMRazor's CRD and Factor Transfer CIFAR-10 configs normalise with ImageNet statistics)."""
    own, step = read_normalisation(own_preprocessor), read_normalisation(step_preprocessor)
    if own[2] != step[2] or not same_statistics(own[:2], step[:2]):
        print_log(f'The distillation model\'s data_preprocessor ({describe_normalisation(step)}) replaces the '
                  f'student\'s own ({describe_normalisation(own)}), as in MMRazor: the student trains on the '
                  'former, so test the exported student (tools/extract_student.py) with that normalisation.',
                  logger='current', level=logging.WARNING)


def choose_teacher_weights(teacher, teacher_ckpt):
    """``teacher_ckpt``, or, when that is None, the weights of the teacher's ``pretrained=True``."""
    weights = pretrained_weights(teacher, 'teacher')
    if weights is None or teacher_ckpt is None:
        return weights or teacher_ckpt
    print_log(f'The teacher\'s weights: teacher_ckpt {teacher_ckpt!r}, not those of its pretrained=True '
              f'({weights}), which MMRazor loads first and teacher_ckpt then overwrites; they are not loaded.',
              logger='current')
    return teacher_ckpt
