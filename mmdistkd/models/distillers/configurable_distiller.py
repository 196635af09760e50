"""ConfigurableDistiller: recorders -> loss_forward_mappings (-> connectors) -> distill losses.

MMRazor's config keys::

    distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=dict(cls=dict(type='ModuleOutputs', source='bbox_head.retina_cls')),
        teacher_recorders=dict(cls=dict(type='ModuleOutputs', source='bbox_head.retina_cls')),
        connectors=dict(),
        distill_losses=dict(loss_dist=dict(type='DISTLoss', mode='sigmoid_anchor', num_classes=80)),
        loss_forward_mappings=dict(loss_dist=dict(
            logits_S=dict(from_student=True, recorder='cls', record_idx='all'),
            logits_T=dict(from_student=False, recorder='cls', record_idx='all'))))

A mapping item takes ``from_student``, ``recorder``, ``record_idx`` (an int, a list of ints, or ``'all'``:
a list with one tensor per call), ``data_idx``, ``connector`` (the name of an entry of ``connectors``
applied to the recorded value) and ``connector_idx`` (an element of the connector's output, for connectors
that return several tensors such as BYOT's feature and logits; without a connector, of the record, as in MMRazor).

Losses follow the contract of ``mmdistkd.models.losses.DistillLoss`` (docs/adding_a_loss.md): one with
``takes_data_samples = True`` also receives the batch's data samples (ground truth); one with
``compares_class_scores = True`` makes ``check_num_classes`` compare the recorded heads' ``num_classes``.
Every ``distill_losses`` name contains ``'loss'`` (``loss_dist``, ...): mmengine optimises only such keys, so any
other name is refused at build time. A loss returns a tensor, logged and summed under its config name, or a dict
whose ``'loss'`` entry is that and whose other entries are logged under their own keys (which must not contain
``'loss'``).

A plain ``nn.Module`` loss (e.g. MMRazor's or another package's) works as a ``DistillLoss`` with both
attributes False: it gets only its mapped arguments.
"""
import inspect

import torch
from mmengine.model import BaseModule
from torch import nn

from mmdistkd.models.losses.base import DistillLoss, check_loss_contract
from mmdistkd.models.recorders import RecorderManager
from mmdistkd.models.recorders.recorders import ModuleRecorder
from mmdistkd.registry import MODELS, build_in_mmdistkd_scope

MAPPING_KEYS = {'from_student', 'recorder', 'record_idx', 'data_idx', 'connector', 'connector_idx'}


