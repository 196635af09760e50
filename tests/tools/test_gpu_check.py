"""tools/analysis/gpu_check.py without a GPU: its argument checks (exit 2 with argparse's message; in this
process, as starting one costs seconds of imports), its exit 0 when CUDA is absent, and a real table from its
rows on the CPU (the developer flag ``--device cpu``: fp32 and channels-last teacher, on the demo DIST
classification config at 32x32)."""
import json

import pytest

from mmdistkd.testing import load_tool, run_tool

TOOL = 'tools/analysis/gpu_check.py'
CPU_ROWS = ['--device', 'cpu', '--configs', 'configs/demo/dist_resnet34_resnet18_demo_cls.py', '--variants', 'fp32',
            'fp32_cl', '--iters', '2', '--batch-size', '2', '--input-size', '32', '32']


@pytest.mark.parametrize('args, message', [
    (['--configs', 'no_such_config'], "--configs: 'no_such_config' is neither one of dist_cls, "),
    (['--iters', '1'], '--iters must be at least 2 (the first iteration is not timed), got 1'),
    (['--variants', 'fp8'], "argument --variants: invalid choice: 'fp8'"),
    (['--device', 'cpu', '--variants', 'bf16'], "--device cpu runs only the fp32 variants (mmengine's "
                                                "AmpOptimWrapper needs a GPU), not ['bf16']"),
])
def test_wrong_arguments_exit_2_with_the_reason(args, message, capsys):
    gpu_check = load_tool(TOOL)
    with pytest.raises(SystemExit) as exit_status:
        gpu_check.parse_args(args)
    assert exit_status.value.code == 2
    assert message in capsys.readouterr().err


def test_without_cuda_it_says_so_and_exits_0(tmp_path):
    out = tmp_path / 'gpu_check.json'
    result = run_tool([TOOL, '--out', str(out)], env=dict(CUDA_VISIBLE_DEVICES=''))
    assert 'CUDA is not available on this machine, so there is nothing to check' in result.stdout
    assert not out.exists()


def test_rows_on_the_cpu_give_a_table_of_their_figures(tmp_path):
    out = tmp_path / 'gpu_check.json'
    lines = run_tool([TOOL, *CPU_ROWS, '--out', str(out)]).stdout.splitlines()
    report = json.loads(out.read_text())
    fp32, channels_last = report['rows']
    assert (fp32['variant'], channels_last['variant']) == ('fp32', 'fp32_cl')
    assert set(fp32['first_losses']) == {'loss', 'student.loss', 'loss_dist'}
    assert fp32['max_rel_diff'] == 0 and channels_last['max_rel_diff'] <= channels_last['tolerance'] == 5e-3
    for row in report['rows']:
        assert row['finite'] and row['ok'] and row['iters'] == 2
        assert row['time_ratio'] == pytest.approx(row['distill_step_s'] / row['student_step_s'])
        assert row['distill_peak_mb'] is None and row['memory_ratio'] is None  # GPU memory only
    assert report['ddp'] == dict(status='skipped', reason='--device cpu')
    table = [[cell.strip() for cell in line.strip('|').split('|')] for line in lines if line.startswith('| ')]
    assert table[0][:4] == ['config', 'variant', 'finite', 'max rel diff vs fp32']
    assert [row[:4] for row in table[1:]] == [
        ['dist_resnet34_resnet18_demo_cls', row['variant'], 'True', f"{row['max_rel_diff']:.2e}"]
        for row in report['rows']]
    assert [row[8] for row in table[1:]] == [f"{row['time_ratio']:.3f}" for row in report['rows']]
    assert '2-process DDP (tools/dist_train.sh, NCCL): skipped (--device cpu)' in lines
