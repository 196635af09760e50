"""RazorVisualizationHook in a real Runner (one epoch of a tiny distillation, MMRazor's CWD visualization config
recording ``architecture.*``): one image per stage, validation image and mapping, over the original image, to
files or to the visualizer's backends; and how ``pixel_wise_max`` and the aspect crop draw a feature map."""
import glob
import os.path as osp

import mmcv
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, DefaultScope
from mmengine.runner import Runner
from mmengine.visualization import Visualizer
from mmpretrain.structures import DataSample

import mmdistkd  # noqa: F401
from mmdistkd.engine.hooks.razor_visualization_hook import RazorVisualizationHook, crop_to_aspect

# Images taller than wide: the model sees them resized to a square, the drawings keep their shape.
IMAGE_HEIGHT, IMAGE_WIDTH, INPUT_SIZE = 24, 16, 16


def classifier():
    return dict(
        type='ImageClassifier',
        backbone=dict(type='ResNet_CIFAR', depth=18, stem_channels=4, base_channels=4, out_indices=(3, )),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=2, in_channels=32, loss=dict(type='CrossEntropyLoss')),
        data_preprocessor=dict(type='ClsDataPreprocessor', mean=[128.] * 3, std=[64.] * 3))


def write_images(root):
    """Two classes of two images each, in mmpretrain's CustomDataset folder layout."""
    rng = np.random.default_rng(0)
    for label in ('a', 'b'):
        for index in range(2):
            image = rng.integers(0, 256, (IMAGE_HEIGHT, IMAGE_WIDTH, 3), dtype=np.uint8)
            mmcv.imwrite(image, osp.join(root, label, f'{index}.png'))


def train_one_epoch(tmp_path, out_dir):
    write_images(str(tmp_path / 'images'))
    loader = dict(batch_size=2, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=False),
                  dataset=dict(type='CustomDataset', data_root=str(tmp_path / 'images'),
                               pipeline=[dict(type='LoadImageFromFile'), dict(type='Resize', scale=INPUT_SIZE),
                                         dict(type='PackInputs')]))
    logits = dict(type='ModuleOutputs', source='head.fc')
    distiller = dict(type='ConfigurableDistiller', student_recorders=dict(logits=logits),
                     teacher_recorders=dict(logits=logits), distill_losses=dict(loss_kd=dict(type='KLDivergence')),
                     loss_forward_mappings=dict(loss_kd=dict(preds_S=dict(from_student=True, recorder='logits'),
                                                             preds_T=dict(from_student=False, recorder='logits'))))
    visualization = dict(
        type='mmdistkd.RazorVisualizationHook', enabled=True, data_idx=[0, 3], out_dir=out_dir,
        recorders=dict(layer1=dict(type='ModuleOutputs', source='architecture.backbone.layer1'),
                       backbone=dict(type='ModuleOutputs', source='architecture.backbone')),
        # layer1's record is a tensor, the backbone's a tuple of one tensor (its out_indices).
        mappings=dict(layer1=dict(recorder='layer1'), stage4=dict(recorder='backbone')))
    cfg = Config(dict(
        default_scope='mmpretrain', work_dir=str(tmp_path / 'work'), experiment_name=tmp_path.name,
        model=dict(type='mmdistkd.SingleTeacherDistill', architecture=classifier(), teacher=classifier(),
                   distiller=distiller),
        train_dataloader=loader, val_dataloader=loader, test_dataloader=loader,
        val_evaluator=dict(type='Accuracy'), test_evaluator=dict(type='Accuracy'),
        train_cfg=dict(by_epoch=True, max_epochs=1, val_interval=5), val_cfg=dict(), test_cfg=dict(),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        default_hooks=dict(checkpoint=None, visualization=visualization),
        visualizer=dict(type='Visualizer', vis_backends=[dict(type='LocalVisBackend')])))
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


EXPECTED_NAMES = sorted(f'{stage}_data_idx_{idx}_{name}_0' for stage in ('before_run', 'epoch_0') for idx in (0, 3)
                        for name in ('layer1', 'stage4'))


