"""Recorders capture tensors during a forward pass (MMRazor's types and config keys).

- ``ModuleOutputs(source='bbox_head.retina_cls')``: outputs of a submodule, by its name.
- ``ModuleInputs(source='neck')``: positional inputs of a submodule (a tuple per call).
- ``MethodOutputs(source='mmdet.models.RetinaHead.forward')``: return values of a method, by its import
  path (the method is patched on its class; only calls while this recorder is recording are kept, and only
  calls on instances inside the model the recorder was prepared on).

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
import weakref

from torch import nn

from mmdistkd.registry import MODELS


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
        if record_idx == 'all':
            picked = list(self.records)
        elif isinstance(record_idx, (list, tuple)):
            picked = [self._record(i) for i in record_idx]
        else:
            picked = self._record(record_idx)
        pick_data = functools.partial(self._pick_data, data_idx=data_idx)
        return [pick_data(r) for r in picked] if isinstance(picked, list) else pick_data(picked)

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
    names = [n for n, _ in model.named_modules() if n]
    if name not in names:
        close = difflib.get_close_matches(name, names, n=5, cutoff=0.5)
        hint = f' Closest names: {", ".join(close)}.' if close else ''
        raise ValueError(f'The {role} ({type(model).__name__}) has no module named {name!r}.{hint} '
                         'Names are those of model.named_modules().')
    return model.get_submodule(name)


class ModuleRecorder(BaseRecorder):
    """Shared machinery of module recorders: a forward hook on the named submodule, or on each child of a
    ``ModuleList`` / ``ModuleDict`` (see the module docstring)."""

    def __init__(self, source):
        super().__init__(source)
        # The child index of each record, kept sorted: a container's records stay in child order.
        self._record_children = []

    def prepare(self, model, role='model'):
        module = find_submodule(model, self.source, role)
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


@MODELS.register_module()
class MethodOutputs(BaseRecorder):
    """Records return values of a method given by import path, e.g.
    ``'mmdet.models.dense_heads.RetinaHead.forward'``. Only calls on modules of the prepared model count, so
    a student and a teacher of the same class keep separate records."""

    def prepare(self, model, role='model'):
        module_path, _, method_path = self.source.rpartition('.')
        owner_path, _, cls_name = module_path.rpartition('.')
        try:
            owner = getattr(importlib.import_module(owner_path), cls_name)
        except (ImportError, AttributeError, ValueError):
            raise ValueError(f'MethodOutputs source {self.source!r} is not "package.module.Class.method" '
                             'of an importable class') from None
        if not callable(getattr(owner, method_path, None)):
            raise ValueError(f'{owner.__name__} has no method {method_path!r} (MethodOutputs source '
                             f'{self.source!r})')
        self._owners = {id(m) for m in model.modules()}
        method_recorders(owner, method_path).add(self)


# (class, method name) -> the MethodOutputs recorders listening to it. Each method is patched once per
# process; recorders that are garbage-collected drop out of their set.
_METHOD_RECORDERS = {}


def method_recorders(owner, method_name):
    """The recorders of ``owner.method_name``, patching the method on first use so that every call offers
    its return value to them."""
    key = (owner, method_name)
    if key not in _METHOD_RECORDERS:
        listeners = weakref.WeakSet()
        original = getattr(owner, method_name)

        @functools.wraps(original)
        def recorded(instance, *args, **kwargs):
            outputs = original(instance, *args, **kwargs)
            for recorder in listeners:
                if recorder.recording and id(instance) in recorder._owners:
                    recorder.records.append(outputs)
            return outputs

        setattr(owner, method_name, recorded)
        _METHOD_RECORDERS[key] = listeners
    return _METHOD_RECORDERS[key]


class RecorderManager:
    """Builds the recorders of one model and switches them on for the span of a ``with`` block."""

    def __init__(self, recorders_cfg=None):
        self.recorders = {name: MODELS.build(cfg) if isinstance(cfg, dict) else cfg
                          for name, cfg in (recorders_cfg or {}).items()}

    def prepare_from_model(self, model, role):
        for recorder in self.recorders.values():
            recorder.prepare(model, role=role)

    def get_recorder(self, name):
        return self.recorders[name]

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
