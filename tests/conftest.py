import os
import os.path as osp
import subprocess
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEMO_DATA = osp.join(REPO, 'data', 'demo')


def run_tool(args, timeout=600, env=None):
    """Runs ``python tools/...`` from the repo root with this interpreter; fails the test with its output."""
    full_env = dict(os.environ, PYTHON=sys.executable, PYTHONUNBUFFERED='1', **(env or {}))
    result = subprocess.run([sys.executable] + args if args[0].endswith('.py') else args, cwd=REPO,
                            env=full_env, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        pytest.fail(f'{" ".join(args)} exited {result.returncode}\n--- stdout\n{result.stdout[-6000:]}\n'
                    f'--- stderr\n{result.stderr[-6000:]}')
    return result


@pytest.fixture(scope='session')
def demo_data():
    """The bundled demo datasets under data/demo (generated once; deterministic)."""
    from mmdistkd.analysis.demo_data import MAKERS, generate_demo_data  # imports mmdistkd: only when needed
    missing = [task for task in MAKERS if not osp.isdir(osp.join(DEMO_DATA, task))]
    if missing:
        generate_demo_data(DEMO_DATA, missing)
    return DEMO_DATA