def forward_parameters(module):
    """(accepted names, required names, takes **kwargs) of ``module.forward``."""
    params = inspect.signature(module.forward).parameters.values()
    accepted = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    required = {p.name for p in params
                if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    takes_kwargs = any(p.kind is p.VAR_KEYWORD for p in params)
    return accepted, required, takes_kwargs


def build_loss(loss_name, cfg):
    """The loss of ``distill_losses[loss_name]``: a ``DistillLoss`` whose attributes match its ``forward``
    (checked again here: an instance may override them), or a plain ``nn.Module``."""
    loss = build_in_mmdistkd_scope(cfg)
    if isinstance(loss, DistillLoss):
        check_loss_contract(loss)
    elif not isinstance(loss, nn.Module):
        raise TypeError(f'distill_losses[{loss_name!r}] built a {type(loss).__name__}, which is not a loss '
                        'module: a distill loss must be a torch.nn.Module, best a subclass of '
                        'mmdistkd.models.losses.DistillLoss')
    return loss


def build_connector(cfg):
    """A connector, with its ``init_cfg`` (if any) applied now: the Runner's ``init_weights`` does not reach it."""
    connector = build_in_mmdistkd_scope(cfg)
    if getattr(connector, 'init_cfg', None):
        connector.init_weights()
    return connector


def describe(value):
    """A short description of a recorded value for error messages: shapes, also inside lists."""
    if torch.is_tensor(value):
        return f'Tensor{tuple(value.shape)}'
    if isinstance(value, (list, tuple)):
        return f'{type(value).__name__}[' + ', '.join(describe(v) for v in value) + ']'
    return type(value).__name__


def nearest_num_classes(model, module_name):
    """``num_classes`` of the module named ``module_name`` or of its closest ancestor that has one."""
    parts = module_name.split('.')
    for depth in range(len(parts), -1, -1):
        owner = model.get_submodule('.'.join(parts[:depth])) if depth else model
        if isinstance(getattr(owner, 'num_classes', None), int):
            return '.'.join(parts[:depth]) or type(model).__name__, owner.num_classes
    return None, None


@MODELS.register_module()
class ConfigurableDistiller(BaseModule):
    """An mmengine ``BaseModule`` as MMRazor's. Connectors and loss modules initialise themselves when built, and the
    Runner's ``init_weights`` does not re-initialise them (MMRazor keeps them in torch ``ModuleDict``s, which
    ``init_weights`` does not enter): a connector's ``init_cfg`` is applied when it is built."""

    def __init__(self, student_recorders=None, teacher_recorders=None, connectors=None, distill_losses=None,
                 loss_forward_mappings=None, init_cfg=None):
        super().__init__(init_cfg)
        self.student_recorders = RecorderManager(student_recorders)
        self.teacher_recorders = RecorderManager(teacher_recorders)
        self.connectors = nn.ModuleDict({name: build_connector(cfg) for name, cfg in (connectors or {}).items()})
        self.distill_losses = nn.ModuleDict(
            {name: build_loss(name, cfg) for name, cfg in (distill_losses or {}).items()})
        self.loss_forward_mappings = dict(loss_forward_mappings or {})
        # A plain nn.Module loss (not a DistillLoss) is in neither set.
        distill_losses = {name: loss for name, loss in self.distill_losses.items() if isinstance(loss, DistillLoss)}
        self._losses_taking_data_samples = {
            name for name, loss in distill_losses.items() if loss.takes_data_samples}
        self._losses_comparing_class_scores = {
            name for name, loss in distill_losses.items() if loss.compares_class_scores}
        self._check_loss_names()
        self._check_mappings()

    # ------------------------------------------------------------------ build-time checks
    def _check_loss_names(self):
        """mmengine optimises only the logged entries whose key contains ``'loss'``: any other name would be
        logged every step and never trained."""
        for loss_name in self.distill_losses:
            if 'loss' not in loss_name:
                raise ValueError(
                    f'distill_losses[{loss_name!r}]: mmengine adds only keys containing "loss" to the optimised '
                    f'total, so this loss would be logged but never train the student. Rename it, e.g. '
                    f'"loss_{loss_name}", in distill_losses and in loss_forward_mappings.')

    def _check_mappings(self):
        for loss_name in self.distill_losses:
            if loss_name not in self.loss_forward_mappings:
                raise ValueError(f'distill loss {loss_name!r} has no entry in loss_forward_mappings')
        for loss_name, mapping in self.loss_forward_mappings.items():
            if loss_name not in self.distill_losses:
                raise ValueError(f'loss_forward_mappings names {loss_name!r}, which is not in distill_losses '
                                 f'({", ".join(self.distill_losses) or "empty"})')
            loss = self.distill_losses[loss_name]
            accepted, required, takes_kwargs = forward_parameters(loss)
            signature = f'{type(loss).__name__}.forward{inspect.signature(loss.forward)}'
            for arg, item in mapping.items():
                if arg not in accepted and not takes_kwargs:
                    raise ValueError(f'loss_forward_mappings[{loss_name!r}] maps {arg!r}, but {signature} '
                                     'takes no such argument')
                self._check_item(loss_name, arg, item)
            self._check_data_samples(loss_name, loss, mapping, accepted)
            given_by_distiller = {'data_samples'} if loss_name in self._losses_taking_data_samples else set()
            missing = required - set(mapping) - given_by_distiller
            if missing:
                raise ValueError(f'loss_forward_mappings[{loss_name!r}] does not map {sorted(missing)}, '
                                 f'required by {signature}')

    def _check_data_samples(self, loss_name, loss, mapping, accepted):
        """Data samples reach a loss from the distiller (``takes_data_samples``) or from a mapping, not both;
        a plain module that names them without mapping them would silently never get them."""
        where = f'distill loss {loss_name!r} ({type(loss).__name__})'
        if loss_name in self._losses_taking_data_samples and 'data_samples' in mapping:
            raise ValueError(f'{where} receives the batch\'s data samples from the distiller '
                             f'(takes_data_samples=True): remove data_samples from '
                             f'loss_forward_mappings[{loss_name!r}]')
        if not isinstance(loss, DistillLoss) and 'data_samples' in accepted and 'data_samples' not in mapping:
            raise TypeError(f'{where} has a data_samples parameter, but the distiller passes data samples only '
                            'to subclasses of mmdistkd.models.losses.DistillLoss with takes_data_samples = True: '
                            f'subclass it, or map data_samples in loss_forward_mappings[{loss_name!r}]')

    def _check_item(self, loss_name, arg, item):
        where = f'loss_forward_mappings[{loss_name!r}][{arg!r}]'
        if not isinstance(item, dict):
            raise ValueError(f'{where} must be a dict with from_student and recorder, got {item!r}')
        unknown = set(item) - MAPPING_KEYS
        if unknown:
            raise ValueError(f'{where} has unknown keys {sorted(unknown)}; allowed: {sorted(MAPPING_KEYS)}')
        if 'from_student' not in item or 'recorder' not in item:
            raise ValueError(f'{where} needs from_student and recorder')
        side = 'student' if item['from_student'] else 'teacher'
        recorders = self._manager(item['from_student']).recorders
        if item['recorder'] not in recorders:
            raise ValueError(f'{where} names the {side} recorder {item["recorder"]!r}, but the {side} recorders '
                             f'are: {", ".join(recorders) or "none"}')
        connector = item.get('connector')
        if connector is not None and connector not in self.connectors:
            raise ValueError(f'{where} names the connector {connector!r}, but the connectors are: '
                             f'{", ".join(self.connectors) or "none"}')

    def prepare(self, student, teacher):
        """Attaches the recorders to the student and the teacher and checks the class counts the losses compare."""
        self.prepare_from_student(student)
        self.prepare_from_teacher(teacher)
        self.check_num_classes(student, teacher)

    def prepare_from_student(self, student):
        self.student_recorders.prepare_from_model(student, role='student')

    def prepare_from_teacher(self, teacher):
        self.teacher_recorders.prepare_from_model(teacher, role='teacher')

    def check_num_classes(self, student, teacher):
        """A loss that compares class scores (``compares_class_scores = True``) needs the recorded student and
        teacher modules to predict the same classes."""
        for loss_name, mapping in self.loss_forward_mappings.items():
            if loss_name not in self._losses_comparing_class_scores:
                continue
            found = {}
            for item in mapping.values():
                recorder = self._manager(item['from_student']).get_recorder(item['recorder'])
                model = student if item['from_student'] else teacher
                if isinstance(recorder, ModuleRecorder):
                    owner, num_classes = nearest_num_classes(model, recorder.source)
                    if num_classes is not None:
                        found['student' if item['from_student'] else 'teacher'] = (owner, num_classes)
            if len(found) == 2 and found['student'][1] != found['teacher'][1]:
                (s_owner, s_num), (t_owner, t_num) = found['student'], found['teacher']
                raise ValueError(
                    f'distill loss {loss_name!r} compares class scores, but the student {s_owner} has '
                    f'num_classes={s_num} and the teacher {t_owner} has num_classes={t_num}. Give both heads '
                    'the same num_classes (the teacher must be trained on the student\'s label set).')

    # ------------------------------------------------------------------ per step
    def _manager(self, from_student):
        return self.student_recorders if from_student else self.teacher_recorders

    def _gather(self, item):
        recorder = self._manager(item['from_student']).get_recorder(item['recorder'])
        value = recorder.get_record_data(item.get('record_idx', 0), item.get('data_idx'))
        connector = item.get('connector')
        connector_idx = item.get('connector_idx')

        def connected(record):
            output = record if connector is None else self.connectors[connector](record)
            return output if connector_idx is None else output[connector_idx]

        if connector is None and connector_idx is None:
            return value
        return [connected(v) for v in value] if isinstance(value, list) else connected(value)

    def compute_distill_losses(self, data_samples=None):
        losses = {}
        for loss_name, mapping in self.loss_forward_mappings.items():
            loss_module = self.distill_losses[loss_name]
            kwargs = {arg: self._gather(item) for arg, item in mapping.items()}
            if loss_name in self._losses_taking_data_samples:
                kwargs['data_samples'] = data_samples
            try:
                result = loss_module(**kwargs)
            except Exception as error:
                inputs = ', '.join(f'{arg}={describe(kwargs[arg])} ({"student" if item["from_student"] else "teacher"}'
                                   f' recorder {item["recorder"]!r})' for arg, item in mapping.items())
                raise type(error)(f'distill loss {loss_name!r} ({type(loss_module).__name__}) failed on '
                                  f'{inputs}: {error}') from error
            if isinstance(result, dict):
                extra = {key: value for key, value in result.items() if key != 'loss'}
                summed = [key for key in extra if 'loss' in key]
                if summed:
                    raise ValueError(f'distill loss {loss_name!r} returned the extra keys {summed}: mmengine '
                                     "adds every key containing 'loss' to the optimised total; return the loss "
                                     "under 'loss' and name logged extras without 'loss'")
                clash = set(extra) & (set(losses) | set(self.distill_losses))
                if clash:
                    raise ValueError(f'distill loss {loss_name!r} returned keys {sorted(clash)} that another '
                                     'loss already uses')
                losses.update(extra)
                result = result['loss']
            losses[loss_name] = result
        # Records hold this step's activations: release them (and keep the model deep-copyable for EMA).
        self.student_recorders.reset()
        self.teacher_recorders.reset()
        return losses
