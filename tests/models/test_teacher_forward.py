"""The teacher-forward strategies on real models at tiny sizes: an mmseg segmentor's decode and auxiliary heads,
and a two-stage mmdet detector whose teacher scores the RoIs the student sampled in the same step."""
import pytest
import torch
from mmengine.registry import DefaultScope
from mmseg.registry import MODELS as SEG_MODELS

from mmdistkd.analysis.synthetic import synthetic_batch
from mmdistkd.models.algorithms.teacher_forward import (RoIOnStudentRoIsForward, SegDecodeAuxForward,
                                                        TensorForward)
from test_single_teacher_distill import build, kd_distiller

DET_CLASSES = 3


def tiny_faster_rcnn(depth):
    """mmdet's Faster R-CNN config on a ResNet-18/34 with 16-channel FPN and RoI head."""
    return dict(
        cfg_path='mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
        backbone=dict(depth=depth, init_cfg=None),
        neck=dict(in_channels=[64, 128, 256, 512], out_channels=16),
        rpn_head=dict(in_channels=16, feat_channels=16),
        roi_head=dict(bbox_roi_extractor=dict(out_channels=16),
                      bbox_head=dict(in_channels=16, fc_out_channels=32, num_classes=DET_CLASSES)))


def tiny_segmentor(auxiliary_inputs):
    """An FCN on a narrow ResNetV1c-18 (stages of 8 to 64 channels). ``auxiliary_inputs``: None, the
    (channels, stage) of one auxiliary head, or a list of them for several (mmseg then holds a ModuleList)."""
    def fcn(in_channels, in_index):
        return dict(type='FCNHead', in_channels=in_channels, in_index=in_index, channels=8, num_convs=1,
                    num_classes=3, norm_cfg=dict(type='BN'))

    auxiliary_head = None if auxiliary_inputs is None else [fcn(*head) for head in auxiliary_inputs] \
        if isinstance(auxiliary_inputs, list) else fcn(*auxiliary_inputs)
    with DefaultScope.overwrite_default_scope('mmseg'):  # the segmentor builds its preprocessor by scope
        return SEG_MODELS.build(dict(
            type='EncoderDecoder',
            data_preprocessor=dict(type='SegDataPreProcessor', mean=[0.0] * 3, std=[1.0] * 3, size=(32, 32)),
            backbone=dict(type='ResNetV1c', depth=18, stem_channels=16, base_channels=8, norm_cfg=dict(type='BN')),
            decode_head=fcn(64, 3), auxiliary_head=auxiliary_head))


@pytest.fixture(scope='module')
def two_stage():
    cls_logits = 'roi_head.bbox_head.fc_cls'
    return build(student=tiny_faster_rcnn(18), teacher=tiny_faster_rcnn(34), scope='mmdet',
                 distiller=kd_distiller(student_source=cls_logits, teacher_source=cls_logits),
                 teacher_forward='roi_on_student_rois')


def detection_data(model):
    return model.data_preprocessor(synthetic_batch('det', 2, 64, 64, DET_CLASSES), True)


def test_only_the_roi_strategy_runs_after_the_student():
    assert not TensorForward.runs_after_student
    assert not SegDecodeAuxForward.runs_after_student
    assert RoIOnStudentRoIsForward.runs_after_student


def test_roi_strategy_scores_the_students_rois_after_the_student_and_then_forgets_them(two_stage):
    model = two_stage
    order, rois = [], {}

    def keep_rois(role):
        def hook(module, args):
            rois[role] = args[1]
        return hook

    hooks = []
    for role, detector in (('student', model.student), ('teacher', model.teacher)):
        hooks.append(detector.backbone.register_forward_pre_hook(lambda module, args, role=role: order.append(role)))
        hooks.append(detector.roi_head.bbox_roi_extractor.register_forward_pre_hook(keep_rois(role)))
    try:
        losses = model.loss(**detection_data(model))
    finally:
        for hook in hooks:
            hook.remove()
    assert order == ['student', 'teacher']
    assert torch.equal(rois['teacher'], rois['student'])
    assert torch.isfinite(losses['loss_kd'])
    assert model.teacher_forward.student_output is None


def test_roi_strategy_without_student_rois_names_the_missing_student_forward(two_stage):
    with pytest.raises(RuntimeError, match="roi_on_student_rois' found no student RoIs"):
        two_stage.forward_teacher(**detection_data(two_stage))


@pytest.mark.parametrize('auxiliary_inputs', [None, (32, 2), [(32, 2), (16, 1)]], ids=['none', 'one', 'list'])
def test_seg_strategy_runs_the_decode_head_and_every_auxiliary_head(auxiliary_inputs):
    segmentor = tiny_segmentor(auxiliary_inputs).eval()
    auxiliary = [] if auxiliary_inputs is None else list(segmentor.auxiliary_head) \
        if isinstance(auxiliary_inputs, list) else [segmentor.auxiliary_head]
    heads = [segmentor.decode_head] + auxiliary
    ran = []
    hooks = [head.conv_seg.register_forward_hook(lambda module, args, output, index=index: ran.append(index))
             for index, head in enumerate(heads)]
    try:
        with torch.no_grad():
            SegDecodeAuxForward()(segmentor, torch.randn(1, 3, 32, 32), None)
    finally:
        for hook in hooks:
            hook.remove()
    assert ran == list(range(len(heads)))


def test_unknown_teacher_forward_lists_the_strategies():
    with pytest.raises(ValueError, match=r"teacher_forward='rois'; choose one of \['roi_on_student_rois', "):
        build(teacher_forward='rois')
