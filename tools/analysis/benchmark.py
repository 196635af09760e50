"""What a distillation training step costs above its floor: time and peak memory, measured in one process.

A distillation step cannot cost less than the student's own training step plus the teacher's no-grad
forward (plus, when the distiller has trainable modules such as DPK's generators, their own forward,
backward and step); everything above that is overhead of the method or of mmdistkd. This tool measures,
on synthetic batches already passed through the student's data preprocessor (no dataset needed;
preprocessing is left out of every phase alike):

- ``student``: the student alone: forward in loss mode, backward, optimizer step (the config's
  ``optim_wrapper`` built over the student's parameters only);
- ``teacher``: ``SingleTeacherDistill.forward_teacher`` under no_grad: the teacher-forward strategy with
  the teacher's input re-normalisation, autocast and memory format;
- ``distill``: the full distillation step (``train_step`` without preprocessing): loss, backward, step;
- ``distiller``: the distillation losses alone (with their modules and connectors) on features recorded
  once, forward and backward, plus the optimizer step of the distiller's parameters if it has any (the
  config's ``optim_wrapper`` over the distiller alone: ``paramwise_cfg`` keys written for the whole model
  may not match there, which changes learning rates, not the cost of a step). It is in
  the floor only when the distiller has trainable parameters (DPK); for parameter-free losses (KD, DIST)
  it is reported as the share of the overhead that the loss computation itself takes;
- ``teacher_fp32``: only with ``--teacher-autocast`` / ``--channels-last``: a plain fp32, contiguous copy
  of the teacher, to compare the step with the fp32 floor.

Time: the phases are interleaved (student, teacher, distill, ..., then again) so that drift of a shared
machine hits all alike; median and quartiles over ``--iters`` rounds after ``--warmup`` rounds.

Peak memory: measured in separate rounds after the timed ones (the measurement must not perturb the
timing), as the rise of the phase's peak above the memory in use when it starts (weights, optimizer
state and the batch, common to all phases):

- CUDA: ``torch.cuda.max_memory_allocated`` (reset at each phase start) minus the allocated memory then;
- CPU: sampled at about 1 kHz by a background thread, above the values at the phase start after
  ``gc.collect()`` and glibc's ``malloc_trim(0)``: the bytes malloc has handed out and not taken back
  (glibc's ``mallinfo2``; torch's CPU tensors are malloc'd), which is what the ratios use, and the resident
  set size (RSS, ``peak_rss_mb``). RSS also counts what the allocator keeps after frees and reuses, which
  shifts from round to round (by about 20% for RetinaNet at 320x320); for these rounds glibc is told
  (``mallopt``) to map every block of 64 KiB or more on its own and to unmap it when freed, which narrows
  that, but slows allocation, so the memory rounds come last. (``ru_maxrss`` only ever rises, so it cannot
  separate phases; a peak shorter than the sampling interval can be missed, hence several rounds and their
  maximum.)

Ratios:

- ``time_ratio = distill / (student + teacher [+ distiller])`` on median times;
- ``memory_ratio = distill / max(student [+ distiller], teacher)``: the step needs at least the student's
  step peak and at least the teacher's transient forward peak, but not their sum: the teacher's
  activations are freed layer by layer under no_grad, so only its recorded outputs have to outlive it
  (``SingleTeacherDistill`` runs the teacher first for that reason, except for ``'roi_on_student_rois'``).
  Trainable distiller modules add to the student's side: their activations live beside the student's until
  the shared backward. ``memory_ratio_vs_sum`` divides by ``student + teacher [+ distiller]`` instead (the
  naive bound).

The teacher is randomly initialised (``teacher_ckpt=None``): weights do not change the cost.
"""
import argparse
import contextlib
import copy
import ctypes
import ctypes.util
import datetime
import gc
import json
import os
import os.path as osp
import platform
import statistics
import sys
import threading
import time

import torch
from mmengine.config import Config, DictAction
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

