"""Reading what an mmengine training run left in its work dir."""
import glob
import json
import os.path as osp

# Keys of a validation record that describe the loop, not the model.
LOOP_KEYS = ('step', 'time', 'data_time', 'epoch', 'iter')
# TeacherValHook (or SingleTeacherDistillValLoop) logs the teacher's metrics under this prefix.
TEACHER_PREFIX = 'teacher.'
# DPKLoss logs its prior ratio of a stage as ``dpk_pi.<stage>``.
DPK_RATIO_PREFIX = 'dpk_pi.'


def scalar_files(work_dir):
    """The ``<timestamp>/vis_data/scalars.json`` files of every run in ``work_dir``, oldest first (a resumed
    run logs into a new timestamp folder)."""
    return sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))


def read_scalars(path):
    with open(path) as file:
        return [json.loads(line) for line in file if line.strip()]


def last_val_metrics(work_dir):
    """The last validation record in ``work_dir``, from the newest run that has one; ``{}`` if none has."""
    for scalars in reversed(scalar_files(work_dir)):
        records = read_scalars(scalars)
        # training records carry the losses and the learning rate; validation records do not
        val = [record for record in records if not any(key in record for key in ('loss', 'lr'))]
        if val:
            return val[-1]
    return {}


def model_metrics(record, teacher=False):
    """The metrics of the trained model in a validation record (or with ``teacher=True`` those of a
    distillation's teacher, unprefixed), without the loop's bookkeeping."""
    if teacher:
        return {key[len(TEACHER_PREFIX):]: value for key, value in record.items() if key.startswith(TEACHER_PREFIX)}
    return {key: value for key, value in record.items()
            if key not in LOOP_KEYS and not key.startswith(TEACHER_PREFIX)}


def scalar_records(work_dir):
    """Every record of the newest run's ``vis_data/scalars.json`` in ``work_dir`` (training and validation)."""
    runs = scalar_files(work_dir)
    if not runs:
        raise FileNotFoundError(f'no */vis_data/scalars.json in {work_dir!r}: is it the work_dir of a training run '
                                'with the LocalVisBackend (the default)?')
    return read_scalars(runs[-1])


def last_checkpoint(work_dir):
    """The checkpoint mmengine's CheckpointHook saved last in ``work_dir`` (it names it in the
    ``last_checkpoint`` file), as an absolute path; None if the run saved none."""
    pointer = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(pointer):
        return None
    with open(pointer) as file:
        checkpoint = file.read().strip()
    return checkpoint if osp.isabs(checkpoint) else osp.abspath(checkpoint)


def dpk_ratios(records):
    """``{stage: [(step, pi), ...]}`` from the records of an mmengine ``scalars.json``, in file order; ``{}``
    if no record holds a ratio."""
    ratios = {}
    for record in records:
        step = record.get('step', record.get('iter'))
        for key, value in record.items():
            if key.startswith(DPK_RATIO_PREFIX):
                ratios.setdefault(key[len(DPK_RATIO_PREFIX):], []).append((step, value))
    return ratios


def load_dpk_ratios(work_dir):
    """``{stage: [(step, pi), ...]}`` of the newest run in ``work_dir``; raises ``FileNotFoundError`` if it
    holds no run and ``ValueError`` if the run logged no ratio."""
    records = scalar_records(work_dir)
    ratios = dpk_ratios(records)
    if not ratios:
        keys = sorted({key for record in records for key in record})
        raise ValueError(f'the newest run in {work_dir} logged no {DPK_RATIO_PREFIX}<stage> scalars (keys found: '
                         f'{", ".join(keys) or "none"}): was it a DPK run?')
    return ratios
