"""The teacher-forward strategies on real models at tiny sizes: an mmseg segmentor's decode and auxiliary heads,
and two-stage mmdet detectors whose teacher scores the RoIs the student sampled in the same step (a Faster
R-CNN teacher, and a Cascade Mask R-CNN teacher with only its stage 0 running, as the DIST authors did)."""
import pytest
import torch
from mmengine.registry import DefaultScope
from mmseg.registry import MODELS as SEG_MODELS

from mmdistkd.analysis.synthetic import synthetic_batch
from mmdistkd.models.algorithms.submodel import build_submodel
from mmdistkd.models.algorithms.teacher_forward import (
    RoIOnStudentRoIsForward,
    SegDecodeAuxForward,
    TensorForward,
    build_teacher_forward,
)
from mmdistkd.models.losses import DISTLoss
from mmdistkd.registry import TEACHER_FORWARDS

from test_single_teacher_distill import batch, build, kd_distiller

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


def tiny_cascade_rcnn(with_mask):
    """mmdet's Cascade (Mask) R-CNN config (3 stages) on a ResNet-18 with 16-channel FPN, RoI and mask heads."""
    name = 'cascade-mask-rcnn_r50_fpn_1x_coco' if with_mask else 'cascade-rcnn_r50_fpn_1x_coco'
    stage_head = dict(in_channels=16, fc_out_channels=32, num_classes=DET_CLASSES)
    roi_head = dict(bbox_roi_extractor=dict(out_channels=16), bbox_head={str(i): stage_head for i in range(3)})
    if with_mask:
        roi_head.update(mask_roi_extractor=dict(out_channels=16),
                        mask_head=dict(in_channels=16, conv_out_channels=16, num_classes=DET_CLASSES))
    return dict(
        cfg_path=f'mmdet::cascade_rcnn/{name}.py',
        backbone=dict(depth=18, init_cfg=None),
        neck=dict(in_channels=[64, 128, 256, 512], out_channels=16),
        rpn_head=dict(in_channels=16, feat_channels=16),
        roi_head=roi_head)


def dist_distiller(student_source, teacher_source):
    cls = dict(from_student=True, recorder='cls')
    return dict(
        type='ConfigurableDistiller',
        student_recorders=dict(cls=dict(type='ModuleOutputs', source=student_source)),
        teacher_recorders=dict(cls=dict(type='ModuleOutputs', source=teacher_source)),
        distill_losses=dict(loss_dist=dict(type='DISTLoss')),
        loss_forward_mappings=dict(loss_dist=dict(logits_S=cls, logits_T=dict(cls, from_student=False))))


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
                 teacher_forward='roi_on_student_rois', check_teacher=False)  # its tests count teacher forwards


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


@pytest.fixture(scope='module', params=[0, 2], ids=['stage-0', 'stage-2'])
def cascade_teacher(request):
    """The paper's two-stage pair at tiny size: a Faster R-CNN student, a Cascade Mask R-CNN teacher scored
    with one stage (the paper's 0, or the last); returns (model, stage)."""
    stage = request.param
    model = build(student=tiny_faster_rcnn(18), teacher=tiny_cascade_rcnn(with_mask=True), scope='mmdet',
                  distiller=dist_distiller('roi_head.bbox_head.fc_cls', f'roi_head.bbox_head.{stage}.fc_cls'),
                  teacher_forward=dict(type='roi_on_student_rois', stage=stage))
    return model, stage


def test_cascade_teacher_scores_the_students_rois_with_its_stage_only(cascade_teacher):
    model, stage = cascade_teacher
    student_head, teacher_head = model.student.roi_head, model.teacher.roi_head
    seen = {}

    def keep(name, index):
        def hook(module, args, output=None):
            seen.setdefault(name, []).append(args[index] if output is None else output)
        return hook

    hooks = [student_head.bbox_roi_extractor.register_forward_pre_hook(keep('student rois', 1)),
             student_head.bbox_head.fc_cls.register_forward_hook(keep('student scores', 0)),
             model.teacher.rpn_head.register_forward_hook(keep('teacher rpn', 0))]
    for index in range(3):
        hooks += [teacher_head.bbox_roi_extractor[index].register_forward_pre_hook(keep(f'rois {index}', 1)),
                  teacher_head.bbox_head[index].register_forward_hook(keep(f'box head {index}', 0)),
                  teacher_head.mask_roi_extractor[index].register_forward_hook(keep(f'mask rois {index}', 0)),
                  teacher_head.mask_head[index].register_forward_hook(keep(f'mask head {index}', 0))]
    data = detection_data(model)
    try:
        # The training step in its parts (as model.loss runs them), to look at the records before the loss.
        model.record_student(**data)
        model.record_teacher(**data)
    finally:
        for hook in hooks:
            hook.remove()

    # The teacher ran backbone, neck and the chosen stage's box head on the student's RoIs, nothing else.
    assert sorted(seen) == sorted([f'box head {stage}', f'rois {stage}', 'student rois', 'student scores'])
    assert len(seen[f'rois {stage}']) == len(seen[f'box head {stage}']) == 1
    assert torch.equal(seen[f'rois {stage}'][0], seen['student rois'][0])
    assert model.teacher_forward.student_output is None
    recorded = model.distiller.teacher_recorders.get_recorder('cls').records
    assert len(recorded) == 1

    # The recorded scores are that stage's on those RoIs, computed here directly.
    with torch.no_grad():
        features = model.teacher.extract_feat(model.frozen_teacher.transform_inputs(data['inputs']))
        roi_features = teacher_head.bbox_roi_extractor[stage](features[:4], seen['student rois'][0])
        expected_scores, _ = teacher_head.bbox_head[stage](roi_features)
    assert recorded[0].shape == (len(seen['student rois'][0]), DET_CLASSES + 1)
    torch.testing.assert_close(recorded[0], expected_scores)

    loss = model.distiller.compute_distill_losses(data['data_samples'])['loss_dist']
    assert torch.isfinite(loss)
    torch.testing.assert_close(loss, DISTLoss()(seen['student scores'][0], expected_scores))


