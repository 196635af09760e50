"""A relative local ``cfg_path`` is read from the folder of the config file that names it (as ``_base_`` is),
whatever the current directory, through the config loading of tools/train.py and tools/test.py; one that exists
nowhere fails at build with the place it was looked for."""
import os.path as osp

import pytest
from mmengine.registry import DefaultScope

import mmdistkd  # noqa: F401
from mmdistkd.registry import MODELS
from mmdistkd.utils.launch import load_config

CLASSIFIER = """model = dict(type='mmpretrain.ImageClassifier',
             backbone=dict(type='ResNet_CIFAR', depth=18, out_indices=(3, )),
             neck=dict(type='GlobalAveragePooling'),
             head=dict(type='LinearClsHead', num_classes=4, in_channels=512, loss=dict(type='CrossEntropyLoss')),
             data_preprocessor=dict(type='ClsDataPreprocessor', mean=[128.] * 3, std=[64.] * 3))
"""
DISTILL_FRAGMENT = """model = dict(type='mmdistkd.SingleTeacherDistill',
             architecture=dict(cfg_path='{student}'),
             teacher=dict(cfg_path='../models/teacher.py'),
             distiller=dict(type='ConfigurableDistiller'))
"""


@pytest.fixture
def configs(tmp_path):
    """configs/models/{student,teacher}.py, a fragment configs/_base_/distill.py naming the teacher relative to
    itself, and configs/dist/run.py naming the student relative to itself and inheriting the fragment."""
    for folder in ('models', '_base_', 'dist'):
        (tmp_path / 'configs' / folder).mkdir(parents=True)
    (tmp_path / 'configs' / 'models' / 'student.py').write_text(CLASSIFIER)
    (tmp_path / 'configs' / 'models' / 'teacher.py').write_text(CLASSIFIER.replace('depth=18', 'depth=34'))
    (tmp_path / 'configs' / '_base_' / 'distill.py').write_text(DISTILL_FRAGMENT.format(student='unused.py'))
    (tmp_path / 'configs' / 'dist' / 'run.py').write_text(
        "_base_ = ['../_base_/distill.py']\nmodel = dict(architecture=dict(cfg_path='../models/student.py'))\n")
    (tmp_path / 'elsewhere').mkdir()
    return tmp_path / 'configs'


def test_relative_cfg_path_is_read_from_the_config_that_names_it(configs, monkeypatch):
    monkeypatch.chdir(configs.parent / 'elsewhere')
    cfg = load_config(str(configs / 'dist' / 'run.py'))
    assert cfg.model.architecture.cfg_path == str(configs / 'models' / 'student.py')
    assert cfg.model.teacher.cfg_path == str(configs / 'models' / 'teacher.py')  # named by the fragment
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(cfg.model)
    assert model.teacher.backbone.depth == 34 and model.student.backbone.depth == 18


def test_a_path_from_the_current_directory_still_works(configs, monkeypatch):
    monkeypatch.chdir(configs.parent)
    run = configs / 'dist' / 'run.py'
    run.write_text(run.read_text().replace('../models/student.py', 'configs/models/student.py'))
    cfg = load_config(str(run))
    assert cfg.model.architecture.cfg_path == str(configs / 'models' / 'student.py')


def test_a_missing_cfg_path_says_where_it_was_looked_for(configs, monkeypatch):
    monkeypatch.chdir(configs.parent / 'elsewhere')
    run = configs / 'dist' / 'run.py'
    run.write_text(run.read_text().replace('../models/student.py', '../models/missing.py'))
    cfg = load_config(str(run))
    with pytest.raises(FileNotFoundError, match=r'looked for .*configs/models/missing\.py.*folder of the config '
                                                r'file that names it'):
        with DefaultScope.overwrite_default_scope('mmpretrain'):
            MODELS.build(cfg.model)
    assert osp.isabs(cfg.model.architecture.cfg_path)
