import os.path as osp

import pytest

from mmdistkd.testing import DEMO_DATA


@pytest.fixture(autouse=True)
def fresh_message_hub(request):
    """A new current mmengine MessageHub for every test, as at the start of a run: a Runner built earlier in the
    same process would leave its own as the current one, with its last iteration and loop stage, which the
    first step's teacher check and DPK's mask generator read."""
    from mmengine.logging import MessageHub
    return MessageHub.get_instance(f'test-{request.node.nodeid}')


@pytest.fixture(autouse=True)
def restored_default_scope():
    """mmengine's current default scope as before the test: a Runner or ``init_default_scope`` in one test would
    otherwise decide in which registry the next test's unprefixed type names resolve."""
    from mmengine.registry import DefaultScope
    before = set(DefaultScope._instance_dict)
    yield
    for name in set(DefaultScope._instance_dict) - before:
        del DefaultScope._instance_dict[name]


@pytest.fixture(scope='session')
def demo_data():
    """The bundled demo datasets under data/demo (generated once; deterministic)."""
    from mmdistkd.analysis.demo_data import MAKERS, generate_demo_data  # imports mmdistkd: only when needed
    missing = [task for task in MAKERS if not osp.isdir(osp.join(DEMO_DATA, task))]
    if missing:
        generate_demo_data(DEMO_DATA, missing)
    return DEMO_DATA
