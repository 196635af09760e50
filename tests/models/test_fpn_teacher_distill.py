"""FpnTeacherDistill on real tiny mmdet RetinaNets: the teacher runs only backbone and neck in a training step,
the distillation loss on FPN features trains the student, the student exports as a plain detector."""
import pytest
import torch
from mmdet.registry import MODELS as DET_MODELS
from mmengine.optim import OptimWrapper
from mmengine.registry import DefaultScope

from mmdistkd.analysis.synthetic import synthetic_batch
from mmdistkd.models.algorithms import FpnTeacherDistill
from mmdistkd.models.algorithms.submodel import resolve_submodel
from mmdistkd.models.algorithms.teacher_forward import build_teacher_forward
from mmdistkd.registry import MODELS
from mmdistkd.utils.student import student_state_dict

NUM_CLASSES = 3


def tiny_retinanet(depth):
    """mmdet's RetinaNet config on a ResNet-18/34 with a 16-channel FPN and a one-conv head."""
    return dict(cfg_path='mmdet::retinanet/retinanet_r50_fpn_1x_coco.py',
                backbone=dict(depth=depth, init_cfg=None),
                neck=dict(in_channels=[64, 128, 256, 512], out_channels=16),
                bbox_head=dict(in_channels=16, feat_channels=16, stacked_convs=1, num_classes=NUM_CLASSES))


def fpn_distiller():
    """KL divergence between the channel distributions of the student's and the teacher's FPN levels."""
    fpn = dict(type='ModuleOutputs', source='neck')
    return dict(type='ConfigurableDistiller', student_recorders=dict(fpn=fpn), teacher_recorders=dict(fpn=fpn),
                distill_losses=dict(loss_fpn=dict(type='KLDivergence', tau=1.0)),
                loss_forward_mappings=dict(loss_fpn=dict(preds_S=dict(from_student=True, recorder='fpn'),
                                                         preds_T=dict(from_student=False, recorder='fpn'))))


def build(**kwargs):
    cfg = dict(type='mmdistkd.FpnTeacherDistill', architecture=tiny_retinanet(18), teacher=tiny_retinanet(34),
               distiller=fpn_distiller(), check_teacher=False, **kwargs)  # the check runs the whole teacher
    with DefaultScope.overwrite_default_scope('mmdet'):
        return MODELS.build(cfg)


def count_calls(module):
    calls = []
    module.register_forward_hook(lambda *args: calls.append(1))
    return calls


@pytest.fixture(scope='module')
def model():
    torch.manual_seed(0)
    return build()


def batch(model):
    return model.data_preprocessor(synthetic_batch('det', 2, 64, 64, NUM_CLASSES), True)


def test_teacher_runs_backbone_and_neck_only_and_the_student_trains(model):
    teacher_head_calls, teacher_neck_calls = count_calls(model.teacher.bbox_head), count_calls(model.teacher.neck)
    student_head_calls = count_calls(model.student.bbox_head)
    before = model.student.neck.fpn_convs[0].conv.weight.detach().clone()
    log_vars = model.train_step(synthetic_batch('det', 2, 64, 64, NUM_CLASSES),
                                OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01)))
    assert teacher_head_calls == [] and teacher_neck_calls == [1]
    assert student_head_calls  # the student's own task loss needs its head
    assert {'loss_fpn', 'student.loss_cls', 'student.loss_bbox'} <= set(log_vars)
    assert all(torch.isfinite(torch.as_tensor(value)) for value in log_vars.values())
    assert not torch.equal(model.student.neck.fpn_convs[0].conv.weight, before)
    assert not any(parameter.requires_grad for parameter in model.teacher.parameters())


def test_distillation_term_compares_the_teachers_own_features():
    """The recorded teacher levels are the teacher's extract_feat on the batch; the loss is the KL divergence of
    channel distributions per position, summed over levels (written out here in float64)."""
    torch.manual_seed(1)
    model = build()
    data = batch(model)
    model.eval()  # the student's BN too: its levels are then recomputable
    try:
        with model.distiller.student_recorders:
            model.student.extract_feat(data['inputs'])
        model.record_teacher(data['inputs'], data['data_samples'])
        student_levels = model.distiller.student_recorders.get_recorder('fpn').get_record_data()
        teacher_levels = model.distiller.teacher_recorders.get_recorder('fpn').get_record_data()
        loss = model.distiller.compute_distill_losses()['loss_fpn']
    finally:
        model.train()
    with torch.no_grad():
        expected_levels = model.teacher.extract_feat(data['inputs'])
    expected = 0.0
    for s, t, direct in zip(student_levels, teacher_levels, expected_levels):
        torch.testing.assert_close(t, direct)
        p_t, p_s = t.double().softmax(1), s.detach().double().softmax(1)
        expected += (p_t * (p_t.log() - p_s.log())).sum() / (t.numel() / t.shape[1])
    torch.testing.assert_close(loss.double(), expected, rtol=1e-5, atol=1e-7)


def test_student_exports_as_a_plain_detector(model):
    state = model.state_dict()
    assert not any(key.startswith(('teacher', 'frozen_teacher')) for key in state)
    cfg, _ = resolve_submodel(tiny_retinanet(18), 'student')
    with DefaultScope.overwrite_default_scope('mmdet'):
        plain = DET_MODELS.build(cfg)
    plain.load_state_dict(student_state_dict(state), strict=True)


def test_only_the_extract_feat_forward_is_accepted():
    with pytest.raises(ValueError, match="runs only the teacher's extract_feat.*use SingleTeacherDistill"):
        FpnTeacherDistill(architecture=tiny_retinanet(18), teacher=tiny_retinanet(18), distiller=fpn_distiller(),
                          teacher_forward='tensor')
    with pytest.raises(ValueError, match="needs a teacher with extract_feat.*Linear"):
        build_teacher_forward('extract_feat').prepare(None, torch.nn.Linear(1, 1))
