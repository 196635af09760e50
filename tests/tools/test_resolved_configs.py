"""tools/analysis/resolved_configs.py on two configs: one text file each, the resolved config as a literal, the
same text on every run and without this checkout's path (so two dumps compare with ``diff -r``)."""
import ast

from mmdistkd.testing import REPO, run_tool

TOOL = 'tools/analysis/resolved_configs.py'
CONFIGS = ['configs/demo/kd_resnet34_resnet18_demo_cls.py', 'configs/dist/dist_atss_r101_r50_coco.py']


def test_writes_each_config_resolved_and_stable(tmp_path):
    run_tool([TOOL, str(tmp_path / 'first'), *CONFIGS])
    run_tool([TOOL, str(tmp_path / 'second'), *CONFIGS])
    written = sorted(p.relative_to(tmp_path / 'first').as_posix() for p in (tmp_path / 'first').rglob('*.txt'))
    assert written == ['demo/kd_resnet34_resnet18_demo_cls.txt', 'dist/dist_atss_r101_r50_coco.txt']
    for name in written:
        text = (tmp_path / 'first' / name).read_text()
        assert text == (tmp_path / 'second' / name).read_text()
        assert str(REPO) not in text
        cfg = ast.literal_eval(text)
        assert cfg['model']['type'] == 'mmdistkd.SingleTeacherDistill'
    # the bases are merged in: the student's own schedule and the fragment's distiller
    atss = ast.literal_eval((tmp_path / 'first' / written[1]).read_text())
    assert atss['train_cfg']['max_epochs'] == 12
    assert atss['model']['distiller']['distill_losses']['loss_dist']['type'] == 'DISTLoss'
    assert atss['model']['distiller']['student_recorders']['cls']['source'] == 'bbox_head.atss_cls'
