"""The student's part of a distillation checkpoint, as a plain mmdet / mmseg / mmpretrain checkpoint."""
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
