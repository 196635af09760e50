"""Recorders capture tensors during a forward pass (MMRazor's types and config keys).

- ``ModuleOutputs(source='bbox_head.retina_cls')``: outputs of a submodule, by its name.
- ``ModuleInputs(source='neck')``: positional inputs of a submodule (a tuple per call).
- ``ModuleInputs(source='')``: an empty source is the model itself (MMRazor's CRD records the student's
  ``(inputs, data_samples)`` so).
- ``MethodOutputs(source='mmdet.models.RetinaHead.forward')`` / ``MethodInputs``: return values / arguments of
  a method, by its import path (the method is patched on its class; only calls while this recorder is
  recording are kept, and only calls on instances inside the model the recorder was prepared on).
- ``FunctionOutputs(source='mmdet.models.dense_heads.anchor_head.anchor_inside_flags')`` / ``FunctionInputs``:
  return values / arguments of a module-level function, by its import path (see "Function recorders").
- ``Parameter(source='backbone.conv1.weight')``: a parameter of the model, by its name (one lasting record).

Input recorders of methods and functions keep, per call, a list of the positional arguments followed by the
keyword arguments in the order of the signature (a method's instance left out), as MMRazor does: defaults
that were not passed are not in it.

Function recorders: the function is replaced, in the module the source names, by a wrapper (once per process),
so they see the calls that look the function up in that module when called: a function imported elsewhere
with ``from module import function`` before is another binding and must be recorded where it is used (as in
MMRazor: ``'mmdet.models.dense_heads.anchor_head.anchor_inside_flags'``, not the module defining it), and a
function stored at build time (mmpretrain's ``CrossEntropyLoss`` keeps ``cross_entropy`` as an attribute) is
not seen. A call counts while the recorder is recording (its ``RecorderManager``'s ``with`` block) and when a
module of the prepared model is running somewhere up the call stack, i.e. inside its forward or a method of one
of its modules: the student's recorders then ignore the teacher's calls even while both record, and calls the
training step makes outside both models (its own preprocessing, a distillation loss) are ignored. Limits: the
test looks up the calling thread's stack for a frame whose ``self`` is one of the model's modules, so a call
made in another thread than the forward's is not seen, a call inside a model that runs within the other's
forward (a teacher called by a student module) counts for both, and modules added to the model after
``prepare`` are not its own.

A module or method called several times per step gives one record per call: RetinaNet's
``bbox_head.retina_cls`` runs once per FPN level, so it yields 5 records.

A module recorder whose source is an ``nn.ModuleList`` or ``nn.ModuleDict`` (containers that are never called
themselves) records every child instead, in child order (list index, dict insertion order) whatever order the
children run in, and in call order within a child. RTMDet's head keeps one classification conv per FPN level
(``bbox_head.rtm_cls.0`` .. ``.2``) where RetinaNet, FCOS, ATSS and GFL call one shared conv per level; with
``source='bbox_head.rtm_cls'`` and ``record_idx='all'`` both give one record per level in level order, so the
same ``loss_forward_mappings`` serve both layouts.
"""
import bisect
import difflib
import functools
import importlib
import inspect
import sys
import weakref

from torch import nn

from mmdistkd.registry import MODELS, build_in_mmdistkd_scope


class BaseRecorder:
    """Collects one record per call while ``recording`` is on; ``reset`` empties it."""

    def __init__(self, source):
        self.source = source
        self.records = []
        self.recording = False

    def prepare(self, model):
        """Attach to ``model`` (the student or the teacher)."""
        raise NotImplementedError

    def reset(self):
        self.records = []

    def get_record_data(self, record_idx=0, data_idx=None):
        """One record (``record_idx`` an int), several (a list of ints) or every one (``'all'``); ``data_idx``
        then picks an element of each record (for tuple outputs or inputs)."""
        if not self.records:
            raise RuntimeError(
                f'Recorder for {self.source!r} holds no record: the recorded module or method did not run in '
                'this forward pass. Check that it is on the path the forward takes.')
        # A single record may itself be a list (the arguments of a call): record_idx alone says how many.
        if record_idx == 'all':
            return [self._pick_data(record, data_idx) for record in self.records]
        if isinstance(record_idx, (list, tuple)):
            return [self._pick_data(self._record(idx), data_idx) for idx in record_idx]
        return self._pick_data(self._record(record_idx), data_idx)

    def _record(self, idx):
        try:
            return self.records[idx]
        except IndexError:
            raise IndexError(f'record_idx={idx} but {self.source!r} was called {len(self.records)} time(s) '
                             'in this forward pass') from None

    def _pick_data(self, record, data_idx):
        if data_idx is None:
            return record
        try:
            return record[data_idx]
        except (IndexError, TypeError, KeyError):
            raise IndexError(f'data_idx={data_idx!r} does not index the record of {self.source!r} '
                             f'(a {type(record).__name__})') from None


