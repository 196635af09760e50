"""End to end through the user's tools: tools/train.py on the demo distillation configs, the exported student
in a plain mmdet / mmseg / mmpretrain model through tools/test.py, resume, and 2-process CPU DDP."""
import os.path as osp
import re

import pytest
import torch

from conftest import REPO, run_tool

DEMO = {
    'det': ('configs/demo/kd_retinanet_r34_r18_demo_det.py', 'configs/demo/retinanet_r18_demo_det_student.py',
            'coco/bbox_mAP'),
    'seg': ('configs/demo/kd_deeplabv3_r34_r18_demo_seg.py', 'configs/demo/deeplabv3_r18_demo_seg_student.py',
            'mIoU'),
    'cls': ('configs/demo/kd_resnet34_resnet18_demo_cls.py', 'configs/demo/resnet18_demo_cls_student.py',
            'accuracy/top1'),
}
# Small batches and 8 val images keep each run to seconds; a barely trained detector scores below RetinaNet's
# default threshold, so the test keeps every box to have something to evaluate.
FAST = ['train_dataloader.batch_size=2', 'val_dataloader.dataset.indices=8', 'test_dataloader.dataset.indices=8',
        'default_hooks.logger.interval=1']
TEST_OPTIONS = dict(det=['--cfg-options', 'model.test_cfg.score_thr=0.0', 'test_dataloader.dataset.indices=8'],
                    seg=['--cfg-options', 'test_dataloader.dataset.indices=8'],
                    cls=['--cfg-options', 'test_dataloader.dataset.indices=8'])


def short_run(iters):
    return ['--cfg-options', f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters}',
            'default_hooks.checkpoint.interval=1'] + FAST


@pytest.mark.parametrize('task', sorted(DEMO))
def test_train_export_and_test_the_student(task, demo_data, tmp_path):
    distill_config, student_config, metric = DEMO[task]
    work_dir = tmp_path / 'work'
    run_tool(['tools/train.py', distill_config, '--work-dir', str(work_dir)] + short_run(2))

    checkpoint = torch.load(work_dir / 'iter_2.pth', map_location='cpu', weights_only=False)
    keys = checkpoint['state_dict'].keys()
    assert keys and all(k.startswith(('architecture.', 'distiller.', 'data_preprocessor.')) for k in keys)
    assert not any('teacher' in k for k in keys)

    exported = torch.load(work_dir / 'student_final.pth', map_location='cpu', weights_only=True)
    assert all(not k.startswith(('architecture.', 'distiller.')) for k in exported['state_dict'])
    result = run_tool(['tools/test.py', student_config, str(work_dir / 'student_final.pth'),
                       '--work-dir', str(tmp_path / 'test')] + TEST_OPTIONS[task])
    assert re.search(re.escape(metric) + r': \d', result.stdout + result.stderr)


def test_resume_continues_at_the_saved_iteration(demo_data, tmp_path):
    config = DEMO['cls'][0]
    work_dir = str(tmp_path / 'work')
    run_tool(['tools/train.py', config, '--work-dir', work_dir] + short_run(2))
    saved = torch.load(osp.join(work_dir, 'iter_2.pth'), map_location='cpu', weights_only=False)
    result = run_tool(['tools/train.py', config, '--work-dir', work_dir, '--resume'] + short_run(3))
    log = result.stdout + result.stderr
    assert 'resumed epoch: 0, iter: 2' in log
    assert osp.exists(osp.join(work_dir, 'iter_3.pth'))
    resumed = torch.load(osp.join(work_dir, 'iter_3.pth'), map_location='cpu', weights_only=False)
    assert resumed['meta']['iter'] == 3
    # One more step from the saved weights: the student changed, but only by one step's worth.
    changed = [k for k, v in saved['state_dict'].items() if not torch.equal(v, resumed['state_dict'][k])]
    assert changed


def test_two_process_cpu_ddp_through_dist_train(demo_data, tmp_path):
    work_dir = tmp_path / 'ddp'
    result = run_tool(['bash', 'tools/dist_train.sh', DEMO['cls'][0], '2', '--work-dir', str(work_dir)]
                      + short_run(2), env={'PORT': '29533'})
    log = result.stdout + result.stderr
    assert 'Distributed training: True' in log and osp.exists(work_dir / 'iter_2.pth')
