"""Checks distillation on a CUDA GPU: one config per method and task at reduced size, trained for a few
iterations in each precision and teacher memory format, against the fp32 step and the student alone.

Rows, one per (config, variant), each from a fresh model built with the same seed (same weights, same synthetic
batch, the benchmark's ``Phases`` (``mmdistkd/analysis/step_phases.py``) for the optimizer wrappers and the
student's own step):

- variants: ``fp32``; ``fp32_cl`` (teacher in channels-last memory format, ``teacher_channels_last``);
  ``amp_fp16`` (mmengine's ``AmpOptimWrapper``, fp16, dynamic loss scale: what ``tools/train.py --amp`` sets);
  ``bf16`` (``AmpOptimWrapper`` in bf16 and ``teacher_autocast='bf16'``); ``bf16_cl`` (that and channels-last);
- ``finite``: every logged loss of every iteration is finite;
- ``max_rel_diff``: the largest relative difference of the first iteration's logged losses (same weights and
  batch) from the ``fp32`` row's, against ``tolerance`` (``ok``). fp16 and bf16 round to 11 and 8 significant
  bits (the fp32 rows' cuDNN convolutions TF32 by default: 10 bits, and channels-last picks other algorithms);
  tests/models/test_precision.py measured up to 1.1% on CPU in bf16, and 5% for DIST, whose Pearson
  correlations of untrained, nearly uniform probabilities amplify the rounding of the logits;
- ``time_ratio``: median time of the distillation step over the student's own step (CUDA events; the first
  iteration, with cuDNN's autotuning, left out); ``memory_ratio``: their ``torch.cuda.max_memory_allocated``
  peaks above the memory in use at the start of each (weights, optimizer state, batch).

Where there are 2 GPUs or more, ``tools/dist_train.sh`` trains the demo DIST classification config for a few
iterations in 2 processes (NCCL) on the demo data (generated if missing) and must end with the exported student.

    python tools/analysis/gpu_check.py --out gpu_check.json

The default rows are sized for 8 minutes on one H100-class GPU (estimated about 5; not yet run on one);
``--configs``, ``--variants`` and ``--iters`` shorten it. Without CUDA the tool says so and exits 0.
``--device cpu``, a developer flag, runs the fp32 variants on the CPU (``perf_counter`` times, no memory
columns). Exit status 1 when a row is not ``ok`` or the DDP run failed.
"""
import argparse
import datetime
import json
import math
import os
import os.path as osp
import statistics
import subprocess
import sys
import tempfile
import time

import torch
from mmengine.registry import DefaultScope

TOOLS = osp.dirname(osp.dirname(osp.abspath(__file__)))
REPO = osp.dirname(TOOLS)
sys.path.insert(0, TOOLS)
from train import enable_amp  # noqa: E402

from mmdistkd.analysis.memory_probes import CudaMemoryPeak  # noqa: E402
from mmdistkd.analysis.step_phases import DEFAULT_BATCH_SIZE, Phases, device_description, load_benchmark_config  # noqa: E402, E501
from mmdistkd.analysis.synthetic import fit_preprocessor_to_size, synthetic_batch_for  # noqa: E402
from mmdistkd.analysis.tables import markdown_table  # noqa: E402
from mmdistkd.models.losses import DISTLoss  # noqa: E402
from mmdistkd.registry import MODELS  # noqa: E402
from mmdistkd.utils.tasks import task_of  # noqa: E402