def find_submodule(model, name, role):
    """``model.get_submodule(name)`` with an error that lists the closest real names."""
    return find_named(model, name, role, 'module')


def find_named(model, name, role, kind):
    """The ``kind`` (``'module'`` or ``'parameter'``) of ``model`` named ``name``, with an error that lists
    the closest real names."""
    named = dict(getattr(model, f'named_{kind}s')())
    named.pop('', None)  # named_modules() lists the model itself as ''
    if name not in named:
        close = difflib.get_close_matches(name, list(named), n=5, cutoff=0.5)
        hint = f' Closest names: {", ".join(close)}.' if close else ''
        raise ValueError(f'The {role} ({type(model).__name__}) has no {kind} named {name!r}.{hint} '
                         f'Names are those of model.named_{kind}s().')
    return named[name]


class ModuleRecorder(BaseRecorder):
    """Shared machinery of module recorders: a forward hook on the named submodule, or on each child of a
    ``ModuleList`` / ``ModuleDict`` (see the module docstring)."""

    def __init__(self, source):
        super().__init__(source)
        # The child index of each record, kept sorted: a container's records stay in child order.
        self._record_children = []

    def prepare(self, model, role='model'):
        module = model if self.source == '' else find_submodule(model, self.source, role)
        if isinstance(module, (nn.ModuleList, nn.ModuleDict)):
            children = list(module.children())
            if not children:
                raise ValueError(f'The {role} module {self.source!r} is an empty {type(module).__name__}: '
                                 'there is nothing to record')
            self._handles = [child.register_forward_hook(functools.partial(self._hook, child_idx=idx))
                             for idx, child in enumerate(children)]
        else:
            self._handles = [module.register_forward_hook(self._hook)]

    def reset(self):
        super().reset()
        self._record_children = []

    def _hook(self, module, inputs, outputs, child_idx=0):
        if self.recording:
            position = bisect.bisect_right(self._record_children, child_idx)
            self._record_children.insert(position, child_idx)
            self.records.insert(position, self._select(inputs, outputs))


@MODELS.register_module()
class ModuleOutputs(ModuleRecorder):

    def _select(self, inputs, outputs):
        return outputs


@MODELS.register_module()
class ModuleInputs(ModuleRecorder):

    def _select(self, inputs, outputs):
        return inputs


class CallRecorder(BaseRecorder):
    """Shared machinery of method and function recorders: the callable named by ``source``
    (``owner_form`` + ``.name``) is patched once per process (``call_recorders``) and offers every call to its
    recorders; one that is recording keeps the calls that belong to its prepared model (``_belongs_to_model``),
    their outputs or, with ``records_inputs``, their arguments."""

    records_inputs = False
    # Methods take the instance first: it tells the model, and is no recorded input.
    takes_instance = False

    def prepare(self, model, role='model'):
        owner_path, _, name = self.source.rpartition('.')
        try:
            owner = import_path(owner_path)
        except (ImportError, AttributeError, ValueError):
            owner = None
        if not self._is_owner(owner):
            raise ValueError(f'{type(self).__name__} source {self.source!r} is not "{self.owner_form}.{self.kind}" '
                             f'of an importable {self.owner_form.rpartition(".")[-1].lower()}')
        self._check_callable(owner, name)
        self._owners = {id(m) for m in model.modules()}
        self._argument_names = list(inspect.signature(getattr(owner, name)).parameters)[self.takes_instance:]
        call_recorders(owner, name).add(self)

    def on_call(self, args, kwargs, outputs):
        if self._belongs_to_model(args):
            if self.records_inputs:
                passed = [kwargs[name] for name in self._argument_names if name in kwargs]
                self.records.append([*args[self.takes_instance:], *passed])
            else:
                self.records.append(outputs)


def import_path(path):
    """The module, or the attribute of a module, at the import path ``path``."""
    try:
        return importlib.import_module(path)
    except ModuleNotFoundError as error:
        module_path, _, name = path.rpartition('.')
        if error.name != path or not module_path:
            raise
        return getattr(importlib.import_module(module_path), name)


