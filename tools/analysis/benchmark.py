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
import json
import os
import os.path as osp
import sys

import torch
from mmengine.config import DictAction
from mmengine.registry import DefaultScope

import mmdistkd  # noqa: F401  (registers mmdistkd's modules and mmdistkd:: config paths)
from mmdistkd.analysis.memory_probes import CudaMemoryPeak, HostMemoryPeak
from mmdistkd.analysis.step_phases import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_INPUT_SIZE,
    Phases,
    format_table,
    load_benchmark_config,
    profile_phases,
    run_rounds,
    summarise,
)
from mmdistkd.analysis.synthetic import fit_preprocessor_to_size, synthetic_batch_for
from mmdistkd.registry import MODELS
from mmdistkd.utils.tasks import task_of


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


def run_benchmark(args):
    """Measures, prints the table, writes ``args.out``; returns the results as a dict."""
    if args.device == 'cuda' and not torch.cuda.is_available():
        sys.exit('--device cuda: CUDA is not available')
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = load_benchmark_config(args.config, args.cfg_options, args.teacher_autocast, args.channels_last)
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