import mmdistkd  # noqa: F401  (registers mmdistkd's modules and mmdistkd:: config paths)
from mmdistkd.analysis.configs import is_distill_config
from mmdistkd.analysis.synthetic import fit_preprocessor_to_size, synthetic_batch_for
from mmdistkd.analysis.tables import markdown_table
from mmdistkd.engine.optimizers import optim_wrapper_cfg_for
from mmdistkd.registry import MODELS
from mmdistkd.utils.tasks import task_of

# The reference sizes (height, width) and batch sizes per task, used when not given.
DEFAULT_INPUT_SIZE = dict(det=(800, 1333), seg=(512, 1024), cls=(224, 224))
DEFAULT_BATCH_SIZE = dict(det=2, seg=2, cls=32)
MIB = 1024**2
MEMORY_MEASURES = dict(
    cuda='peak_mem_mb: torch.cuda.max_memory_allocated above memory_allocated at the phase start',
    glibc='peak_mem_mb: malloc bytes in use (glibc mallinfo2), peak_rss_mb: RSS; both sampled at ~1 kHz, above '
    'their values at the phase start after gc + malloc_trim, blocks >= 64 KiB mmapped one by one',
    rss='peak_mem_mb = peak_rss_mb: RSS sampled at ~1 kHz above the RSS at the phase start after gc')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', help='distillation config (SingleTeacherDistill)')
    parser.add_argument('--iters', type=int, default=10, help='timed rounds (each runs every phase once)')
    parser.add_argument('--warmup', type=int, default=2, help='untimed rounds first')
    parser.add_argument('--memory-rounds', type=int, default=3,
                        help='rounds measuring peak memory, after the timed ones (the maximum is reported)')
    parser.add_argument('--batch-size', type=int, help='default: 2 (det, seg) or 32 (cls)')
    parser.add_argument('--input-size', type=int, nargs=2, metavar=('H', 'W'),
                        help='default: 800 1333 (det), 512 1024 (seg), 224 224 (cls)')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu', choices=['cpu', 'cuda'])
    parser.add_argument('--teacher-autocast', choices=['bf16', 'fp16'],
                        help="run the teacher's forward under autocast (SingleTeacherDistill.teacher_autocast)")
    parser.add_argument('--channels-last', action='store_true',
                        help='teacher in channels-last memory format (SingleTeacherDistill.teacher_channels_last)')
    parser.add_argument('--threads', type=int, help='torch CPU threads (default: torch\'s own choice)')
    parser.add_argument('--out', help='write the results as JSON here')
    parser.add_argument('--profile-out', help='also profile one round of each phase (torch.profiler) and write '
                        'the top operators per phase here')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config settings, key=value')
    args = parser.parse_args(argv)
    if args.iters < 1 or args.memory_rounds < 1 or args.warmup < 0:
        parser.error('--iters and --memory-rounds must be at least 1, --warmup at least 0')
    return args


# ---------------------------------------------------------------------------------------------- memory
class MallInfo2(ctypes.Structure):
    """glibc's ``struct mallinfo2`` (glibc >= 2.33)."""
    _fields_ = [(name, ctypes.c_size_t) for name in (
        'arena', 'ordblks', 'smblks', 'hblks', 'hblkhd', 'usmblks', 'fsmblks', 'uordblks', 'fordblks', 'keepcost')]


