"""tools/analysis/benchmark.py on the demo classification config at 32x32: every JSON field with sane values
(no timing thresholds: the suite runs on shared machines), and the distiller phase of a distiller with
trainable modules (DPK), which then counts in the floor."""
import importlib.util
import json
import math
import os.path as osp

import pytest

from conftest import REPO

CONFIG = 'configs/demo/kd_resnet34_resnet18_demo_cls.py'
# One thread: on a loaded shared machine, two OpenMP threads wait on each other at every small operator.
FAST = ['--batch-size', '4', '--input-size', '32', '32', '--device', 'cpu', '--threads', '1']
TOP_LEVEL_FIELDS = {'config', 'date', 'device', 'torch', 'python', 'task', 'batch_size', 'input_size', 'iters',
                    'warmup', 'memory_rounds', 'teacher_autocast', 'teacher_channels_last', 'memory_measure',
                    'load_average', 'phases', 'floor_phases', 'time_floor_s', 'time_ratio',
                    'memory_floor_definition', 'memory_floor_mb', 'memory_ratio', 'memory_ratio_vs_sum'}
PHASE_FIELDS = {'median_s', 'p25_s', 'p75_s', 'min_s', 'max_s', 'peak_mem_mb', 'peak_rss_mb'}


@pytest.fixture(scope='module')
def benchmark():
    spec = importlib.util.spec_from_file_location('benchmark', osp.join(REPO, 'tools', 'analysis', 'benchmark.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check_phase_stats(phases):
    for name, stats in phases.items():
        assert set(stats) == PHASE_FIELDS, name
        assert 0 < stats['min_s'] <= stats['p25_s'] <= stats['median_s'] <= stats['p75_s'] <= stats['max_s'], name
        assert all(math.isfinite(stats[key]) and stats[key] >= 0 for key in ('peak_mem_mb', 'peak_rss_mb')), name


def test_benchmark_writes_every_field_with_sane_values(benchmark, tmp_path):
    out = tmp_path / 'bench' / 'kd.json'
    benchmark.main([CONFIG, '--iters', '2', '--warmup', '1', '--memory-rounds', '2', '--out', str(out)] + FAST)
    result = json.loads(out.read_text())
    assert set(result) == TOP_LEVEL_FIELDS
    assert result['device'].startswith('cpu')
    assert (result['task'], result['batch_size'], result['input_size']) == ('cls', 4, [32, 32])
    assert (result['iters'], result['warmup'], result['memory_rounds']) == (2, 1, 2)
    # KD has no trainable modules: its losses are measured but not part of the floor.
    assert set(result['phases']) == {'student', 'teacher', 'distill', 'distiller'}
    assert result['floor_phases'] == ['student', 'teacher']
    assert result['memory_floor_definition'] == 'max(student, teacher)'
    check_phase_stats(result['phases'])
    assert result['time_floor_s'] == pytest.approx(
        result['phases']['student']['median_s'] + result['phases']['teacher']['median_s'])
    assert result['time_ratio'] == pytest.approx(result['phases']['distill']['median_s'] / result['time_floor_s'])
    assert result['time_ratio'] > 0
    assert result['memory_ratio'] > 0 and result['memory_ratio_vs_sum'] > 0


def test_trainable_distiller_modules_count_in_the_floor(benchmark):
    # The demo KD config plus a light DPK module on the backbone's last stage (4x4 tokens at 32x32 input).
    stage = dict(type='ModuleOutputs', source='backbone')
    feature = dict(recorder='stage', record_idx=0, data_idx=0)
    args = benchmark.parse_args([CONFIG, '--iters', '1', '--warmup', '0', '--memory-rounds', '1',
                                 '--teacher-autocast', 'bf16', '--channels-last'] + FAST)
    args.cfg_options = {'model.distiller': dict(
        student_recorders=dict(stage=stage), teacher_recorders=dict(stage=stage),
        distill_losses=dict(loss_dpk=dict(type='DPKLoss', student_channels=128, teacher_channels=256, embed_dims=32,
                                          encoder_depth=1, decoder_depth=1, num_heads=4, min_tokens=1)),
        loss_forward_mappings=dict(loss_dpk=dict(preds_S=dict(from_student=True, **feature),
                                                 preds_T=dict(from_student=False, **feature))))}
    result = benchmark.run_benchmark(args)
    assert result['floor_phases'] == ['student', 'teacher', 'distiller']
    assert result['memory_floor_definition'] == 'max(student + distiller, teacher)'
    # With teacher options, a plain fp32 teacher is measured beside them.
    assert set(result['phases']) == {'student', 'teacher', 'distill', 'distiller', 'teacher_fp32'}
    assert (result['teacher_autocast'], result['teacher_channels_last']) == ('bf16', True)
    check_phase_stats(result['phases'])
    assert result['time_ratio'] > 0 and result['time_ratio_vs_fp32_floor'] > 0
