"""FrozenTeacher with real mmpretrain classifiers: the teacher beside the distillation model's module tree
(state_dict, moves, train mode, EMA), a trainable teacher inside it, the checkpoint (strict, any scheme mmengine
knows), and the inputs re-normalised from the student's preprocessing."""
import copy
import warnings

import pytest
import torch
from mmengine.model import ExponentialMovingAverage
from mmengine.runner import CheckpointLoader, save_checkpoint
from mmpretrain.registry import MODELS as PRETRAIN_MODELS

from mmdistkd.models.algorithms.frozen_teacher import FrozenTeacher, check_teacher_ckpt

from test_single_teacher_distill import batch, build, classifier


def classifier_model(**kwargs):
    return PRETRAIN_MODELS.build(classifier(**kwargs))


@pytest.fixture(scope='module')
def model():
    return build()


# ---------------------------------------------------------------------- beside the module tree
def test_frozen_teacher_is_in_no_state_dict_parameter_list_or_gradient(model):
    assert not any(key.startswith('teacher') for key in model.state_dict())
    assert all(not name.startswith('teacher') for name, _ in model.named_parameters())
    assert all(not p.requires_grad for p in model.teacher.parameters())


def test_frozen_teacher_stays_in_eval_mode_under_norm_eval(model):
    model.train()
    assert model.training and model.student.training
    assert not any(m.training for m in model.teacher.modules())


def test_without_norm_eval_the_frozen_teacher_follows_train_and_eval():
    model = build(teacher_norm_eval=False)
    model.train()
    assert all(m.training for m in model.teacher.modules())
    model.eval()
    assert not any(m.training for m in model.teacher.modules())


def test_frozen_teacher_follows_dtype_and_device_moves():
    model = build()
    model.to(torch.float64)
    assert all(p.dtype == torch.float64 for p in model.teacher.parameters())
    model.half()
    assert all(p.dtype == torch.float16 for p in model.teacher.parameters())
    # The meta device: a move that the CPU-only suite can check (weights and the preprocessor's device).
    model.to('meta')
    assert all(p.device.type == 'meta' for p in model.teacher.parameters())
    assert model.teacher.data_preprocessor.device == torch.device('meta')


def test_ema_shares_the_frozen_teacher_instead_of_copying_it(model):
    ema = ExponentialMovingAverage(model)
    assert ema.module.frozen_teacher is model.frozen_teacher
    assert ema.module.teacher is model.teacher
    assert ema.module.student is not model.student
    ema.update_parameters(model)


def test_trainable_teacher_is_a_normal_submodule():
    model = build(teacher_trainable=True)
    assert model.teacher is model.frozen_teacher.module
    assert any(key.startswith('teacher.') for key in model.state_dict())
    teacher_params = {id(p) for p in model.teacher.parameters()}
    assert teacher_params <= {id(p) for p in model.parameters()}
    assert all(p.requires_grad for p in model.teacher.parameters())
    model.train()
    assert model.teacher.training
    copied = copy.deepcopy(model)
    assert copied.teacher is not model.teacher
    assert copied.teacher is copied._modules['teacher'] is copied.frozen_teacher.module


def test_random_teacher_warns_once_at_the_first_step():
    model = build()
    data = model.data_preprocessor(batch(), True)
    with pytest.warns(UserWarning, match='teacher_ckpt is None'):
        model.loss(**data)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        model.loss(**data)


# ---------------------------------------------------------------------- checkpoint
def test_teacher_checkpoint_loads_strictly_also_from_a_ddp_wrapped_state_dict(tmp_path):
    trained = classifier_model(depth=34)
    wrapped_keys = {f'module.{key}': value for key, value in trained.state_dict().items()}
    save_checkpoint({'state_dict': wrapped_keys}, str(tmp_path / 'teacher.pth'))
    fresh = classifier_model(depth=34)
    FrozenTeacher(fresh, fresh.data_preprocessor, ckpt=str(tmp_path / 'teacher.pth'))
    for key, value in trained.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], value), key


def test_teacher_checkpoint_of_another_architecture_is_refused(tmp_path):
    save_checkpoint({'state_dict': classifier_model(depth=18).state_dict()}, str(tmp_path / 'resnet18.pth'))
    with pytest.raises(RuntimeError, match='does not match the teacher architecture'):
        build(teacher_ckpt=str(tmp_path / 'resnet18.pth'))


