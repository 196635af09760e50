"""Inheriting: student modules that start from the weights of the teacher's modules of the same names, as the FGD
authors' ``init_student`` (``SingleTeacherDistill(inherit_from_teacher=[...])``)."""
from ..recorders import find_submodule


def inherit_teacher_modules(student, teacher, names):
    """Copies the weights of each of the teacher's modules ``names`` into the student's module of that name."""
    for name in names:
        copy_module_weights(find_submodule(teacher, name, 'teacher'), find_submodule(student, name, 'student'), name)


def copy_module_weights(source, target, name):
    """Copies the parameters and buffers of the teacher's module ``source`` into the student's ``target``
    (both called ``name``); refuses modules whose names or shapes differ."""
    source_state, target_state = source.state_dict(), target.state_dict()
    missing = [key for key in target_state if key not in source_state]
    unexpected = [key for key in source_state if key not in target_state]
    mismatched = [key for key in target_state
                  if key in source_state and source_state[key].shape != target_state[key].shape]
    if missing or unexpected or mismatched:
        problems = []
        if mismatched:
            key = mismatched[0]
            problems.append(f'first mismatching parameter {name}.{key}: student {tuple(target_state[key].shape)}, '
                            f'teacher {tuple(source_state[key].shape)}')
        for label, keys in (('missing in the teacher', missing), ('unexpected (only in the teacher)', unexpected)):
            if keys:
                named = [f'{name}.{key}' for key in keys[:5]]
                problems.append(f'{label}: {", ".join(named)}{", ..." if len(keys) > 5 else ""}')
        raise ValueError(f'inherit_from_teacher: the student\'s and the teacher\'s {name!r} differ ('
                         + '; '.join(problems) + f'). Inherit only modules built alike on both sides, or remove '
                         f'{name!r} from inherit_from_teacher.')
    target.load_state_dict(source_state)
