"""tools/analysis/plot_dpk_ratio.py and the DPK ratio reader (mmdistkd.analysis.run_logs) on hand-written
mmengine scalars.json files (a real run's file is plotted in tests/configs/test_dpk_configs.py)."""
import json

import pytest

from mmdistkd.analysis.run_logs import load_dpk_ratios
from mmdistkd.testing import run_tool

TOOL = 'tools/analysis/plot_dpk_ratio.py'


def write_run(work_dir, timestamp, records):
    """A run folder as mmengine's LocalVisBackend writes it: one JSON record per line."""
    vis_data = work_dir / timestamp / 'vis_data'
    vis_data.mkdir(parents=True)
    (vis_data / 'scalars.json').write_text(''.join(json.dumps(r) + '\n' for r in records))


def train_record(step, **ratios):
    return dict(lr=0.01, loss=1.0, loss_dpk_layer3=0.2, time=0.5, iter=step, step=step,
                **{f'dpk_pi.{stage}': pi for stage, pi in ratios.items()})


def test_reads_pi_per_stage_from_the_newest_run(tmp_path):
    write_run(tmp_path, '20240101_000000', [train_record(1, layer3=0.9)])
    write_run(tmp_path, '20240102_000000', [
        train_record(1, layer3=0.5, layer4=0.6),
        train_record(2, layer3=0.4, layer4=0.55),
        {'accuracy/top1': 12.5, 'step': 2},  # a validation record
    ])
    assert load_dpk_ratios(str(tmp_path)) == {
        'layer3': [(1, 0.5), (2, 0.4)],
        'layer4': [(1, 0.6), (2, 0.55)],
    }


def test_cli_writes_a_png(tmp_path):
    write_run(tmp_path, '20240102_000000', [train_record(step, p4=0.5 - step / 100, p5=0.4) for step in range(1, 6)])
    result = run_tool([TOOL, str(tmp_path)])
    assert (tmp_path / 'dpk_pi.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert 'p4 0.490 -> 0.450' in result.stdout


def test_a_run_without_dpk_is_a_clear_error(tmp_path):
    write_run(tmp_path, '20240102_000000', [dict(lr=0.01, loss=1.0, step=1)])
    with pytest.raises(ValueError, match=r'no dpk_pi\.<stage> scalars .*keys found: loss, lr, step\): was it a DPK'):
        load_dpk_ratios(str(tmp_path))


def test_a_folder_without_runs_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match='vis_data/scalars.json'):
        load_dpk_ratios(str(tmp_path))
