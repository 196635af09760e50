"""SelfDistill with BYOTDistiller ("Be Your Own Teacher", arXiv 1905.08094) on a real tiny mmpretrain ResNet: the
shallow stages' classifiers learn from the labels and from the network's own (detached) logits; training,
validation (SelfDistillValLoop, metrics ``student.<name>``), resuming and the student's export in a real Runner."""
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmengine.dataset import pseudo_collate
from mmengine.registry import DefaultScope
from mmengine.runner import Runner
from mmpretrain.registry import MODELS as CLS_MODELS
from mmpretrain.structures import DataSample
from torch import nn

from mmdistkd.registry import MODELS
from mmdistkd.testing import MetricsLog, TinyImages
from mmdistkd.utils.student import student_checkpoint

NUM_CLASSES, WIDTH = 4, 8  # ResNet-18 stages of 8, 16, 32, 64 channels


@MODELS.register_module(name='TestStageClassifier', force=True)
class StageClassifier(nn.Module):
    """BYOT's shallow classifier in miniature: a strided conv to the deepest stage's width, global pooling, a
    linear classifier. Returns (feature, logits), as MMRazor's BYOTConnector (picked by ``connector_idx``)."""

    def __init__(self, in_channel, out_channel=8 * WIDTH, num_classes=NUM_CLASSES):
        super().__init__()
        self.conv = nn.Conv2d(in_channel, out_channel, 3, stride=2, padding=1)
        self.fc = nn.Linear(out_channel, num_classes)

    def forward(self, feature):
        pooled = self.conv(feature).mean((2, 3))
        return pooled, self.fc(pooled)


def classifier():
    return dict(
        type='ImageClassifier',
        backbone=dict(type='ResNet_CIFAR', depth=18, stem_channels=WIDTH, base_channels=WIDTH, out_indices=(3, )),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=NUM_CLASSES, in_channels=8 * WIDTH,
                  loss=dict(type='CrossEntropyLoss')))


def byot_distiller(distiller_type='BYOTDistiller'):
    """MMRazor's BYOT config for two shallow stages (its feature-hint losses left out): each stage's classifier
    learns the labels and the network's own softened logits."""
    stages = {1: WIDTH, 2: 2 * WIDTH}
    losses, mappings = {}, {}
    for stage in stages:
        logits = dict(recorder=f'bb_s{stage}', from_student=True, connector=f's{stage}', connector_idx=1)
        losses[f'loss_label_{stage}'] = dict(type='mmpretrain.CrossEntropyLoss', loss_weight=0.7)
        # teacher_detach=False: the BYOT distiller's detaching is what keeps the gradient off the deep part.
        losses[f'loss_softl_{stage}'] = dict(type='KLDivergence', tau=3, loss_weight=0.3, teacher_detach=False)
        mappings[f'loss_label_{stage}'] = dict(
            cls_score=logits, label=dict(recorder='gt_labels', from_student=False, data_idx=1))
        mappings[f'loss_softl_{stage}'] = dict(preds_S=logits, preds_T=dict(recorder='fc', from_student=False))
    return dict(
        type=distiller_type,
        student_recorders={f'bb_s{stage}': dict(type='ModuleOutputs', source=f'backbone.layer{stage}.1.relu')
                           for stage in stages},
        teacher_recorders=dict(fc=dict(type='ModuleOutputs', source='head.fc'),
                               gt_labels=dict(type='ModuleInputs', source='head.loss_module')),
        connectors={f's{stage}': dict(type='TestStageClassifier', in_channel=channels)
                    for stage, channels in stages.items()},
        distill_losses=losses, loss_forward_mappings=mappings)


def build(**kwargs):
    kwargs.setdefault('distiller', byot_distiller())
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return MODELS.build(dict(type='mmdistkd.SelfDistill', architecture=classifier(), **kwargs))


def batch(model, n=4, size=16):
    torch.manual_seed(0)
    data = dict(inputs=[torch.randint(0, 256, (3, size, size), dtype=torch.uint8) for _ in range(n)],
                data_samples=[DataSample().set_gt_label(i % NUM_CLASSES) for i in range(n)])
    return model.data_preprocessor(data, True)


def gradients(model, loss):
    model.zero_grad()
    loss.backward(retain_graph=True)
    return {name: p.grad for name, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}