def test_missing_local_teacher_checkpoint_fails_at_build(tmp_path):
    with pytest.raises(FileNotFoundError, match='teacher_ckpt .*does not exist'):
        build(teacher_ckpt=str(tmp_path / 'missing.pth'))


@pytest.mark.parametrize('path', [
    'https://download.openmmlab.com/teacher.pth', 'http://host/teacher.pth', 's3://bucket/teacher.pth',
    'openmmlab:s3://bucket/teacher.pth', 'open-mmlab://resnet50_caffe', 'torchvision://resnet18',
    'modelzoo://resnet18', 'mmcls://resnet18', 'pavi://model/teacher.pth'])
def test_every_scheme_mmengine_loads_passes_the_build_check(path):
    check_teacher_ckpt(path)


def test_a_scheme_registered_with_mmengine_loads_the_teacher(monkeypatch):
    trained = classifier_model(depth=34)
    # register_scheme replaces the scheme table; monkeypatch puts the original back.
    monkeypatch.setattr(CheckpointLoader, '_schemes', CheckpointLoader._schemes)
    CheckpointLoader.register_scheme('memory://', lambda filename, map_location: trained.state_dict())
    fresh = classifier_model(depth=34)
    FrozenTeacher(fresh, fresh.data_preprocessor, ckpt='memory://teacher')
    for key, value in trained.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], value), key


# ---------------------------------------------------------------------- inputs
def test_transform_matches_a_hand_computation():
    # Student: RGB, mean (10, 20, 30), std (2, 4, 8). Teacher: BGR, mean (1, 2, 3), std 0.5.
    student = classifier_model(mean=(10, 20, 30), std=(2, 4, 8), to_rgb=True)
    teacher = classifier_model(depth=34, mean=(1, 2, 3), std=(0.5, 0.5, 0.5), to_rgb=False)
    # A pixel stored as B=100, G=50, R=200: the student sees R, G, B = (200 - 10) / 2, (50 - 20) / 4,
    # (100 - 30) / 8; the teacher expects B, G, R = (100 - 1) / 0.5, (50 - 2) / 0.5, (200 - 3) / 0.5.
    student_inputs = torch.tensor([95.0, 7.5, 8.75]).view(1, 3, 1, 1).expand(2, 3, 4, 4)
    expected = torch.tensor([198.0, 96.0, 394.0]).view(1, 3, 1, 1).expand(2, 3, 4, 4)
    transformed = FrozenTeacher(teacher, student.data_preprocessor).transform_inputs(student_inputs)
    torch.testing.assert_close(transformed, expected)


def test_transform_normalises_for_the_teacher_when_the_student_does_not():
    student_preprocessor = PRETRAIN_MODELS.build(dict(type='ClsDataPreprocessor', to_rgb=False))
    teacher = classifier_model(depth=34, mean=(1, 2, 3), std=(2, 4, 8), to_rgb=False)
    raw = torch.tensor([11.0, 42.0, 83.0]).view(1, 3, 1, 1).expand(2, 3, 4, 4)
    expected = torch.tensor([5.0, 10.0, 10.0]).view(1, 3, 1, 1).expand(2, 3, 4, 4)
    torch.testing.assert_close(FrozenTeacher(teacher, student_preprocessor).transform_inputs(raw), expected)


def test_transform_gives_the_teachers_own_preprocessing_of_the_same_images():
    model = build(teacher=classifier(depth=34, mean=(0, 0, 0), std=(255, 255, 255), to_rgb=False))
    raw = batch()
    student_inputs = model.data_preprocessor(copy.deepcopy(raw), True)['inputs']
    teacher_inputs = model.teacher.data_preprocessor(copy.deepcopy(raw), True)['inputs']
    torch.testing.assert_close(model.frozen_teacher.transform_inputs(student_inputs), teacher_inputs,
                               atol=1e-5, rtol=0)


def test_same_preprocessing_passes_the_inputs_through(model):
    inputs = torch.randn(2, 3, 4, 4)
    assert model.frozen_teacher.transform_inputs(inputs) is inputs
