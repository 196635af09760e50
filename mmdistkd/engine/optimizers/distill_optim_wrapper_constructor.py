"""An optimizer and schedule of their own for the distiller's trainable modules (DPK's transformers, FGD's context
blocks), while the student keeps its own."""
import copy

from mmengine.model import is_model_wrapper
from mmengine.optim import build_optim_wrapper
from torch import nn

from mmdistkd.registry import OPTIM_WRAPPER_CONSTRUCTORS

from .distill_optim_wrapper_dict import DistillOptimWrapperDict

DISTILLER_NAME = 'distiller'
ENTRIES = ('architecture', DISTILLER_NAME)


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class SeparateDistillerOptimWrapperConstructor:
    """Builds a ``DistillOptimWrapperDict`` for ``SingleTeacherDistill``: ``architecture`` optimizes every
    parameter outside the distiller (the student, and the teacher when ``teacher_trainable=True``),
    ``distiller`` the distiller's. Each entry is a whole optimizer wrapper config (``type``, ``optimizer``,
    ``paramwise_cfg``, ``clip_grad``, ``accumulative_counts``, ``loss_scale``, ``dtype``, even a
    ``constructor`` of its own), built by mmengine's ``build_optim_wrapper`` on a module holding only its
    part, with the parameter names of the whole model (``architecture.backbone...``,
    ``distiller.distill_losses...``), so ``paramwise_cfg.custom_keys`` read as with one optimizer.

    Example::

        optim_wrapper = dict(
            constructor='mmdistkd.SeparateDistillerOptimWrapperConstructor',
            architecture=dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=1e-4)),
            distiller=dict(optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.95), weight_decay=1e-4),
                           paramwise_cfg=dict(norm_decay_mult=0., bias_decay_mult=0.)))
        param_scheduler = dict(architecture=[...], distiller=[...])  # or one list for both
    """

    def __init__(self, optim_wrapper_cfg, paramwise_cfg=None):
        if paramwise_cfg is not None:
            raise ValueError('SeparateDistillerOptimWrapperConstructor: move paramwise_cfg into '
                             f'optim_wrapper.{ENTRIES[0]} and optim_wrapper.{ENTRIES[1]}; each has its own')
        unknown = sorted(set(optim_wrapper_cfg) - set(ENTRIES))
        missing = [entry for entry in ENTRIES if entry not in optim_wrapper_cfg]
        if unknown or missing:
            raise ValueError(f'SeparateDistillerOptimWrapperConstructor needs exactly the optim_wrapper entries '
                             f'{ENTRIES} (one optimizer wrapper config each); missing {missing}, unknown {unknown}')
        self.optim_wrapper_cfgs = {entry: copy.deepcopy(optim_wrapper_cfg[entry]) for entry in ENTRIES}

    def __call__(self, model):
        model = model.module if is_model_wrapper(model) else model
        children = dict(model.named_children())
        if DISTILLER_NAME not in children:
            raise ValueError(f'SeparateDistillerOptimWrapperConstructor optimizes a distillation model with a '
                             f'`{DISTILLER_NAME}` submodule; {type(model).__name__} has none. Use a single '
                             'optim_wrapper for this model.')
        parts = {DISTILLER_NAME: nn.ModuleDict({DISTILLER_NAME: children.pop(DISTILLER_NAME)}),
                 ENTRIES[0]: nn.ModuleDict(children)}
        if not any(param.requires_grad for param in parts[DISTILLER_NAME].parameters()):
            raise ValueError('the distiller has no trainable parameters (its losses have no modules of their own), '
                             'so it needs no optimizer: use a single optim_wrapper without the '
                             'SeparateDistillerOptimWrapperConstructor')
        check_disjoint(parts)
        return DistillOptimWrapperDict(
            **{entry: build_optim_wrapper(parts[entry], self.optim_wrapper_cfgs[entry]) for entry in ENTRIES})


def check_disjoint(parts):
    """Refuses a distiller parameter that is also the student's (a distiller module holding a student module):
    both optimizers would step it."""
    outside = {id(param): name for name, param in parts[ENTRIES[0]].named_parameters()}
    for name, param in parts[DISTILLER_NAME].named_parameters():
        if id(param) in outside:
            raise ValueError(f'{name} is also {outside[id(param)]}: with its own optimizer the distiller must not '
                             "hold the student's (or a trainable teacher's) parameters, or both optimizers step them")


def optim_wrapper_cfg_for(optim_wrapper_cfg, entry):
    """The optimizer wrapper config that trains the part ``entry`` (``'architecture'`` or ``'distiller'``)
    under ``optim_wrapper_cfg``: its own entry in this constructor's form, else the whole (single) config.
    For tools that build an optimizer over one part alone (tools/analysis/benchmark.py)."""
    if entry not in ENTRIES:
        raise ValueError(f'entry must be one of {ENTRIES}, got {entry!r}')
    separate = 'optimizer' not in optim_wrapper_cfg and set(ENTRIES) <= set(optim_wrapper_cfg)
    return copy.deepcopy(optim_wrapper_cfg[entry] if separate else optim_wrapper_cfg)