def test_stage_losses_train_the_shallow_stages_and_not_the_deep_part():
    torch.manual_seed(0)
    model = build()
    data = batch(model)
    stage_logits = []
    model.distiller.connectors['s1'].register_forward_hook(lambda module, args, output: stage_logits.append(output[1]))
    losses = model.loss(**data)
    assert set(losses) == {'student.loss', 'loss_label_1', 'loss_softl_1', 'loss_label_2', 'loss_softl_2'}
    labels = torch.tensor([sample.gt_label.item() for sample in data['data_samples']])
    # One connector call per mapping item that uses it: both items see the same logits.
    torch.testing.assert_close(losses['loss_label_1'], 0.7 * F.cross_entropy(stage_logits[0], labels))

    reached = gradients(model, losses['loss_softl_1'])
    assert any(name.startswith('distiller.connectors.s1.') for name in reached)
    assert any(name.startswith('architecture.backbone.layer1.') for name in reached)
    # The network's own logits are the (detached) teacher: nothing past stage 1 moves towards the shallow head.
    assert not any(name.startswith(('architecture.head.', 'architecture.backbone.layer4.')) for name in reached)


def test_without_the_detach_the_deep_part_would_follow_the_shallow_head():
    """The same losses under a ConfigurableDistiller reach the head: the BYOT distiller's detach is what stops it."""
    torch.manual_seed(0)
    model = build(distiller=byot_distiller('ConfigurableDistiller'))
    reached = gradients(model, model.loss(**batch(model))['loss_softl_1'])
    assert any(name.startswith('architecture.head.') for name in reached)


def test_frozen_student_trains_only_the_distillers_modules():
    torch.manual_seed(0)
    model = build(student_trainable=False, calculate_student_loss=False)
    losses = model.loss(**batch(model))
    assert not any(name.startswith('student.') for name in losses)
    reached = gradients(model, sum(losses.values()))
    assert reached and all(name.startswith('distiller.connectors.') for name in reached)


def runner_for(work_dir, max_iters, **kwargs):
    loader = torch.utils.data.DataLoader(TinyImages(8, 16, NUM_CLASSES), batch_size=4, collate_fn=pseudo_collate)
    log = MetricsLog()
    runner = Runner(
        model=build(), work_dir=str(work_dir), default_scope='mmpretrain', train_dataloader=loader,
        val_dataloader=loader, val_evaluator=dict(type='Accuracy'),
        train_cfg=dict(by_epoch=False, max_iters=max_iters, val_interval=1),
        val_cfg=dict(type='mmdistkd.SelfDistillValLoop'),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1, by_epoch=False)),
        custom_hooks=[log], **kwargs)
    return runner, log


def test_runner_trains_validates_resumes_and_exports_the_student(tmp_path):
    runner, log = runner_for(tmp_path, max_iters=2)
    runner.train()
    assert len(log.metrics) == 2
    assert all(set(metrics) == {'student.accuracy/top1'} for metrics in log.metrics)

    path = osp.join(tmp_path, 'iter_2.pth')
    checkpoint = torch.load(path, map_location='cpu', weights_only=False)
    resumed, _ = runner_for(tmp_path, max_iters=3, resume=True, load_from=path)
    resumed.load_or_resume()
    assert resumed.iter == 2
    state = resumed.model.state_dict()
    assert any(key.startswith('distiller.connectors.') for key in checkpoint['state_dict'])
    for key, value in checkpoint['state_dict'].items():
        torch.testing.assert_close(state[key], value, msg=key)
    resumed.train()
    assert resumed.iter == 3

    with DefaultScope.overwrite_default_scope('mmpretrain'):
        plain = CLS_MODELS.build(classifier())
    plain.load_state_dict(student_checkpoint(checkpoint['state_dict'])['state_dict'], strict=True)


@pytest.mark.parametrize('distiller_type', ['BYOTDistiller', 'ConfigurableDistiller'])
def test_teacher_records_inside_lists_are_detached_only_by_byot(distiller_type):
    """``record_idx='all'`` gives the teacher side a list (one record per call): each element is detached."""
    distiller_cfg = byot_distiller(distiller_type)
    distiller_cfg['loss_forward_mappings']['loss_softl_1']['preds_T']['record_idx'] = 'all'
    distiller_cfg['loss_forward_mappings']['loss_softl_1']['preds_S']['record_idx'] = 'all'
    torch.manual_seed(0)
    model = build(distiller=distiller_cfg)
    with model.distiller.student_recorders, model.distiller.teacher_recorders:
        model.student(**batch(model), mode='loss')
    teacher_logits = model.distiller._gather(distiller_cfg['loss_forward_mappings']['loss_softl_1']['preds_T'])
    assert isinstance(teacher_logits, list) and len(teacher_logits) == 1
    assert teacher_logits[0].requires_grad == (distiller_type == 'ConfigurableDistiller')