def test_cascade_student_gives_the_rois_of_its_stage_0():
    model = build(student=tiny_cascade_rcnn(with_mask=False), teacher=tiny_faster_rcnn(34), scope='mmdet',
                  distiller=dist_distiller('roi_head.bbox_head.0.fc_cls', 'roi_head.bbox_head.fc_cls'),
                  teacher_forward='roi_on_student_rois')
    rois = {}

    def keep_first_rois(key):
        def hook(module, args):
            rois.setdefault(key, args[1])
        return hook

    extractors = dict(enumerate(model.student.roi_head.bbox_roi_extractor),
                      teacher=model.teacher.roi_head.bbox_roi_extractor)
    hooks = [extractor.register_forward_pre_hook(keep_first_rois(key)) for key, extractor in extractors.items()]
    try:
        losses = model.loss(**detection_data(model))
    finally:
        for hook in hooks:
            hook.remove()
    assert torch.equal(rois['teacher'], rois[0])
    assert not torch.equal(rois[1][:, 1:], rois[0][:, 1:])  # stage 1 scores refined boxes: not these
    assert torch.isfinite(losses['loss_dist'])


@pytest.mark.parametrize('stage, teacher, message', [
    (3, 'cascade', r"stage=3\): the teacher's CascadeRoIHead has stages 0 to 2 \(num_stages=3\); choose one"),
    (1, 'faster', r"stage=1\): the teacher's StandardRoIHead has only stage 0; choose one")],
    ids=['past-the-cascade', 'faster-rcnn-teacher'])
def test_stage_the_teacher_lacks_is_refused_at_build(stage, teacher, message):
    teacher, teacher_scores = (tiny_cascade_rcnn(with_mask=False), 'roi_head.bbox_head.0.fc_cls') \
        if teacher == 'cascade' else (tiny_faster_rcnn(34), 'roi_head.bbox_head.fc_cls')
    with pytest.raises(ValueError, match=message):
        build(student=tiny_faster_rcnn(18), teacher=teacher, scope='mmdet',
              distiller=dist_distiller('roi_head.bbox_head.fc_cls', teacher_scores),
              teacher_forward=dict(type='roi_on_student_rois', stage=stage))


@pytest.mark.parametrize('spec, message', [
    (dict(type='roi_on_student_rois', stage=-1), r"stage=-1\): give the stage of the teacher's cascade as an int"),
    (dict(type='roi_on_student_rois', stages=1), r"'roi_on_student_rois' has no option\(s\) \['stages'\]; its "
                                                 r"options: \['stage'\]"),
    (dict(type='tensor', stage=0), r"'tensor' has no option\(s\) \['stage'\]; its options: none"),
    (dict(stage=0), r"choose one of \['extract_feat', 'roi_on_student_rois', 'seg_decode_aux', 'tensor'\]")],
    ids=['negative-stage', 'misspelt-option', 'option-of-another-strategy', 'no-type'])
def test_teacher_forward_dict_with_wrong_options_says_what_to_change(spec, message):
    with pytest.raises(ValueError, match=message):
        build_teacher_forward(spec)


def test_roi_strategy_refuses_a_one_stage_student():
    retinanet = dict(cfg_path='mmdet::retinanet/retinanet_r18_fpn_1x_coco.py')
    with pytest.raises(ValueError, match=r"needs two-stage detectors, but the student \(RetinaNet\) has no "
                                         r'roi_head.bbox_roi_extractor'):
        RoIOnStudentRoIsForward().prepare(build_submodel(retinanet, 'student'), None)


def test_unknown_teacher_forward_lists_the_strategies():
    with pytest.raises(ValueError, match=r"teacher_forward='rois'; choose one of \['extract_feat', "
                                         r"'roi_on_student_rois', "):
        build(teacher_forward='rois')


@pytest.fixture
def counting_forward():
    """A strategy registered from outside mmdistkd, as a user's plugin registers one; unregistered after the test,
    as the registry outlives it (test_device.py checks that each registered strategy has a case)."""
    @TEACHER_FORWARDS.register_module(name='counting_tensor')
    class CountingTensorForward(TensorForward):

        def __init__(self):
            super().__init__()
            self.calls = 0

        def __call__(self, teacher, inputs, data_samples):
            self.calls += 1
            super().__call__(teacher, inputs, data_samples)

    yield CountingTensorForward
    TEACHER_FORWARDS.module_dict.pop('counting_tensor')


def test_strategy_registered_from_outside_runs_in_the_training_step(counting_forward):
    model = build(teacher_forward='counting_tensor')
    assert isinstance(model.teacher_forward, counting_forward)
    losses = model.loss(**model.data_preprocessor(batch(), True))
    assert model.teacher_forward.calls == 1
    assert torch.isfinite(losses['loss_kd']) and losses['loss_kd'] > 0
