"""tools/analysis/benchmark.py on the demo classification config at 32x32: the figures it reports are the ones
it claims (the floor is the sum of the floor phases' median times, the ratios divide the full step by the
floors, the printed table shows the JSON's figures), and a distiller with trainable modules (DPK) counts in
the floor. No timing thresholds: the suite runs on shared machines."""
import json
import math

import pytest

from mmdistkd.testing import REPO, run_tool

CONFIG = 'configs/demo/kd_resnet34_resnet18_demo_cls.py'
# One thread: on a loaded shared machine, two OpenMP threads wait on each other at every small operator.
FAST = ['--batch-size', '4', '--input-size', '32', '32', '--device', 'cpu', '--threads', '1']
TOP_LEVEL_FIELDS = {'config', 'date', 'device', 'torch', 'python', 'task', 'batch_size', 'input_size', 'iters',
                    'warmup', 'memory_rounds', 'teacher_autocast', 'teacher_channels_last', 'memory_measure',
                    'load_average', 'phases', 'floor_phases', 'time_floor_s', 'time_ratio',
                    'memory_floor_definition', 'memory_floor_mb', 'memory_ratio', 'memory_ratio_vs_sum'}
PHASE_FIELDS = {'median_s', 'p25_s', 'p75_s', 'min_s', 'max_s', 'peak_mem_mb', 'peak_rss_mb'}
# The demo KD config plus a light DPK module on the backbone's last stage (4x4 tokens at 32x32 input).
WITH_DPK = f'''_base_ = ['{REPO}/{CONFIG}']
stage = dict(type='ModuleOutputs', source='backbone')
feature = dict(recorder='stage', record_idx=0, data_idx=0)
model = dict(distiller=dict(
    student_recorders=dict(stage=stage), teacher_recorders=dict(stage=stage),
    distill_losses=dict(loss_dpk=dict(type='DPKLoss', student_channels=128, teacher_channels=256, embed_dims=32,
                                      encoder_depth=1, decoder_depth=1, num_heads=4, min_tokens=1)),
    loss_forward_mappings=dict(loss_dpk=dict(preds_S=dict(from_student=True, **feature),
                                             preds_T=dict(from_student=False, **feature)))))
'''


def benchmark(config, out, *options):
    """Runs the command; returns its JSON and the lines it printed."""
    result = run_tool(['tools/analysis/benchmark.py', config, '--out', str(out), *options] + FAST)
    return json.loads(out.read_text()), result.stdout.splitlines()


def check_phase_stats(phases):
    for name, stats in phases.items():
        assert set(stats) == PHASE_FIELDS, name
        assert 0 < stats['min_s'] <= stats['p25_s'] <= stats['median_s'] <= stats['p75_s'] <= stats['max_s'], name
        assert all(math.isfinite(stats[key]) and stats[key] >= 0 for key in ('peak_mem_mb', 'peak_rss_mb')), name


def check_floors_and_ratios(result):
    """The floors and ratios from the phases' figures, as the tool's docstring defines them."""
    phases, floor = result['phases'], result['floor_phases']
    median = {name: stats['median_s'] for name, stats in phases.items()}
    peak = {name: stats['peak_mem_mb'] for name, stats in phases.items()}
    assert result['time_floor_s'] == pytest.approx(sum(median[name] for name in floor))
    assert result['time_ratio'] == pytest.approx(median['distill'] / result['time_floor_s'])
    student_side = peak['student'] + (peak['distiller'] if 'distiller' in floor else 0)
    assert result['memory_floor_mb'] == pytest.approx(max(student_side, peak['teacher']))
    if result['memory_floor_mb'] > 0:
        assert result['memory_ratio'] == pytest.approx(peak['distill'] / result['memory_floor_mb'])
    assert result['memory_ratio_vs_sum'] == pytest.approx(peak['distill'] / sum(peak[name] for name in floor))


def check_printed_table(result, lines):
    """Every phase row of the printed Markdown table holds the JSON's figures at the printed precision, and
    the ratio lines the JSON's ratios."""
    rows = {cells[0]: cells[1:] for cells in ([cell.strip() for cell in line.strip('|').split('|')]
                                               for line in lines if line.startswith('| '))}
    assert rows.pop('phase') == ['median s', 'p25 s', 'p75 s', 'peak MiB', 'RSS MiB', 'in floor']
    assert set(rows) == set(result['phases'])
    for name, stats in result['phases'].items():
        assert rows[name] == [f'{stats[key]:.4f}' for key in ('median_s', 'p25_s', 'p75_s')] + \
            [f'{stats[key]:.1f}' for key in ('peak_mem_mb', 'peak_rss_mb')] + \
            ['yes' if name in result['floor_phases'] else ''], name
    floor = ' + '.join(result['floor_phases'])
    assert f"time_ratio   = distill / ({floor}) = {result['time_ratio']:.3f}" in lines
    assert (f"memory_ratio = distill / {result['memory_floor_definition']} = {result['memory_ratio']:.3f}"
            f"  (vs the sum: {result['memory_ratio_vs_sum']:.3f})") in lines


def test_benchmark_reports_its_floor_and_ratios(tmp_path):
    result, lines = benchmark(CONFIG, tmp_path / 'bench' / 'kd.json', '--iters', '2', '--warmup', '1',
                              '--memory-rounds', '2')
    assert set(result) == TOP_LEVEL_FIELDS
    assert result['device'].startswith('cpu')
    assert (result['task'], result['batch_size'], result['input_size']) == ('cls', 4, [32, 32])
    assert (result['iters'], result['warmup'], result['memory_rounds']) == (2, 1, 2)
    # KD has no trainable modules: its losses are measured but not part of the floor.
    assert set(result['phases']) == {'student', 'teacher', 'distill', 'distiller'}
    assert result['floor_phases'] == ['student', 'teacher']
    assert result['memory_floor_definition'] == 'max(student, teacher)'
    check_phase_stats(result['phases'])
    check_floors_and_ratios(result)
    check_printed_table(result, lines)


def test_trainable_distiller_modules_count_in_the_floor(tmp_path):
    config = tmp_path / 'kd_with_dpk.py'
    config.write_text(WITH_DPK)
    result, lines = benchmark(str(config), tmp_path / 'dpk.json', '--iters', '1', '--warmup', '0',
                              '--memory-rounds', '1', '--teacher-autocast', 'bf16', '--channels-last')
    assert result['floor_phases'] == ['student', 'teacher', 'distiller']
    assert result['memory_floor_definition'] == 'max(student + distiller, teacher)'
    # With teacher options, a plain fp32 teacher is measured beside them, and the step compared with its floor.
    assert set(result['phases']) == {'student', 'teacher', 'distill', 'distiller', 'teacher_fp32'}
    assert (result['teacher_autocast'], result['teacher_channels_last']) == ('bf16', True)
    check_phase_stats(result['phases'])
    check_floors_and_ratios(result)
    median = {name: stats['median_s'] for name, stats in result['phases'].items()}
    fp32_floor = median['student'] + median['teacher_fp32'] + median['distiller']
    assert result['time_ratio_vs_fp32_floor'] == pytest.approx(median['distill'] / fp32_floor)
    check_printed_table(result, lines)
    assert f"time_ratio vs the fp32 teacher floor = {result['time_ratio_vs_fp32_floor']:.3f}" in lines