def load_glibc():
    """glibc through ctypes, or None elsewhere (musl, macOS): then only RSS is sampled."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library('c'))
    except OSError:
        return None
    if not all(hasattr(libc, name) for name in ('malloc_trim', 'mallopt', 'mallinfo2')):
        return None
    libc.mallinfo2.restype = MallInfo2
    return libc


LIBC = load_glibc()
# glibc's mallopt parameters, their default values, and the block size from which the memory rounds map
# blocks one by one.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
GLIBC_DEFAULT_THRESHOLD = 128 * 1024
MAP_EACH_BLOCK_FROM_BYTES = 64 * 1024


def release_freed_memory():
    """Returns freed heap memory to the OS (glibc keeps it otherwise, so RSS would not fall between phases)."""
    gc.collect()
    if LIBC is not None:
        LIBC.malloc_trim(0)


class HostMemoryPeak:
    """Peaks during a phase, above their values at its start, sampled by a background thread at about 1 kHz:
    ``peak_mem_mb`` the bytes malloc has handed out and not yet taken back (glibc's ``mallinfo2``: heap
    blocks in use plus mmapped blocks; torch's CPU tensors are malloc'd), ``peak_rss_mb`` the resident set
    size. Without glibc, ``peak_mem_mb`` is the RSS."""

    def __init__(self, interval_s=1e-3):
        # Large blocks mmapped one by one and unmapped on free, the heap top trimmed: RSS tracks use.
        self._set_malloc_thresholds(MAP_EACH_BLOCK_FROM_BYTES)
        self._statm = os.open('/proc/self/statm', os.O_RDONLY)
        self._page_size = os.sysconf('SC_PAGE_SIZE')
        self._interval_s = interval_s
        self._peaks = self._baselines = self.read()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def read(self):
        # statm's second field: resident pages. pread re-reads the same open file cheaply.
        rss = int(os.pread(self._statm, 128, 0).split()[1]) * self._page_size
        if LIBC is None:
            return dict(peak_mem_mb=rss, peak_rss_mb=rss)
        info = LIBC.mallinfo2()
        return dict(peak_mem_mb=info.uordblks + info.hblkhd, peak_rss_mb=rss)

    def _sample(self):
        while not self._stop.wait(self._interval_s):
            now = self.read()
            self._peaks = {key: max(value, now[key]) for key, value in self._peaks.items()}

    def begin(self):
        release_freed_memory()
        self._peaks = self._baselines = self.read()

    def end(self):
        now = self.read()
        return {key: max(peak, now[key]) - self._baselines[key] for key, peak in self._peaks.items()}

    def close(self):
        self._stop.set()
        self._thread.join()
        os.close(self._statm)
        # Back to glibc's default values (its dynamic mmap threshold stays off once a threshold was set).
        self._set_malloc_thresholds(GLIBC_DEFAULT_THRESHOLD)

    @staticmethod
    def _set_malloc_thresholds(num_bytes):
        if LIBC is not None:
            LIBC.mallopt(M_MMAP_THRESHOLD, num_bytes)
            LIBC.mallopt(M_TRIM_THRESHOLD, num_bytes)


class CudaMemoryPeak:
    """``peak_mem_mb``: the CUDA caching allocator's peak of allocated bytes during a phase, above the
    allocated bytes at its start."""

    def begin(self):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        self._baseline = torch.cuda.memory_allocated()

    def end(self):
        torch.cuda.synchronize()
        return dict(peak_mem_mb=torch.cuda.max_memory_allocated() - self._baseline)

    def close(self):
        pass


# ---------------------------------------------------------------------------------------------- setup
def load_benchmark_config(args):
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if not is_distill_config(cfg):
        raise ValueError(f'{args.config} is not a distillation config (model needs architecture and teacher)')
    cfg.model.teacher_ckpt = None
    cfg.model.teacher_autocast = args.teacher_autocast
    cfg.model.teacher_channels_last = args.channels_last
    return cfg


def detach_records(value, requires_grad):
    """A recorded value (tensor, or lists / tuples of them) detached from its graph; floating tensors become
    leaves requiring grad when ``requires_grad`` (the student's side, so backward runs as in the step)."""
    if isinstance(value, (list, tuple)):
        return type(value)(detach_records(v, requires_grad) for v in value)
    if torch.is_tensor(value):
        value = value.detach().clone()
        return value.requires_grad_(requires_grad and value.is_floating_point())
    return value


def leaf_tensors(value):
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in leaf_tensors(v)]
    return [value] if torch.is_tensor(value) and value.requires_grad else []


