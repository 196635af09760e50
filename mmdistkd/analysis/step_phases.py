"""The phases of a distillation training step that ``tools/analysis/benchmark.py`` and
``tools/analysis/gpu_check.py`` time and measure (``Phases``), how rounds of them run, and the summary of a run."""
import contextlib
import copy
import datetime
import os
import platform
import statistics
import time

import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper

from mmdistkd.analysis.configs import is_distill_config
from mmdistkd.analysis.memory_probes import LIBC, MEMORY_MEASURES
from mmdistkd.analysis.tables import markdown_table
from mmdistkd.engine.optimizers import optim_wrapper_cfg_for

# The reference sizes (height, width) and batch sizes per task, used when not given.
DEFAULT_INPUT_SIZE = dict(det=(800, 1333), seg=(512, 1024), cls=(224, 224))
DEFAULT_BATCH_SIZE = dict(det=2, seg=2, cls=32)
MIB = 1024**2


def load_benchmark_config(config, cfg_options=None, teacher_autocast=None, channels_last=False):
    """The distillation config to measure, with a randomly initialised teacher (weights do not change the cost)
    and the teacher's precision and memory format as asked."""
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if not is_distill_config(cfg):
        raise ValueError(f'{config} is not a distillation config (model needs architecture and teacher)')
    cfg.model.teacher_ckpt = None
    for part in ('architecture', 'teacher'):  # MMRazor's pretrained=True would download model-index weights
        if isinstance(cfg.model.get(part), dict) and cfg.model[part].get('pretrained') is True:
            cfg.model[part].pretrained = False
    cfg.model.teacher_autocast = teacher_autocast
    cfg.model.teacher_channels_last = channels_last
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
            side: {name: detach_records(records, requires_grad=side == 'student')
                   for name, records in manager.records_by_name().items()}
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
            manager.replay(self.records[side])
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
