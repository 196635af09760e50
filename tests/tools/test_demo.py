"""A shortened `make demo` (a few iterations per stage) runs end to end and writes its table and plots."""
import os.path as osp

from mmdistkd.testing import run_tool

SHORT = ['train_cfg.max_iters=3', 'train_cfg.val_interval=3', 'default_hooks.checkpoint.interval=3',
         'default_hooks.logger.interval=1', 'val_dataloader.dataset.indices=16']


def test_shortened_demo_writes_table_and_plots(demo_data, tmp_path):
    result = run_tool(['tools/demo.py', '--task', 'cls', '--seeds', '0', '--work-dir', str(tmp_path),
                       '--cfg-options', *SHORT], timeout=900)
    work_dir = tmp_path / 'cls'
    for stage in ('tolerant teacher', 'seed 0, baseline', 'seed 0, dist', 'seed 0, dpk'):
        assert f'=== {stage}' in result.stdout
    table = (work_dir / 'results.md').read_text()
    for run in ('teacher', 'baseline', 'dist', 'dpk'):
        assert f'| {run} |' in table
    assert 'gain over baseline' in table
    # One seed allows no paired test, so no verdict but 'within noise' is given.
    for comparison in ('dist vs baseline', 'dpk vs baseline'):
        assert f'| {comparison} |' in table
    assert 'gain beyond noise' not in table and 'within noise' in table
    for plot in ('val_metric.png', 'train_loss.png', 'dpk_ratio.png'):
        path = work_dir / plot
        assert osp.getsize(path) > 1000 and path.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    # A second run reuses every finished stage.
    again = run_tool(['tools/demo.py', '--task', 'cls', '--seeds', '0', '--work-dir', str(tmp_path),
                      '--cfg-options', *SHORT])
    assert again.stdout.count('(done before:') == 4
