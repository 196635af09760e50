import os
import os.path as osp
import socket
import subprocess
import sys

import pytest
import torch

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


def run_tool(args, timeout=600, env=None):
    """Runs ``python tools/...`` from the repo root with this interpreter; fails the test with its output."""
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


@pytest.fixture(autouse=True)
def fresh_message_hub(request):
    """A new current mmengine MessageHub for every test, as at the start of a run: a Runner built earlier in the
    same process would leave its own as the current one, with its last iteration and loop stage, which the
    first step's teacher check and DPK's mask generator read."""
    from mmengine.logging import MessageHub
    return MessageHub.get_instance(f'test-{request.node.nodeid}')


@pytest.fixture(scope='session')
def demo_data():
    """The bundled demo datasets under data/demo (generated once; deterministic)."""
    from mmdistkd.analysis.demo_data import MAKERS, generate_demo_data  # imports mmdistkd: only when needed
    missing = [task for task in MAKERS if not osp.isdir(osp.join(DEMO_DATA, task))]
    if missing:
        generate_demo_data(DEMO_DATA, missing)
    return DEMO_DATA
