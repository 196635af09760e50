"""StrictLoadRunner: mmengine's Runner whose ``load_from`` loads the whole model, or says why not."""
import re
from collections import OrderedDict

from mmengine.model import is_model_wrapper
from mmengine.registry import RUNNERS
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint, _load_checkpoint_to_model

from mmdistkd.utils.student import STUDENT_PREFIX, student_state_dict

# The config key that accepts a load_from checkpoint leaving part of the model unloaded.
PARTIAL_LOAD_KEY = 'load_from_partial'
SHOWN_KEYS = 5


@RUNNERS.register_module()
class StrictLoadRunner(Runner):
    """mmengine's Runner (what ``tools/train.py`` and ``tools/test.py`` build when the config names no
    ``runner_type``), with two changes to loading ``load_from``:

    - mmengine loads it with ``strict=False``: a checkpoint of another model (a teacher's, an untrained
      student's, the wrong task's) leaves the layers it lacks, or holds in other shapes, randomly initialised,
      and training or testing goes on. Here any parameter or buffer of the model left so is an error naming the
      first ones, unless the config sets ``load_from_partial=True`` (loading part of a model on purpose, e.g.
      fine-tuning with a new head). Keys of the checkpoint the model does not have are ignored, as by mmengine.
      A plain student checkpoint in a distillation model loads its student (``SingleTeacherDistill`` renames
      its keys); only the student's parameters count then, as the distiller's modules start untrained.
    - A distillation checkpoint (``architecture.`` keys) in a plain model loads its student, as
      ``tools/extract_student.py`` extracts it; the distiller's keys are left out.

    Resuming is mmengine's: a resumed checkpoint is the run's own.
    """

    def load_checkpoint(self, filename, map_location='cpu', strict=False, revise_keys=[(r'^module.', '')]):
        if self._resume:
            return super().load_checkpoint(filename, map_location, strict, revise_keys)
        checkpoint = _load_checkpoint(filename, map_location=map_location)
        self.call_hook('after_load_checkpoint', checkpoint=checkpoint)
        model = self.model.module if is_model_wrapper(self.model) else self.model

        state_dict = checkpoint.get('state_dict', checkpoint)
        # Module versions, which some modules' loading reads (BatchNorm's num_batches_tracked).
        metadata = getattr(state_dict, '_metadata', OrderedDict())
        for pattern, replacement in revise_keys:
            state_dict = OrderedDict((re.sub(pattern, replacement, key), value) for key, value in state_dict.items())
        state_dict._metadata = metadata
        model_keys = [key for key in model.state_dict() if 'num_batches_tracked' not in key]
        distillation_model = any(key.startswith(STUDENT_PREFIX) for key in model_keys)
        holds_student = any(key.startswith(STUDENT_PREFIX) for key in state_dict)
        if holds_student and not distillation_model:
            student = student_state_dict(state_dict)
            self.logger.info(f'{filename} is a distillation checkpoint: loading its student ({len(student)} '
                             f'"{STUDENT_PREFIX}" keys), leaving out its {len(state_dict) - len(student)} others')
            state_dict = student
        # Only the student counts when a plain student checkpoint goes into a distillation model.
        counted_prefix = STUDENT_PREFIX if distillation_model and not holds_student else ''

        # mmengine's loading reports what it leaves out only in its log; the lists it fills are caught here.
        outcome = {}

        def catch_reports(module, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                          error_msgs):
            outcome.update(missing=missing_keys, errors=error_msgs)

        handle = model.register_load_state_dict_pre_hook(catch_reports)
        try:
            checkpoint = dict(checkpoint, state_dict=state_dict)
            _load_checkpoint_to_model(model, checkpoint, strict, revise_keys=[])
        finally:
            handle.remove()
        self._has_loaded = True
        self.logger.info(f'Load checkpoint from {filename}')

        missing = [key for key in outcome['missing']
                   if key.startswith(counted_prefix) and 'num_batches_tracked' not in key]
        mismatched = [message for message in outcome['errors']
                      if re.match(rf'size mismatch for {re.escape(counted_prefix)}', message)]
        if (missing or mismatched) and not self.cfg.get(PARTIAL_LOAD_KEY, False):
            raise RuntimeError(self._partial_load_message(filename, missing, mismatched, distillation_model,
                                                          sum(key.startswith(counted_prefix) for key in model_keys)))
        return checkpoint

    @staticmethod
    def _partial_load_message(filename, missing, mismatched, distillation_model, num_counted):
        problems = []
        if missing:
            problems.append(f'missing from the checkpoint: {", ".join(missing[:SHOWN_KEYS])}'
                            + (f' and {len(missing) - SHOWN_KEYS} more' if len(missing) > SHOWN_KEYS else ''))
        if mismatched:
            problems.append('; '.join(mismatched[:SHOWN_KEYS])
                            + (f' and {len(mismatched) - SHOWN_KEYS} more' if len(mismatched) > SHOWN_KEYS else ''))
        teacher_hint = ' (a teacher\'s weights go in model.teacher_ckpt, not load_from)' if distillation_model else ''
        return (f'load_from {filename} leaves {len(missing) + len(mismatched)} of the model\'s {num_counted} '
                f'parameters and buffers unloaded, which would stay randomly initialised: {"; ".join(problems)}. '
                f'Give a checkpoint of this model{teacher_hint}, or, to load part of the model on purpose (e.g. '
                f'fine-tuning with a new head), set {PARTIAL_LOAD_KEY} = True in the config '
                f'(--cfg-options {PARTIAL_LOAD_KEY}=True).')