class Phases:
    """The benchmarked phases of one distillation model, each a callable running one iteration."""

    def __init__(self, model, optim_wrapper_cfg, data, reference_teacher=False):
        self.model = model
        self.data = data
        self.student_optim = build_optim_wrapper(model.student,
                                                 optim_wrapper_cfg_for(optim_wrapper_cfg, 'architecture'))
        self.distill_optim = build_optim_wrapper(model, copy.deepcopy(optim_wrapper_cfg))
        distiller = model.distiller
        self.has_trainable_modules = any(p.requires_grad for p in distiller.parameters())
        self.distiller_optim = build_optim_wrapper(distiller, optim_wrapper_cfg_for(optim_wrapper_cfg, 'distiller')) \
            if self.has_trainable_modules else None
        self.student_output, self.records = self._record_once()
        self.phases = dict(student=self.student_step, teacher=self.teacher_forward, distill=self.distill_step,
                           distiller=self.distiller_step)
        if reference_teacher:
            # An fp32, contiguous copy: the floor without the teacher's precision and memory-format options.
            self.fp32_teacher = copy.deepcopy(model.teacher).to(memory_format=torch.contiguous_format)
            self.fp32_teacher_inputs = model.frozen_teacher.transform_inputs(data['inputs'])
            self.phases['teacher_fp32'] = self.fp32_teacher_forward

    @property
    def floor_phases(self):
        return ['student', 'teacher'] + (['distiller'] if self.has_trainable_modules else [])

    def _record_once(self):
        """Runs the student and the teacher once with their recorders on, in the step's order: what the
        teacher-forward strategy took from the student (the RoIs of ``'roi_on_student_rois'``; None for a
        strategy that runs first), replayed to the teacher phases, and every recorder's records, detached, for
        the ``distiller`` phase."""
        model, distiller = self.model, self.model.distiller
        runs_after_student = model.teacher_forward.runs_after_student
        with torch.no_grad():
            if not runs_after_student:
                model.record_teacher(**self.data)
            model.record_student(**self.data)
            student_output = model.teacher_forward.student_output
            if runs_after_student:
                model.record_teacher(**self.data)
        records = {
            side: {name: detach_records(recorder.records, requires_grad=side == 'student')
                   for name, recorder in manager.recorders.items()}
            for side, manager in (('student', distiller.student_recorders), ('teacher', distiller.teacher_recorders))
        }
        distiller.student_recorders.reset()
        distiller.teacher_recorders.reset()
        return student_output, records

    def _replay_student_output(self):
        """The teacher phases run without the student: the strategy gets the student's recorded output again
        (its forward consumes it)."""
        if self.model.teacher_forward.runs_after_student:
            self.model.teacher_forward.student_output = self.student_output

    def student_step(self):
        student = self.model.student
        with self.student_optim.optim_context(student):
            losses = student(**self.data, mode='loss')
        loss, _ = student.parse_losses(losses)
        self.student_optim.update_params(loss)

    def teacher_forward(self):
        self._replay_student_output()
        with torch.no_grad():
            self.model.forward_teacher(**self.data)

    def fp32_teacher_forward(self):
        self._replay_student_output()
        with torch.no_grad():
            self.model.teacher_forward(self.fp32_teacher, self.fp32_teacher_inputs, self.data['data_samples'])

    def distill_step(self):
        model = self.model
        with self.distill_optim.optim_context(model):
            losses = model(**self.data, mode='loss')
        loss, _ = model.parse_losses(losses)
        self.distill_optim.update_params(loss)

    def distiller_step(self):
        distiller = self.model.distiller
        for side, manager in (('student', distiller.student_recorders), ('teacher', distiller.teacher_recorders)):
            for name, recorder in manager.recorders.items():
                recorder.records = list(self.records[side][name])
        # The step's context (autocast under AmpOptimWrapper), as the losses see it in the full step.
        with self.distill_optim.optim_context(self.model):
            losses = distiller.compute_distill_losses(self.data['data_samples'])
        loss, _ = self.model.parse_losses(losses)
        if self.distiller_optim is not None:
            self.distiller_optim.update_params(loss)
        else:
            loss.backward()
        # The recorded student features stand in for the student's graph: drop what backward left on them.
        for leaf in leaf_tensors(list(self.records['student'].values())):
            leaf.grad = None


