"""SingleTeacherDistill with real mmpretrain classifiers (tiny inputs): the training step, the student's
checkpoints, and the errors a user gets for a wrong config (the teacher's own lifecycle: test_frozen_teacher.py).
The builders here serve the other model tests too."""
import copy

import pytest
import torch
from mmengine.optim import OptimWrapper
from mmengine.registry import DefaultScope
from mmpretrain.structures import DataSample

import mmdistkd  # noqa: F401
from mmdistkd.registry import MODELS

NUM_CLASSES = 4


def classifier(depth=18, num_classes=NUM_CLASSES, mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375),
               to_rgb=True):
    return dict(
        type='ImageClassifier',
        backbone=dict(type='ResNet_CIFAR', depth=depth, num_stages=4, out_indices=(3, )),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=num_classes, in_channels=512,
                  loss=dict(type='CrossEntropyLoss')),
        data_preprocessor=dict(type='ClsDataPreprocessor', mean=list(mean), std=list(std), to_rgb=to_rgb))


def kd_distiller(student_source='head.fc', teacher_source='head.fc', **mapping_overrides):
    mapping = dict(preds_S=dict(from_student=True, recorder='logits'),
                   preds_T=dict(from_student=False, recorder='logits'))
    mapping.update(mapping_overrides)
    return dict(
        type='ConfigurableDistiller',
        student_recorders=dict(logits=dict(type='ModuleOutputs', source=student_source)),
        teacher_recorders=dict(logits=dict(type='ModuleOutputs', source=teacher_source)),
        distill_losses=dict(loss_kd=dict(type='KLDivergence', tau=2.0)),
        loss_forward_mappings=dict(loss_kd=mapping))


def build(student=None, teacher=None, distiller=None, scope='mmpretrain', **kwargs):
    cfg = dict(type='mmdistkd.SingleTeacherDistill', architecture=student or classifier(),
               teacher=teacher or classifier(depth=34), distiller=distiller or kd_distiller(), **kwargs)
    with DefaultScope.overwrite_default_scope(scope):
        return MODELS.build(cfg)


def batch(n=2, size=16):
    torch.manual_seed(0)
    return dict(inputs=[torch.randint(0, 256, (3, size, size), dtype=torch.uint8) for _ in range(n)],
                data_samples=[DataSample().set_gt_label(i % NUM_CLASSES) for i in range(n)])


@pytest.fixture(scope='module')
def model():
    return build()


def test_train_step_trains_the_student_and_never_the_teacher(model):
    teacher_before = copy.deepcopy(model.teacher.state_dict())
    student_before = {k: v.clone() for k, v in model.student.state_dict().items()}
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    log_vars = model.train_step(batch(), optim)
    assert {'student.loss', 'loss_kd', 'loss'} <= set(log_vars)
    assert all(torch.isfinite(v) for v in log_vars.values())
    # BN running statistics of the teacher stay put (eval mode), its weights too.
    for key, value in model.teacher.state_dict().items():
        assert torch.equal(value, teacher_before[key]), key
    assert any(not torch.equal(v, student_before[k]) for k, v in model.student.state_dict().items()
               if v.is_floating_point())


def test_student_gradient_includes_the_distillation_term():
    model = build(calculate_student_loss=False)
    model.train()
    data = model.data_preprocessor(batch(), True)
    losses = model.loss(**data)
    assert set(losses) == {'loss_kd'}
    losses['loss_kd'].backward()
    assert model.student.head.fc.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.teacher.parameters())


def test_student_and_teacher_build_in_their_own_scope_under_another_default_scope():
    # An inherited default_scope='mmdet' must not hide mmpretrain's ImageClassifier nor mmdistkd's distiller.
    model = build(scope='mmdet')
    assert type(model.student).__module__.startswith('mmpretrain')


