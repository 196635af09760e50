"""tools/analysis/loss_trace.py: the same config traced twice gives the same losses to the bit (what the
before/after check of a refactor relies on), and --compare reports where two traces part."""
import json
import math

from mmdistkd.testing import load_tool, run_tool

TOOL = 'tools/analysis/loss_trace.py'
CONFIG = 'configs/dist/dist_resnet32x4_resnet8x4_1xb64_cifar100.py'


def test_two_traces_of_one_config_are_bit_identical_and_train(tmp_path):
    for name in ('before', 'after'):
        run_tool([TOOL, str(tmp_path / f'{name}.json'), CONFIG, '--iters', '3', '--input-size', '32', '32'])
    before = json.loads((tmp_path / 'before.json').read_text())
    assert list(before) == [CONFIG]
    steps = before[CONFIG]
    assert len(steps) == 3 and set(steps[0]) == {'loss', 'student.loss', 'loss_dist'}
    assert all(math.isfinite(value) for step in steps for value in step.values())
    # the logged total is the sum of the parts, and the weights change between iterations (the optimizer steps)
    assert all(math.isclose(step['loss'], step['student.loss'] + step['loss_dist'], rel_tol=1e-6) for step in steps)
    assert steps[0]['student.loss'] != steps[1]['student.loss']
    assert before == json.loads((tmp_path / 'after.json').read_text())
    out = run_tool([TOOL, '--compare', str(tmp_path / 'before.json'), str(tmp_path / 'after.json')])
    assert f'ok   {CONFIG} loss_dist: max relative difference 0' in out.stdout
    assert f'{CONFIG}: every loss finite on both sides for 3 of 3 iterations' in out.stdout


def test_compare_names_the_first_iteration_that_differs_and_what_is_missing():
    tool = load_tool(TOOL)
    before = {'a.py': [dict(loss=1.0, x=2.0), dict(loss=1.0, x=4.0)], 'gone.py': [dict(loss=1.0)]}
    after = {'a.py': [dict(loss=1.0, x=2.0), dict(loss=1.0, x=5.0)], 'new.py': [dict(loss=1.0)]}
    rows = tool.compare(before, after, tolerance=0.0)
    assert rows == [('a.py', 'loss', 0.0, None, True), ('a.py', 'x', 0.2, 1, False),
                    ('gone.py', '(whole config)', math.inf, None, False),
                    ('new.py', '(whole config)', math.inf, None, False)]
    assert tool.compare(before, after, tolerance=0.25)[1][-1]
    assert tool.relative_difference(math.nan, math.nan) == 0.0  # both diverged alike ...
    assert tool.finite_iterations([dict(loss=1.0), dict(loss=math.nan), dict(loss=1.0)]) == 1  # ... and say from when