# ---------------------------------------------------------------------------------------------- measuring
def synchronize(device):
    if device == 'cuda':
        torch.cuda.synchronize()


def run_rounds(phases, rounds, device, probe=None):
    """Runs ``rounds`` interleaved rounds of every phase; per phase, a list of seconds (or, with a memory
    ``probe``, of its dicts of peak bytes above the phase's start)."""
    results = {name: [] for name in phases}
    for _ in range(rounds):
        for name, phase in phases.items():
            if probe is not None:
                probe.begin()
                phase()
                results[name].append(probe.end())
                continue
            synchronize(device)
            start = time.perf_counter()
            phase()
            synchronize(device)
            results[name].append(time.perf_counter() - start)
    return results


def profile_phases(phases, device, path):
    """One profiled round per phase; writes the top operators of each by self time."""
    from torch.profiler import ProfilerActivity, profile
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == 'cuda' else [])
    sort_by = 'self_cuda_time_total' if device == 'cuda' else 'self_cpu_time_total'
    with open(path, 'w') as file:
        for name, phase in phases.items():
            with profile(activities=activities) as profiler:
                phase()
                synchronize(device)
            file.write(f'=== {name}\n{profiler.key_averages().table(sort_by=sort_by, row_limit=30)}\n')


def quantiles(samples):
    p25, median, p75 = statistics.quantiles(samples, n=4, method='inclusive') if len(samples) > 1 \
        else samples * 3
    return dict(median_s=median, p25_s=p25, p75_s=p75, min_s=min(samples), max_s=max(samples))


def device_description(device):
    if device == 'cuda':
        return f'cuda: {torch.cuda.get_device_name()}'
    model_name = platform.processor() or 'unknown CPU'
    with contextlib.suppress(OSError):
        with open('/proc/cpuinfo') as cpuinfo:
            model_name = next((line.split(':', 1)[1].strip() for line in cpuinfo if line.startswith('model name')),
                              model_name)
    return f'cpu: {model_name}, {torch.get_num_threads()} threads, {os.cpu_count()} logical cores'


def summarise(args, cfg, task, batch_size, input_size, phases, times, memory, load_before):
    floor = phases.floor_phases
    stats = {name: dict(quantiles(times[name]), **{key: max(peaks[key] for peaks in memory[name]) / MIB
                                                   for key in memory[name][0]}) for name in times}
    median = {name: stats[name]['median_s'] for name in stats}
    peak = {name: stats[name]['peak_mem_mb'] for name in stats}
    student_side_mb = peak['student'] + (peak['distiller'] if 'distiller' in floor else 0)
    memory_floor_mb = max(student_side_mb, peak['teacher'])
    time_floor_s = sum(median[name] for name in floor)
    result = dict(
        config=args.config,
        date=datetime.datetime.now().astimezone().isoformat(timespec='seconds'),
        device=device_description(args.device),
        torch=torch.__version__,
        python=platform.python_version(),
        task=task,
        batch_size=batch_size,
        input_size=list(input_size),
        iters=args.iters,
        warmup=args.warmup,
        memory_rounds=args.memory_rounds,
        teacher_autocast=args.teacher_autocast,
        teacher_channels_last=args.channels_last,
        memory_measure=MEMORY_MEASURES['cuda' if args.device == 'cuda' else 'glibc' if LIBC else 'rss'],
        load_average=dict(before=list(load_before), after=list(os.getloadavg())),
        phases=stats,
        floor_phases=floor,
        time_floor_s=time_floor_s,
        time_ratio=median['distill'] / time_floor_s,
        memory_floor_definition='max(' + ' + '.join(n for n in floor if n != 'teacher') + ', teacher)',
        memory_floor_mb=memory_floor_mb,
        memory_ratio=peak['distill'] / memory_floor_mb if memory_floor_mb > 0 else float('nan'),
        memory_ratio_vs_sum=peak['distill'] / sum(peak[name] for name in floor),
    )
    if 'teacher_fp32' in median:
        fp32_floor_s = time_floor_s - median['teacher'] + median['teacher_fp32']
        result['time_ratio_vs_fp32_floor'] = median['distill'] / fp32_floor_s
    return result