# One config per method and task (KD runs beside DPK in the ImageNet DPK config, as the DPK authors did).
CONFIGS = {
    'dist_cls': 'configs/dist/dist_resnet34_resnet18_8xb32_in1k.py',
    'kd_dpk_cls': 'configs/dpk/dpk_resnet34_resnet18_8xb32_in1k.py',
    'dist_det': 'configs/dist/dist_retinanet_r101_r50_coco.py',
    'fgd_det': 'configs/fgd/fgd_retinanet_r101_r50_coco.py',
    'dpk_fgd_det': 'configs/dpk/dpk_retinanet_r101_r50_coco.py',
    'dist_seg': 'configs/dist/dist_deeplabv3_r101_r18_cityscapes.py',
    'dpk_seg': 'configs/dpk/dpk_deeplabv3_r101_r18_cityscapes.py',
}
# Reduced input sizes (height, width); batch sizes are the benchmark's.
INPUT_SIZE = dict(det=(512, 512), seg=(512, 512), cls=(224, 224))
# variant -> (AmpOptimWrapper dtype or None, teacher_autocast, teacher_channels_last)
VARIANTS = {
    'fp32': (None, None, False),
    'fp32_cl': (None, None, True),
    'amp_fp16': ('float16', None, False),
    'bf16': ('bfloat16', 'bf16', False),
    'bf16_cl': ('bfloat16', 'bf16', True),
}
TOLERANCE = dict(fp32=5e-3, float16=1e-2, bfloat16=3e-2)
DIST_TOLERANCE = 0.1  # see the module docstring
DDP_CONFIG = 'configs/demo/dist_resnet34_resnet18_demo_cls.py'
DDP_ITERS = 20


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--configs', nargs='+', default=list(CONFIGS), metavar='NAME_OR_PATH',
                        help=f'rows\' configs: names ({", ".join(CONFIGS)}) or distillation config files')
    parser.add_argument('--variants', nargs='+', default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument('--iters', type=int, default=5, help='training iterations per row (at least 2)')
    parser.add_argument('--batch-size', type=int, help='default: the benchmark\'s (2 det, 2 seg, 32 cls)')
    parser.add_argument('--input-size', type=int, nargs=2, metavar=('H', 'W'),
                        help='default: 512 512 (det, seg), 224 224 (cls)')
    parser.add_argument('--no-ddp', action='store_true', help='skip the 2-process run of tools/dist_train.sh')
    parser.add_argument('--out', help='write the table as JSON here')
    parser.add_argument('--device', choices=['cuda', 'cpu'], default='cuda', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.iters < 2:
        parser.error(f'--iters must be at least 2 (the first iteration is not timed), got {args.iters}')
    if args.batch_size is not None and args.batch_size < 1:
        parser.error(f'--batch-size must be at least 1, got {args.batch_size}')
    args.configs = [config_path(parser, config) for config in args.configs]
    amp = [variant for variant in args.variants if VARIANTS[variant][0]]
    if args.device == 'cpu' and amp:
        parser.error(f'--device cpu runs only the fp32 variants (mmengine\'s AmpOptimWrapper needs a GPU), not {amp}')
    return args


def config_path(parser, config):
    """A config name of ``CONFIGS`` or an existing file, as a path."""
    path = CONFIGS.get(config, config)
    found = [candidate for candidate in (osp.join(REPO, path), osp.abspath(path)) if osp.isfile(candidate)]
    if not found:
        parser.error(f'--configs: {config!r} is neither one of {", ".join(CONFIGS)} nor a config file')
    return found[0]


# ---------------------------------------------------------------------------------------------- one row
def build_phases(config, variant, args):
    """The variant's model, synthetic batch (preprocessed) and benchmark ``Phases``, from seed 0."""
    amp_dtype, teacher_autocast, channels_last = VARIANTS[variant]
    cfg = load_benchmark_config(config, teacher_autocast=teacher_autocast, channels_last=channels_last)
    cfg.model.check_teacher = False
    if amp_dtype:
        enable_amp(cfg)
        for wrapper in ([cfg.optim_wrapper] if 'optimizer' in cfg.optim_wrapper else
                        [w for key, w in cfg.optim_wrapper.items() if key != 'constructor']):
            wrapper.dtype = amp_dtype
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmengine')):
        model = MODELS.build(cfg.model).to(args.device).train()
        task = task_of(model.student)
        input_size = tuple(args.input_size or INPUT_SIZE[task])
        fit_preprocessor_to_size(model.data_preprocessor, *input_size)
        batch = synthetic_batch_for(model.student, args.batch_size or DEFAULT_BATCH_SIZE[task], *input_size)
        data = model.data_preprocessor(batch, True)
        return task, Phases(model, cfg.optim_wrapper, data)


def uses_dist(model):
    return any(isinstance(loss, DISTLoss) for loss in model.distiller.distill_losses.values())


def log_losses_of(model, logged):
    """Appends to ``logged`` the logged losses (floats) of each of ``model``'s steps, as its ``parse_losses``
    (which ``Phases.distill_step`` calls) computes them."""
    parse_losses = model.parse_losses

    def parse_and_log(losses):
        loss, log_vars = parse_losses(losses)
        logged.append({name: float(value) for name, value in log_vars.items()})
        return loss, log_vars

    model.parse_losses = parse_and_log


class Timer:
    """Seconds of a phase: CUDA events on the GPU, ``perf_counter`` on the CPU."""

    def __init__(self, device):
        self.device = device

    def __call__(self, phase):
        if self.device != 'cuda':
            start = time.perf_counter()
            phase()
            return time.perf_counter() - start
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        phase()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1000


def peak_mb(phase, device):
    """The phase's peak allocated GPU memory above the memory in use at its start, in MiB (None on the CPU)."""
    if device != 'cuda':
        return None
    probe = CudaMemoryPeak()
    probe.begin()
    phase()
    return probe.end()['peak_mem_mb'] / 2**20


def run_row(name, config, variant, args):
    """Trains ``args.iters`` iterations (distillation step, then the student's own step) and measures."""
    task, phases = build_phases(config, variant, args)
    timer = Timer(args.device)
    logged, distill_s, student_s = [], [], []
    log_losses_of(phases.model, logged)
    for _ in range(args.iters):
        torch.manual_seed(1)  # the same DPK token masks in every row
        distill_s.append(timer(phases.distill_step))
        student_s.append(timer(phases.student_step))
    distill_mb, student_mb = peak_mb(phases.distill_step, args.device), peak_mb(phases.student_step, args.device)
    logged = logged[:args.iters]  # the memory round's step is not one of the row's iterations
    distill_median, student_median = statistics.median(distill_s[1:]), statistics.median(student_s[1:])
    return dict(
        name=name, config=osp.relpath(config, REPO), task=task, variant=variant, iters=args.iters,
        first_losses=logged[0], last_loss=logged[-1]['loss'],
        finite=all(math.isfinite(value) for losses in logged for value in losses.values()),
        tolerance=row_tolerance(variant, uses_dist(phases.model)),
        distill_step_s=distill_median, student_step_s=student_median, time_ratio=distill_median / student_median,
        distill_peak_mb=distill_mb, student_peak_mb=student_mb,
        memory_ratio=distill_mb / student_mb if distill_mb is not None and student_mb else None)


def row_tolerance(variant, with_dist):
    amp_dtype = VARIANTS[variant][0]
    return TOLERANCE['fp32'] if amp_dtype is None else DIST_TOLERANCE if with_dist else TOLERANCE[amp_dtype]


def compare_with_fp32(rows):
    """Adds ``max_rel_diff`` (first iteration's losses against the config's fp32 row) and ``ok``."""
    fp32 = {row['config']: row['first_losses'] for row in rows if row['variant'] == 'fp32'}
    for row in rows:
        reference = fp32.get(row['config'])
        row['max_rel_diff'] = None if reference is None else max(
            abs(value - reference[key]) / max(abs(reference[key]), 1e-12) for key, value in row['first_losses'].items())
        row['ok'] = row['finite'] and (row['max_rel_diff'] is None or row['max_rel_diff'] <= row['tolerance'])


# ---------------------------------------------------------------------------------------------- DDP
def ddp_check(args):
    """The 2-process NCCL run of tools/dist_train.sh, or why it was skipped."""
    if args.no_ddp:
        return dict(status='skipped', reason='--no-ddp')
    if args.device != 'cuda':
        return dict(status='skipped', reason='--device cpu')
    if torch.cuda.device_count() < 2:
        return dict(status='skipped', reason=f'needs 2 GPUs, found {torch.cuda.device_count()}')
    from mmdistkd.analysis.demo_data import generate_demo_data
    demo_root = osp.join(REPO, 'data', 'demo')
    if not osp.isdir(osp.join(demo_root, 'cls')):
        generate_demo_data(demo_root, ['cls'])
    with tempfile.TemporaryDirectory() as work_dir:
        command = ['bash', osp.join(REPO, 'tools', 'dist_train.sh'), osp.join(REPO, DDP_CONFIG), '2',
                   '--work-dir', work_dir, '--cfg-options', f'train_cfg.max_iters={DDP_ITERS}',
                   f'train_cfg.val_interval={DDP_ITERS}', f'default_hooks.checkpoint.interval={DDP_ITERS}',
                   'model.teacher_ckpt=None']
        start = time.perf_counter()
        result = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
        exported = osp.isfile(osp.join(work_dir, 'student_final.pth'))
    ok = result.returncode == 0 and exported
    return dict(status='ok' if ok else 'failed', seconds=time.perf_counter() - start, command=' '.join(command),
                returncode=result.returncode, student_exported=exported,
                output_tail=None if ok else (result.stdout + result.stderr)[-4000:])


# ---------------------------------------------------------------------------------------------- report
def format_table(report):
    def number(value, spec):
        return '—' if value is None else format(value, spec)

    header = ['config', 'variant', 'finite', 'max rel diff vs fp32', 'tolerance', 'ok', 'distill s', 'student s',
              'time ratio', 'distill MiB', 'student MiB', 'memory ratio']
    rows = [[row['name'], row['variant'], row['finite'], number(row['max_rel_diff'], '.2e'),
             number(row['tolerance'], 'g'), row['ok'], number(row['distill_step_s'], '.4f'),
             number(row['student_step_s'], '.4f'), number(row['time_ratio'], '.3f'),
             number(row['distill_peak_mb'], '.0f'), number(row['student_peak_mb'], '.0f'),
             number(row['memory_ratio'], '.3f')] for row in report['rows']]
    ddp = report['ddp']
    ddp_line = f"2-process DDP (tools/dist_train.sh, NCCL): {ddp['status']}" + (
        f" ({ddp['reason']})" if 'reason' in ddp else f" in {ddp['seconds']:.0f} s")
    return '\n'.join([f"{report['device']}  torch {report['torch']}  {report['iters']} iterations per row", '',
                      markdown_table(header, rows), '', ddp_line])


def main(argv=None):
    args = parse_args(argv)
    if args.device == 'cuda' and not torch.cuda.is_available():
        print('gpu_check: CUDA is not available on this machine, so there is nothing to check; run it on a GPU '
              'machine (docs/gpu.md). The CPU checks are tests/models/test_device.py and test_precision.py.')
        return 0
    start = time.perf_counter()
    rows = []
    for config in args.configs:
        name = next((key for key, path in CONFIGS.items() if osp.join(REPO, path) == config),
                    osp.splitext(osp.basename(config))[0])
        for variant in args.variants:
            rows.append(run_row(name, config, variant, args))
            print(f"{name} {variant}: done after {time.perf_counter() - start:.0f} s", flush=True)
    compare_with_fp32(rows)
    report = dict(date=datetime.datetime.now().astimezone().isoformat(timespec='seconds'),
                  device=device_description(args.device),
                  torch=torch.__version__, iters=args.iters, rows=rows, ddp=ddp_check(args))
    report['seconds'] = time.perf_counter() - start
    print(format_table(report))
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as file:
            json.dump(report, file, indent=2)
    return 0 if all(row['ok'] for row in rows) and report['ddp']['status'] != 'failed' else 1


if __name__ == '__main__':
    sys.exit(main())