def test_plain_student_checkpoint_initialises_the_student(model, tmp_path):
    from mmengine.runner import load_checkpoint, save_checkpoint
    plain = build().student
    save_checkpoint({'state_dict': plain.state_dict()}, str(tmp_path / 'plain.pth'))
    fresh = build()
    load_checkpoint(fresh, str(tmp_path / 'plain.pth'))
    for key, value in plain.state_dict().items():
        assert torch.equal(fresh.student.state_dict()[key], value), key


# ---------------------------------------------------------------------- errors for people
def test_unknown_recorder_module_lists_the_closest_names():
    with pytest.raises(ValueError, match=r"no module named 'head\.fcc'.*head\.fc"):
        build(distiller=kd_distiller(student_source='head.fcc'))


def test_mapping_naming_a_missing_recorder():
    with pytest.raises(ValueError, match="teacher recorder 'logitz'.*logits"):
        build(distiller=kd_distiller(preds_T=dict(from_student=False, recorder='logitz')))


def test_loss_whose_forward_does_not_take_the_mapped_argument():
    with pytest.raises(ValueError, match="maps 'logits_S'.*KLDivergence.forward"):
        build(distiller=kd_distiller(logits_S=dict(from_student=True, recorder='logits')))


def test_teacher_and_student_with_different_num_classes():
    with pytest.raises(ValueError, match='num_classes=4.*num_classes=7'):
        build(teacher=classifier(depth=34, num_classes=7))


def test_shape_mismatch_at_the_first_step_names_the_loss_and_both_shapes():
    # Feature maps of different stages: same class count check passes, shapes differ at run time.
    model = build(distiller=kd_distiller(student_source='backbone.layer3', teacher_source='backbone.layer4'))
    data = model.data_preprocessor(batch(), True)
    with pytest.raises(ValueError, match=r"loss_kd.*Tensor\(2, 256, 4, 4\).*Tensor\(2, 512, 2, 2\)"):
        model.loss(**data)


def test_distillation_losses_stay_fp32_under_autocast(model):
    data = model.data_preprocessor(batch(), True)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        losses = model.loss(**data)
    assert losses['loss_kd'].dtype == torch.float32


def test_method_and_input_recorders_keep_student_and_teacher_apart():
    # Student and teacher heads are both LinearClsHead: a patched method must record each model's own calls.
    method = 'mmpretrain.models.heads.LinearClsHead.pre_logits'
    distiller = dict(
        type='ConfigurableDistiller',
        student_recorders=dict(feat=dict(type='MethodOutputs', source=method),
                               head_in=dict(type='ModuleInputs', source='head.fc')),
        teacher_recorders=dict(feat=dict(type='MethodOutputs', source=method)),
        distill_losses=dict(loss_kd=dict(type='KLDivergence')),
        loss_forward_mappings=dict(loss_kd=dict(
            preds_S=dict(from_student=True, recorder='head_in', data_idx=0),
            preds_T=dict(from_student=False, recorder='feat'))))
    model = build(distiller=distiller, teacher=classifier(depth=34))
    student_rec = model.distiller.student_recorders
    teacher_rec = model.distiller.teacher_recorders
    inputs = model.data_preprocessor(batch(), True)['inputs']
    with student_rec:
        model.student(inputs, mode='tensor')
    with teacher_rec:
        model.teacher(inputs, mode='tensor')
    assert len(student_rec.get_recorder('feat').records) == 1
    assert len(teacher_rec.get_recorder('feat').records) == 1
    student_feat = student_rec.get_recorder('feat').get_record_data()
    torch.testing.assert_close(student_rec.get_recorder('head_in').get_record_data(data_idx=0), student_feat)
    assert not torch.equal(student_feat, teacher_rec.get_recorder('feat').get_record_data())

    # Building another model patches nothing again: the method keeps one wrapper, whoever listens to it.
    from mmpretrain.models.heads import LinearClsHead
    patched = LinearClsHead.pre_logits
    build(distiller=distiller, teacher=classifier(depth=34))
    assert LinearClsHead.pre_logits is patched
