"""``load_from`` through the runner tools/train.py and tools/test.py build (StrictLoadRunner): a distillation
checkpoint in a plain student model loads its student; a checkpoint that leaves part of the model unloaded is an
error unless ``load_from_partial=True``; a plain student checkpoint in a distillation model loads the student."""
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.dataset import pseudo_collate
from mmengine.registry import DefaultScope

import mmdistkd  # noqa: F401
from mmdistkd.engine.runner import StrictLoadRunner
from mmdistkd.registry import MODELS
from mmdistkd.testing import REPO, TinyImages, run_tool
from mmdistkd.utils.launch import load_config

from test_distill_optim_wrapper import NUM_CLASSES, SIZE, build_model, classifier, dpk_distiller

PLAIN_STUDENT = classifier(8)
DISTILLATION = dict(type='mmdistkd.SingleTeacherDistill', architecture=classifier(8), teacher=classifier(16),
                    distiller=dpk_distiller())


def build_test_runner(model, load_from, tmp_path, **cfg):
    """The runner tools/test.py builds for a config without runner_type (``cfg``: the config's other keys), on 8
    tiny images."""
    return StrictLoadRunner(
        model=model, work_dir=str(tmp_path / 'work'), default_scope='mmpretrain', load_from=str(load_from),
        test_dataloader=dict(dataset=TinyImages(8, SIZE, NUM_CLASSES), sampler=dict(type='DefaultSampler',
                             shuffle=False), batch_size=4, collate_fn=pseudo_collate, num_workers=0),
        test_cfg=dict(type='TestLoop'), test_evaluator=dict(type='Accuracy'), cfg=cfg)


def plain_classifier(seed, width):
    torch.manual_seed(seed)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return MODELS.build(classifier(width))


def assert_weights(model, expected):
    state = model.state_dict()
    assert expected and all(torch.equal(state[key], value) for key, value in expected.items())


def test_distillation_checkpoint_in_a_plain_student_loads_its_student(tmp_path):
    distilled = build_model(seed=3).state_dict()
    checkpoint = tmp_path / 'iter_20.pth'
    torch.save({'state_dict': distilled, 'meta': {}}, checkpoint)
    runner = build_test_runner(PLAIN_STUDENT, checkpoint, tmp_path)
    runner.test()
    assert_weights(runner.model, {key[len('architecture.'):]: value for key, value in distilled.items()
                                  if key.startswith('architecture.')})


def test_plain_student_checkpoint_in_a_distillation_model_loads_the_student(tmp_path):
    student = plain_classifier(4, 8).state_dict()
    checkpoint = tmp_path / 'student_final.pth'
    torch.save({'state_dict': student}, checkpoint)
    runner = build_test_runner(DISTILLATION, checkpoint, tmp_path)
    runner.test()  # the distiller's modules are not in the checkpoint: not an error
    assert_weights(runner.model.architecture, student)


@pytest.mark.parametrize('model', ['plain', 'distillation'])
def test_a_checkpoint_of_another_model_is_refused_unless_partial_loading_is_asked_for(model, tmp_path):
    teacher = plain_classifier(5, 16).state_dict()
    teacher['head.fc.bias'] = torch.arange(float(NUM_CLASSES))  # the one parameter of the same shape as the student's
    checkpoint = tmp_path / 'teacher.pth'
    torch.save({'state_dict': teacher}, checkpoint)
    config = PLAIN_STUDENT if model == 'plain' else DISTILLATION
    with pytest.raises(RuntimeError, match=rf'load_from {checkpoint} leaves \d+ of the model\'s \d+ parameters and '
                       r'buffers unloaded.*size mismatch for (architecture\.)?backbone.conv1.weight.*'
                       r'--cfg-options load_from_partial=True') as error:
        build_test_runner(config, checkpoint, tmp_path).test()
    assert ('model.teacher_ckpt' in str(error.value)) == (model == 'distillation')

    runner = build_test_runner(config, checkpoint, tmp_path, load_from_partial=True)
    runner.test()
    student = runner.model if model == 'plain' else runner.model.architecture
    assert torch.equal(student.state_dict()['head.fc.bias'], teacher['head.fc.bias'])


def test_missing_keys_are_named(tmp_path):
    student = plain_classifier(4, 8).state_dict()
    checkpoint = tmp_path / 'headless.pth'
    torch.save({'state_dict': {key: value for key, value in student.items() if not key.startswith('head.')}},
               checkpoint)
    with pytest.raises(RuntimeError, match=r'leaves 2 of .*missing from the checkpoint: head.fc.weight, head.fc.bias'):
        build_test_runner(PLAIN_STUDENT, checkpoint, tmp_path).test()


# ---------------------------------------------------------------------- through tools/test.py
DEMO_STUDENT = 'configs/demo/resnet18_demo_cls_student.py'
DEMO_DISTILLATION = 'configs/demo/kd_resnet34_resnet18_demo_cls.py'
TEST_OPTIONS = ['--cfg-options', 'test_dataloader.dataset.indices=8']


def demo_distillation_checkpoint(path):
    """What tools/train.py saves for the demo KD config (before any training): architecture. and
    data_preprocessor. keys."""
    cfg = load_config(osp.join(REPO, DEMO_DISTILLATION))
    cfg.model.teacher_ckpt = None
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model = MODELS.build(cfg.model)
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, path)
    return path


def test_tools_test_evaluates_a_distillation_checkpoint_as_its_student(demo_data, tmp_path):
    checkpoint = demo_distillation_checkpoint(tmp_path / 'iter_20.pth')
    result = run_tool(['tools/test.py', DEMO_STUDENT, str(checkpoint), '--work-dir', str(tmp_path / 'test')]
                      + TEST_OPTIONS)
    log = result.stdout + result.stderr
    assert f'{checkpoint} is a distillation checkpoint: loading its student' in log
    assert 'do not match exactly' not in log and 'accuracy/top1' in log


def test_tools_test_refuses_a_checkpoint_that_leaves_the_model_partly_random(demo_data, tmp_path):
    checkpoint = tmp_path / 'other.pth'
    torch.save({'state_dict': plain_classifier(0, 8).state_dict()}, checkpoint)  # another ResNet
    result = subprocess.run([sys.executable, 'tools/test.py', DEMO_STUDENT, str(checkpoint), '--work-dir',
                             str(tmp_path / 'test')] + TEST_OPTIONS, cwd=REPO, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode != 0
    assert f'load_from {checkpoint} leaves' in result.stderr and 'load_from_partial=True' in result.stderr