def format_table(result):
    """The run's setting, a Markdown table of the phases (seconds, MiB) and the ratios."""
    with_rss = 'peak_rss_mb' in result['phases']['student']
    header = ['phase', 'median s', 'p25 s', 'p75 s', 'peak MiB'] + (['RSS MiB'] if with_rss else []) + ['in floor']
    rows = [[name] + [f"{stats[key]:.4f}" for key in ('median_s', 'p25_s', 'p75_s')] + [f"{stats['peak_mem_mb']:.1f}"]
            + ([f"{stats['peak_rss_mb']:.1f}"] if with_rss else []) + ['yes' if name in result['floor_phases'] else '']
            for name, stats in result['phases'].items()]
    lines = [f"{result['config']}  batch {result['batch_size']}  input {result['input_size']}  "
             f"{result['device']}  torch {result['torch']}", '', markdown_table(header, rows), '',
             f"time_ratio   = distill / ({' + '.join(result['floor_phases'])}) = {result['time_ratio']:.3f}",
             f"memory_ratio = distill / {result['memory_floor_definition']} = {result['memory_ratio']:.3f}"
             f"  (vs the sum: {result['memory_ratio_vs_sum']:.3f})"]
    if 'time_ratio_vs_fp32_floor' in result:
        lines.append(f"time_ratio vs the fp32 teacher floor = {result['time_ratio_vs_fp32_floor']:.3f}")
    return '\n'.join(lines)


def run_benchmark(args):
    """Measures, prints the table, writes ``args.out``; returns the results as a dict."""
    if args.device == 'cuda' and not torch.cuda.is_available():
        sys.exit('--device cuda: CUDA is not available')
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = load_benchmark_config(args)
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmengine')):
        model = MODELS.build(cfg.model).to(args.device)
        model.train()
        task = task_of(model.student)
        batch_size = args.batch_size or DEFAULT_BATCH_SIZE[task]
        input_size = tuple(args.input_size or DEFAULT_INPUT_SIZE[task])
        fit_preprocessor_to_size(model.data_preprocessor, *input_size)
        batch = synthetic_batch_for(model.student, batch_size, *input_size)
        data = model.data_preprocessor(batch, True)
        phases = Phases(model, cfg.optim_wrapper, data,
                        reference_teacher=bool(args.teacher_autocast or args.channels_last))

    load_before = os.getloadavg()
    run_rounds(phases.phases, args.warmup, args.device)
    times = run_rounds(phases.phases, args.iters, args.device)
    if args.profile_out:
        profile_phases(phases.phases, args.device, args.profile_out)
    probe = CudaMemoryPeak() if args.device == 'cuda' else HostMemoryPeak()
    try:
        memory = run_rounds(phases.phases, args.memory_rounds, args.device, probe=probe)
    finally:
        probe.close()

    result = summarise(args, cfg, task, batch_size, input_size, phases, times, memory, load_before)
    print(format_table(result))
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as file:
            json.dump(result, file, indent=2)
    return result


def main(argv=None):
    return run_benchmark(parse_args(argv))


if __name__ == '__main__':
    main()
