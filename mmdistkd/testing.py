"""Helpers for tests of mmdistkd and of code built on it (as ``mmdet.testing``): a tiny classification dataset, a
runner for the repository's tools and a loader of their modules, a free port for distributed runs. Not imported by
``import mmdistkd``."""
import importlib.util
import os
import os.path as osp
import socket
import subprocess
import sys

import torch
from mmengine.hooks import Hook

# The repository root of a development install (``pip install -e .`` / ``setup.py develop``), where tools/ and
# configs/ are.
REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEMO_DATA = osp.join(REPO, 'data', 'demo')


class TinyImages(torch.utils.data.Dataset):
    """``num_images`` fixed random uint8 images of ``size x size`` with labels ``index % num_classes``, in the
    form mmpretrain's data preprocessor takes: for tests that train a classifier in a real Runner."""

    def __init__(self, num_images, size, num_classes):
        from mmpretrain.structures import DataSample  # imports mmpretrain: only when needed
        generator = torch.Generator().manual_seed(0)
        self.metainfo = dict(classes=tuple(str(i) for i in range(num_classes)))
        self.items = [dict(inputs=torch.randint(0, 256, (3, size, size), dtype=torch.uint8, generator=generator),
                           data_samples=DataSample().set_gt_label(index % num_classes))
                      for index in range(num_images)]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        return self.items[index]


def load_tool(path):
    """The module of a tool script (``path`` relative to the repository root, e.g. ``'tools/train.py'``), for
    tests of its functions."""
    name = osp.splitext(osp.basename(path))[0]
    spec = importlib.util.spec_from_file_location(f'tool_{name}', osp.join(REPO, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_tool(args, timeout=600, env=None):
    """Runs ``python tools/...`` from the repository root with this interpreter; fails the calling pytest test
    with the tool's output when it exits non-zero."""
    import pytest
    full_env = dict(os.environ, PYTHON=sys.executable, PYTHONUNBUFFERED='1', **(env or {}))
    result = subprocess.run([sys.executable] + args if args[0].endswith('.py') else args, cwd=REPO,
                            env=full_env, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        pytest.fail(f'{" ".join(args)} exited {result.returncode}\n--- stdout\n{result.stdout[-6000:]}\n'
                    f'--- stderr\n{result.stderr[-6000:]}')
    return result


def free_port():
    """A TCP port the OS reports free, for a distributed run's rendezvous (fixed ports collide with other runs)."""
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return str(probe.getsockname()[1])


class MetricsLog(Hook):
    """Keeps what the last hooks see after each validation epoch (``metrics``: one dict per epoch)."""

    priority = 'LOWEST'

    def __init__(self):
        self.metrics = []

    def after_val_epoch(self, runner, metrics=None):
        self.metrics.append(dict(metrics))
