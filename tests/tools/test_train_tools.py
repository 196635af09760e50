"""End to end through the user's tools: tools/train.py on the demo distillation configs, the exported student
(tools/extract_student.py or the export hook) in a plain mmdet / mmseg / mmpretrain model through tools/test.py,
resume, and 2-process CPU DDP."""
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.runner import load_checkpoint

import mmdistkd  # noqa: F401
from mmdistkd.registry import MODELS
from mmdistkd.testing import REPO, free_port, run_tool

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


def short_distill_run(iters):
    """A short run of a demo distillation config with a random teacher (they name the teacher `make demo`
    trains, which the tests do not)."""
    return short_run(iters) + ['model.teacher_ckpt=None']


@pytest.mark.parametrize('task', sorted(DEMO))
def test_train_export_and_test_the_student(task, demo_data, tmp_path):
    distill_config, student_config, metric = DEMO[task]
    work_dir = tmp_path / 'work'
    run_tool(['tools/train.py', distill_config, '--work-dir', str(work_dir)] + short_distill_run(2))

    checkpoint = torch.load(work_dir / 'iter_2.pth', map_location='cpu', weights_only=False)
    keys = checkpoint['state_dict'].keys()
    assert keys and all(k.startswith(('architecture.', 'distiller.', 'data_preprocessor.')) for k in keys)
    assert not any('teacher' in k for k in keys)

    exported = torch.load(work_dir / 'student_final.pth', map_location='cpu', weights_only=True)
    assert all(not k.startswith(('architecture.', 'distiller.')) for k in exported['state_dict'])
    # tools/extract_student.py on the distillation checkpoint gives the same student, which the plain model
    # loads strictly (every key, nothing left over)
    extracted_path = tmp_path / 'extracted.pth'
    run_tool(['tools/extract_student.py', str(work_dir / 'iter_2.pth'), str(extracted_path)])
    extracted = torch.load(extracted_path, map_location='cpu', weights_only=True)
    assert extracted['meta']['iter'] == 2
    assert extracted['state_dict'].keys() == exported['state_dict'].keys()
    assert all(torch.equal(value, exported['state_dict'][key]) for key, value in extracted['state_dict'].items())
    cfg = Config.fromfile(osp.join(REPO, student_config))
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        plain = MODELS.build(cfg.model)
    load_checkpoint(plain, str(extracted_path), map_location='cpu', strict=True, logger='silent')

    result = run_tool(['tools/test.py', student_config, str(work_dir / 'student_final.pth'),
                       '--work-dir', str(tmp_path / 'test')] + TEST_OPTIONS[task])
    assert re.search(re.escape(metric) + r': \d', result.stdout + result.stderr)


def test_resume_continues_at_the_saved_iteration(demo_data, tmp_path):
    config = DEMO['cls'][0]
    work_dir = str(tmp_path / 'work')
    run_tool(['tools/train.py', config, '--work-dir', work_dir] + short_distill_run(2))
    saved = torch.load(osp.join(work_dir, 'iter_2.pth'), map_location='cpu', weights_only=False)
    result = run_tool(['tools/train.py', config, '--work-dir', work_dir, '--resume'] + short_distill_run(3))
    log = result.stdout + result.stderr
    assert 'resumed epoch: 0, iter: 2' in log
    assert osp.exists(osp.join(work_dir, 'iter_3.pth'))
    resumed = torch.load(osp.join(work_dir, 'iter_3.pth'), map_location='cpu', weights_only=False)
    assert resumed['meta']['iter'] == 3
    # One more step from the saved weights, and only one: SGD with momentum mu and weight decay wd takes
    # buf = mu * buf + grad + wd * w, then w = w - lr * buf, at the learning rate the scheduler set after the
    # saved iteration. So every parameter must be the saved one minus lr times the resumed momentum buffer,
    # and that buffer minus mu times the saved one must be one gradient (plus decay), not zero.
    optimizer = saved['optimizer']
    [group] = optimizer['param_groups']
    cfg = Config.fromfile(osp.join(REPO, config))
    cfg.model.teacher_ckpt = None
    assert cfg.optim_wrapper.optimizer.type == 'SGD' and not cfg.optim_wrapper.optimizer.get('nesterov')
    lr, momentum, decay = group['lr'], group['momentum'], group['weight_decay']
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        names = [name for name, _ in MODELS.build(cfg.model).named_parameters()]  # the optimizer's order
    assert group['params'] == list(range(len(names)))
    saved_buffers = optimizer['state']
    resumed_buffers = resumed['optimizer']['state']
    assert saved_buffers.keys() == resumed_buffers.keys() == set(range(len(names)))
    gradients = []
    for index, name in enumerate(names):
        before, after = saved['state_dict'][name], resumed['state_dict'][name]
        buffer = resumed_buffers[index]['momentum_buffer']
        assert torch.allclose(after, before - lr * buffer, rtol=1e-5, atol=1e-8), name
        gradients.append(buffer - momentum * saved_buffers[index]['momentum_buffer'] - decay * before)
    assert any(gradient.abs().max() > 0 for gradient in gradients)


def test_two_process_cpu_ddp_through_dist_train(demo_data, tmp_path):
    work_dir = tmp_path / 'ddp'
    result = run_tool(['bash', 'tools/dist_train.sh', DEMO['cls'][0], '2', '--work-dir', str(work_dir)]
                      + short_distill_run(2), env={'PORT': free_port()})
    log = result.stdout + result.stderr
    assert 'Distributed training: True' in log and osp.exists(work_dir / 'iter_2.pth')


def test_extract_student_refuses_a_checkpoint_without_a_student(tmp_path):
    plain = tmp_path / 'plain.pth'
    torch.save({'state_dict': {'backbone.conv1.weight': torch.zeros(1)}, 'meta': {}}, plain)
    result = subprocess.run([sys.executable, 'tools/extract_student.py', str(plain), str(tmp_path / 'out.pth')],
                            cwd=REPO, capture_output=True, text=True)
    assert result.returncode != 0 and not (tmp_path / 'out.pth').exists()
    assert 'holds no "architecture." keys: it is not an mmdistkd distillation checkpoint' in result.stderr
    assert 'Traceback' not in result.stderr
