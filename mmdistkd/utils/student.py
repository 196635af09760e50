"""The student's part of a distillation checkpoint, as a plain mmdet / mmseg / mmpretrain checkpoint, and a
plain checkpoint of the student loaded into a distillation model."""
from collections import OrderedDict

STUDENT_PREFIX = 'architecture.'


def student_state_dict(state_dict):
    """Keys of the student with the ``architecture.`` prefix removed; teacher, distiller and DPK modules are
    dropped. Raises if the state dict holds no student (not a distillation checkpoint)."""
    student = OrderedDict((key[len(STUDENT_PREFIX):], value) for key, value in state_dict.items()
                          if key.startswith(STUDENT_PREFIX))
    if not student:
        raise ValueError('the checkpoint holds no "architecture." keys: it is not an mmdistkd distillation '
                         'checkpoint (a plain student checkpoint needs no extraction)')
    return student


def student_checkpoint(state_dict, meta=None):
    """A checkpoint dict loadable by the student's own package: ``{'meta': ..., 'state_dict': ...}``."""
    meta = {key: value for key, value in (meta or {}).items() if key in ('dataset_meta', 'epoch', 'iter',
                                                                         'mmengine_version', 'time', 'seed')}
    return {'meta': meta, 'state_dict': student_state_dict(state_dict)}


def accept_plain_student_checkpoint(state_dict, prefix, *args):
    """A load-state-dict pre-hook of a distillation model: ``load_from`` a plain mmdet / mmseg / mmpretrain
    checkpoint of the student gives its keys the ``architecture.`` prefix instead of all missing silently."""
    student_prefix = prefix + STUDENT_PREFIX
    own = [k for k in state_dict if k.startswith(prefix)]
    if own and not any(k.startswith(student_prefix) or k.startswith(prefix + 'distiller.') for k in own):
        for key in own:
            state_dict[student_prefix + key[len(prefix):]] = state_dict.pop(key)
