"""The contract of a distillation loss, in one place.

A distillation loss subclasses ``DistillLoss`` and declares, as class attributes:

- ``teacher_inputs``: the ``forward`` arguments that carry teacher predictions. Calling the loss detaches
  them when ``self.teacher_detach`` is True (the default; MMRazor's ``teacher_detach`` option).
- ``takes_data_samples``: True if ``forward`` has a ``data_samples`` parameter that the distiller fills
  with the batch's data samples (ground truth), False if it has no such parameter. Checked against the
  signature when the class is created, so the two cannot drift apart.
- ``compares_class_scores``: True if the loss compares student and teacher class scores; the distiller
  then checks at build that both recorded heads have the same ``num_classes``.

Calling the loss (``loss(...)``, not ``loss.forward(...)``) runs ``forward`` in float32 with autocast off:
every floating tensor argument, also inside lists and tuples, is cast to float32 (Pearson correlations and
KL on fp16 probabilities lose almost every significant digit). ``Fp32Loss`` gives only this part, for
losses that are not distillation losses (e.g. task losses inside a head).

``forward`` returns the weighted loss as a tensor, or a dict with the weighted loss under ``'loss'`` and
extra values to log under their own keys (e.g. DPK's prior ratio). Extra keys must not contain ``'loss'``:
mmengine adds every such key to the total that is optimised.
"""
import inspect

import torch
from torch import nn


def fp32(value):
    """Floating tensors as float32 (a no-op for float32), also inside lists and tuples; others pass through."""
    if isinstance(value, (list, tuple)):
        return type(value)(fp32(v) for v in value)
    return value.float() if torch.is_tensor(value) and value.is_floating_point() else value


def detached(value):
    """Tensors detached from the graph, also inside lists and tuples; others pass through."""
    if isinstance(value, (list, tuple)):
        return type(value)(detached(v) for v in value)
    return value.detach() if torch.is_tensor(value) else value


def check_same_shape(student, teacher):
    """Raises ``ValueError`` naming both shapes when student and teacher predictions differ in shape."""
    if student.shape != teacher.shape:
        raise ValueError(f'student predictions of shape {tuple(student.shape)} and teacher predictions of '
                         f'shape {tuple(teacher.shape)} differ')


def check_same_levels(preds_S, preds_T):
    """Both sides must be a tensor, or lists (e.g. FPN levels) of the same length."""
    if isinstance(preds_S, (list, tuple)) != isinstance(preds_T, (list, tuple)):
        raise ValueError('student and teacher predictions must both be tensors or both be lists')
    if isinstance(preds_S, (list, tuple)) and len(preds_S) != len(preds_T):
        raise ValueError(f'student has {len(preds_S)} levels of predictions and teacher has {len(preds_T)}')


def forward_parameter_names(loss):
    """The parameter names of ``loss.forward`` (a class or an instance), ``self`` excluded."""
    names = list(inspect.signature(loss.forward).parameters)
    return names[1:] if isinstance(loss, type) else names


def check_loss_contract(loss):
    """Raises ``TypeError`` when the contract attributes of ``loss`` (a ``DistillLoss`` subclass or instance)
    do not match its ``forward``."""
    cls = loss if isinstance(loss, type) else type(loss)
    where = f'{cls.__module__}.{cls.__qualname__}'
    for flag in ('takes_data_samples', 'compares_class_scores'):
        if not isinstance(getattr(loss, flag), bool):
            raise TypeError(f'{where}.{flag} must be True or False, got {getattr(loss, flag)!r}')
    params = forward_parameter_names(loss)
    if loss.takes_data_samples != ('data_samples' in params):
        fix = ('add a data_samples parameter to forward' if loss.takes_data_samples else
               'set takes_data_samples = True to receive the batch\'s data samples, or rename the parameter')
        raise TypeError(f'{where}.takes_data_samples is {loss.takes_data_samples} but its forward'
                        f'{inspect.signature(loss.forward)} {"lacks" if loss.takes_data_samples else "has"} '
                        f'a data_samples parameter: {fix}')
    if loss.teacher_inputs != cls.teacher_inputs:
        raise TypeError(f'{where}.teacher_inputs is changed on the instance; declare it on the class, whose '
                        'value the call reads')
    if isinstance(loss.teacher_inputs, str):
        raise TypeError(f'{where}.teacher_inputs must be a tuple of argument names, got the string '
                        f'{loss.teacher_inputs!r}')
    unknown = [name for name in loss.teacher_inputs if name not in params]
    if unknown:
        raise TypeError(f'{where}.teacher_inputs names {unknown}, which its forward'
                        f'{inspect.signature(loss.forward)} does not take')


class Fp32Loss(nn.Module):
    """A loss module whose call runs ``forward`` in float32 with autocast off (see the module docstring)."""

    def __call__(self, *args, **kwargs):
        device_type = 'cuda' if torch.cuda.is_available() and torch.is_autocast_enabled('cuda') else 'cpu'
        with torch.autocast(device_type=device_type, enabled=False):
            return super().__call__(*fp32(args), **{name: fp32(value) for name, value in kwargs.items()})


class DistillLoss(Fp32Loss):
    """Base class of distillation losses (see the module docstring for the contract).

    Args:
        teacher_detach (bool): Detach the ``teacher_inputs`` arguments before ``forward`` sees them.
    """

    teacher_inputs = ()
    takes_data_samples = False
    compares_class_scores = False
    _teacher_positions = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        check_loss_contract(cls)
        # Positions, so that positional calls are detached too without binding the signature every step.
        params = list(inspect.signature(cls.forward).parameters.values())[1:]
        positional = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        cls._teacher_positions = tuple(
            (name, positional.index(name) if name in positional else None) for name in cls.teacher_inputs)

    def __init__(self, teacher_detach=True):
        super().__init__()
        self.teacher_detach = teacher_detach

    def __call__(self, *args, **kwargs):
        if self.teacher_detach:
            args = list(args)
            for name, position in self._teacher_positions:
                if name in kwargs:
                    kwargs[name] = detached(kwargs[name])
                elif position is not None and position < len(args):
                    args[position] = detached(args[position])
        return super().__call__(*args, **kwargs)
