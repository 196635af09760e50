"""Trains distillation configs for some hundred iterations on synthetic batches and writes every logged loss of
every iteration, so that a refactor can be checked to leave training unchanged (same machine, two checkouts):

    python tools/analysis/loss_trace.py before.json --iters 200 CONFIG [CONFIG ...]
    # in the other checkout, the same command to after.json, then
    python tools/analysis/loss_trace.py --compare before.json after.json

Each config is built as the benchmark builds it (``load_benchmark_config``: a randomly initialised teacher) from
seed 0 and initialised by its ``init_weights`` with the ``Pretrained`` initialisers skipped (they would download;
the rest, e.g. the focal-loss heads' prior bias, keeps training finite), with its own ``optim_wrapper``
(schedulers are not stepped: the learning rates stay at their configured values). Iteration ``i`` trains on the
synthetic batch of seed ``i`` (``synthetic_batch_for``: the student's task and classes) after
``torch.manual_seed(i)`` (DPK's token masks).
``--compare`` prints, per config and loss, the largest relative difference over the iterations and the first
iteration that differs, and per config how many iterations kept every loss finite on both sides (a run that
diverges compares equal afterwards only in that both are NaN); it exits 1 when a config or loss is missing on one
side or a difference exceeds ``--tolerance`` (default 0: bit-identical).
"""
import argparse
import json
import math
import os.path as osp
import sys
from unittest import mock

import torch
from mmengine.config import DictAction
from mmengine.model.weight_init import PretrainedInit
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

import mmdistkd  # noqa: F401  (registers mmdistkd's modules and mmdistkd:: config paths)
from mmdistkd.analysis.step_phases import load_benchmark_config
from mmdistkd.analysis.synthetic import fit_preprocessor_to_size, synthetic_batch_for
from mmdistkd.registry import MODELS
from mmdistkd.utils.tasks import task_of

# Small inputs: the check is for sameness, not for a realistic cost.
INPUT_SIZE = dict(det=(256, 256), seg=(128, 128), cls=(64, 64))  # DPK needs 2x2 maps at stride 128 / 32
BATCH_SIZE = dict(det=2, seg=2, cls=8)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('out', nargs='?', help='JSON file for the traces (with CONFIG)')
    parser.add_argument('configs', nargs='*', metavar='CONFIG', help='distillation config files')
    parser.add_argument('--iters', type=int, default=200, help='training iterations per config')
    parser.add_argument('--input-size', type=int, nargs=2, metavar=('H', 'W'),
                        help='default: 256 256 (det), 128 128 (seg), 64 64 (cls)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        help='override settings of every config, as tools/train.py (e.g. a lower '
                             'optim_wrapper.optimizer.lr where the configured warm-up, not stepped here, keeps a '
                             'run finite)')
    parser.add_argument('--compare', nargs=2, metavar=('BEFORE', 'AFTER'), help='compare two trace files')
    parser.add_argument('--tolerance', type=float, default=0.0, help='largest relative difference that passes')
    args = parser.parse_intermixed_args(argv)
    if not args.compare and not (args.out and args.configs):
        parser.error('give OUT and at least one CONFIG, or --compare BEFORE AFTER')
    if args.iters < 1:
        parser.error(f'--iters must be at least 1, got {args.iters}')
    return args


def trace(config, iters, input_size=None, cfg_options=None):
    """Logged losses (floats by name) of each of ``iters`` training iterations of ``config``."""
    cfg = load_benchmark_config(config, cfg_options)
    cfg.model.check_teacher = False  # no first-step teacher check: it would warn of the random teacher
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmengine')):
        model = MODELS.build(cfg.model)
        with mock.patch.object(PretrainedInit, '__call__', lambda initializer, module: None):
            model.init_weights()
        model.train()
        optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
        task = task_of(model.student)
        size = tuple(input_size or INPUT_SIZE[task])
        fit_preprocessor_to_size(model.data_preprocessor, *size)
        losses = []
        for i in range(iters):
            batch = synthetic_batch_for(model.student, BATCH_SIZE[task], *size, seed=i)
            torch.manual_seed(i)
            log_vars = model.train_step(batch, optim_wrapper)
            losses.append({name: value.item() for name, value in log_vars.items()})
    return losses


def relative_difference(a, b):
    if a == b or (math.isnan(a) and math.isnan(b)):
        return 0.0
    return abs(a - b) / max(abs(a), abs(b))


def finite_iterations(steps):
    """How many iterations from the first had every logged value finite."""
    return next((i for i, step in enumerate(steps) if not all(map(math.isfinite, step.values()))), len(steps))


def compare(before, after, tolerance):
    """Rows (config, loss, largest relative difference, first differing iteration or None, ok) of two traces."""
    rows = []
    for config in sorted(set(before) | set(after)):
        if config not in before or config not in after:
            rows.append((config, '(whole config)', math.inf, None, False))
            continue
        old, new = before[config], after[config]
        names = sorted(set().union(*old, *new))
        for name in names:
            if len(old) != len(new) or any(name not in step for step in old + new):
                rows.append((config, name, math.inf, None, False))
                continue
            diffs = [relative_difference(o[name], n[name]) for o, n in zip(old, new)]
            first = next((i for i, diff in enumerate(diffs) if diff > 0), None)
            rows.append((config, name, max(diffs), first, max(diffs) <= tolerance))
    return rows


def main(argv=None):
    args = parse_args(argv)
    if args.compare:
        traces = []
        for path in args.compare:
            with open(path, encoding='utf-8') as f:
                traces.append(json.load(f))
        rows = compare(*traces, args.tolerance)
        for config, name, diff, first, ok in rows:
            where = '' if first is None else f' (from iteration {first})'
            print(f'{"ok  " if ok else "DIFF"} {config} {name}: max relative difference {diff:.3g}{where}')
        for config in sorted(set(traces[0]) & set(traces[1])):
            finite = min(finite_iterations(trace[config]) for trace in traces)
            print(f'{config}: every loss finite on both sides for {finite} of {len(traces[0][config])} iterations')
        return 0 if all(row[-1] for row in rows) else 1
    traces = {}
    for config in args.configs:
        name = osp.relpath(osp.abspath(config))
        traces[name] = trace(config, args.iters, args.input_size, args.cfg_options)
        print(f'{name}: {args.iters} iterations, last loss {traces[name][-1]["loss"]:.6g}', flush=True)
    with open(args.out, 'w', encoding='utf-8') as f:
        json.dump(traces, f, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