@pytest.mark.parametrize('out_dir', ['feature_maps', None])
def test_one_image_per_stage_validation_image_and_mapping_over_the_original_image(tmp_path, out_dir):
    runner = train_one_epoch(tmp_path, out_dir)
    run_dir = osp.join(runner.work_dir, runner.timestamp)
    if out_dir:
        paths = sorted(glob.glob(osp.join(run_dir, out_dir, '*.jpg')))
        assert [osp.basename(p)[:-len('.jpg')] for p in paths] == EXPECTED_NAMES
    else:  # the LocalVisBackend writes {name}_{step}.png
        paths = sorted(glob.glob(osp.join(run_dir, 'vis_data', 'vis_image', '*.png')))
        assert sorted(osp.basename(p).rsplit('_', 1)[0] for p in paths) == EXPECTED_NAMES
    for path in paths:
        assert mmcv.imread(path).shape == (IMAGE_HEIGHT, IMAGE_WIDTH, 3)


def test_the_model_predicts_in_eval_mode_and_returns_to_training():
    """Drawing after an epoch leaves BatchNorm's running statistics as training left them."""
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(classifier())
    model.train()
    hook = RazorVisualizationHook(recorders=dict(layer1=dict(type='ModuleOutputs', source='backbone.layer1')),
                                  mappings=dict(layer1=dict(recorder='layer1')))
    hook.recorder_manager.prepare_from_model(model, role='model')
    buffers = {name: buffer.clone() for name, buffer in model.named_buffers()}
    image = torch.randint(0, 256, (3, INPUT_SIZE, INPUT_SIZE), dtype=torch.uint8)
    hook._predict(model, dict(inputs=[image], data_samples=[DataSample()]))
    assert model.training
    assert all(torch.equal(buffer, buffers[name]) for name, buffer in model.named_buffers())
    assert hook.recorder_manager.get_recorder('layer1').get_record_data().shape == (1, 4, INPUT_SIZE, INPUT_SIZE)


def test_pixel_wise_max_draws_the_maximum_over_channels():
    """Channel 0 is hot at the top-left corner, channel 1 at the bottom-right: their pixel-wise maximum is hot at
    both (red in the JET map), cold elsewhere; 'select_max' draws one channel only."""
    featmap = torch.zeros(1, 2, 4, 4)
    featmap[0, 0, 0, 0] = featmap[0, 1, 3, 3] = 1.0
    visualizer = Visualizer(name='razor_visualization_test')
    red, blue = np.array([128, 0, 0]), np.array([0, 0, 128])  # JET at 1.0 and at 0.0, in RGB
    for reduction, hot_corners in (('pixel_wise_max', 2), ('select_max', 1)):
        hook = RazorVisualizationHook(recorders={}, mappings={}, visualization_cfg=dict(channel_reduction=reduction))
        drawn = hook._draw(visualizer, featmap, image=None)
        assert drawn.shape == (4, 4, 3)
        corners = [drawn[0, 0], drawn[3, 3]]
        assert sum(np.array_equal(corner, red) for corner in corners) == hot_corners
        assert np.array_equal(drawn[1, 2], blue)


def test_crop_to_aspect_keeps_the_top_left_part_the_image_covers():
    featmap = torch.arange(2 * 8 * 8.).reshape(2, 8, 8)
    # An image twice as wide as high was padded at the bottom of a square input: the top half covers it.
    assert torch.equal(crop_to_aspect(featmap, (20, 40)), featmap[:, :4, :])
    assert torch.equal(crop_to_aspect(featmap, (30, 10)), featmap[:, :, :3])  # 8 * 10 / 30 = 2.67 -> 3
    assert torch.equal(crop_to_aspect(featmap, (5, 5)), featmap)


def test_a_mapping_must_name_one_of_the_recorders():
    with pytest.raises(ValueError, match="mapping 'p3' names the recorder 'nek', but the recorders are: neck"):
        RazorVisualizationHook(recorders=dict(neck=dict(type='ModuleOutputs', source='architecture.neck')),
                               mappings=dict(p3=dict(recorder='nek', data_idx=0)))