class MethodRecorder(CallRecorder):
    """Calls of a method given by import path, e.g. ``'mmdet.models.dense_heads.RetinaHead.forward'``, on
    modules of the prepared model, so a student and a teacher of the same class keep separate records."""

    takes_instance = True
    owner_form, kind = 'package.module.Class', 'method'
    _is_owner = staticmethod(inspect.isclass)

    def _check_callable(self, owner, name):
        where = f'({type(self).__name__} source {self.source!r})'
        if not callable(getattr(owner, name, None)):
            raise ValueError(f'{owner.__name__} has no method {name!r} {where}')
        static = inspect.getattr_static(owner, name)
        if isinstance(static, (staticmethod, classmethod)):
            raise ValueError(f'{owner.__name__}.{name} is a {type(static).__name__}, but a method recorder '
                             f'records methods called on instances {where}')

    def _belongs_to_model(self, args):
        return id(args[0]) in self._owners


class FunctionRecorder(CallRecorder):
    """Calls of a module-level function given by import path, made inside the prepared model (the module
    docstring says how, and its limits)."""

    owner_form, kind = 'package.module', 'function'
    _is_owner = staticmethod(inspect.ismodule)

    def _check_callable(self, owner, name):
        if not inspect.isfunction(getattr(owner, name, None)):
            raise ValueError(f'{owner.__name__} has no function {name!r} ({type(self).__name__} source '
                             f'{self.source!r})')

    def _belongs_to_model(self, args):
        # Every module call runs nn.Module._call_impl(self, ...): a call made inside a forward of the model has
        # a frame whose ``self`` is one of its modules.
        frame = sys._getframe(1)
        while frame is not None:
            if id(frame.f_locals.get('self')) in self._owners:
                return True
            frame = frame.f_back
        return False


@MODELS.register_module()
class MethodOutputs(MethodRecorder):
    pass


@MODELS.register_module()
class MethodInputs(MethodRecorder):
    records_inputs = True


@MODELS.register_module()
class FunctionOutputs(FunctionRecorder):
    pass


@MODELS.register_module()
class FunctionInputs(FunctionRecorder):
    records_inputs = True


# (class or module, attribute name) -> the recorders listening to that method or function. Each is patched
# once per process; recorders that are garbage-collected drop out of their set.
_CALL_RECORDERS = {}


def call_recorders(owner, name):
    """The recorders of ``owner.name``, patching it on first use so that every call offers its arguments and
    return value to those recording."""
    key = (owner, name)
    if key not in _CALL_RECORDERS:
        listeners = weakref.WeakSet()
        original = getattr(owner, name)

        @functools.wraps(original)
        def recorded(*args, **kwargs):
            outputs = original(*args, **kwargs)
            for recorder in listeners:
                if recorder.recording:
                    recorder.on_call(args, kwargs, outputs)
            return outputs

        setattr(owner, name, recorded)
        _CALL_RECORDERS[key] = listeners
    return _CALL_RECORDERS[key]


@MODELS.register_module(name='Parameter')
class ParameterRecorder(BaseRecorder):
    """A parameter of the model by its name in ``model.named_parameters()``, e.g. ``'backbone.conv1.weight'``:
    one record, the parameter itself (so losses on it reach its gradient), kept from ``prepare`` on."""

    def prepare(self, model, role='model'):
        self.records = [find_named(model, self.source, role, 'parameter')]

    def reset(self):
        """The record is the live parameter, current at every step: nothing to clear."""


class RecorderManager:
    """Builds the recorders of one model and switches them on for the span of a ``with`` block."""

    def __init__(self, recorders_cfg=None):
        # Under another default scope (a hook built by an mmdet runner) the types resolve in mmdistkd's.
        self.recorders = {name: build_in_mmdistkd_scope(cfg) if isinstance(cfg, dict) else cfg
                          for name, cfg in (recorders_cfg or {}).items()}

    def prepare_from_model(self, model, role):
        for recorder in self.recorders.values():
            recorder.prepare(model, role=role)

    def get_recorder(self, name):
        return self.recorders[name]

    def records_by_name(self):
        """``{recorder name: its records}`` of this step (the lists themselves)."""
        return {name: recorder.records for name, recorder in self.recorders.items()}

    def replay(self, records_by_name):
        """Gives each recorder the records of ``records_by_name`` as if it had recorded them: for tools that run the
        distillation losses alone on features recorded once (``tools/analysis/benchmark.py``)."""
        for name, records in records_by_name.items():
            self.recorders[name].records = list(records)

    def reset(self):
        for recorder in self.recorders.values():
            recorder.reset()

    def __enter__(self):
        self.reset()
        for recorder in self.recorders.values():
            recorder.recording = True
        return self

    def __exit__(self, *exc):
        for recorder in self.recorders.values():
            recorder.recording = False
