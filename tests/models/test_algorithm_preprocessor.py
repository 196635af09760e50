"""MMRazor's algorithm-level ``data_preprocessor`` (with a type: the step's preprocessor, as its BaseAlgorithm) and
``pretrained=True`` beside ``cfg_path`` (the weights the package's model index lists, as mmengine.hub.get_model)
in SingleTeacherDistill, on real tiny mmpretrain classifiers. No download: the weight loader is replaced."""
import os.path as osp
from unittest import mock

import pytest
import torch
import yaml
from mmengine.optim import OptimWrapper
from mmengine.registry import DefaultScope
from mmengine.utils import get_installed_path
from mmpretrain.structures import DataSample

from mmdistkd.models.algorithms.submodel import pretrained_weights, resolve_submodel
from mmdistkd.registry import MODELS

NUM_CLASSES = 4
IMAGENET_MEAN, IMAGENET_STD = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]
CIFAR_MEAN, CIFAR_STD = [125.307, 122.961, 113.8575], [51.5865, 50.847, 51.255]
# MMRazor's KD R50 -> MobileNetV2 config sets this on the algorithm.
MMRAZOR_PREPROCESSOR = dict(type='ImgDataPreprocessor', mean=IMAGENET_MEAN, std=IMAGENET_STD, bgr_to_rgb=True)
CIFAR10_RESNET18 = 'mmpretrain::resnet/resnet18_8xb16_cifar10.py'


def classifier(depth=18, num_classes=NUM_CLASSES, **preprocessor):
    """A ResNet-CIFAR classifier; with ``preprocessor`` settings, a ClsDataPreprocessor of its own."""
    cfg = dict(type='ImageClassifier', backbone=dict(type='ResNet_CIFAR', depth=depth, out_indices=(3, )),
               neck=dict(type='GlobalAveragePooling'),
               head=dict(type='LinearClsHead', num_classes=num_classes, in_channels=512,
                         loss=dict(type='CrossEntropyLoss')))
    if preprocessor:
        cfg['data_preprocessor'] = dict(type='ClsDataPreprocessor', **preprocessor)
    return cfg


def kd_distiller():
    logits = dict(type='ModuleOutputs', source='head.fc')
    return dict(type='ConfigurableDistiller', student_recorders=dict(logits=logits),
                teacher_recorders=dict(logits=logits),
                distill_losses=dict(loss_kl=dict(type='KLDivergence', tau=1, loss_weight=3)),
                loss_forward_mappings=dict(loss_kl=dict(preds_S=dict(from_student=True, recorder='logits'),
                                                        preds_T=dict(from_student=False, recorder='logits'))))


def build(student=None, teacher=None, **kwargs):
    cfg = dict(type='mmdistkd.SingleTeacherDistill', architecture=student or classifier(),
               teacher=teacher or classifier(depth=34), distiller=kd_distiller(), **kwargs)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return MODELS.build(cfg)


def raw_batch(n=2, size=16):
    torch.manual_seed(0)
    return dict(inputs=[torch.randint(0, 256, (3, size, size), dtype=torch.uint8) for _ in range(n)],
                data_samples=[DataSample().set_gt_label(i % NUM_CLASSES) for i in range(n)])


def normalised_rgb(data, mean, std):
    """The BGR uint8 images flipped to RGB and normalised, written out."""
    images = torch.stack(data['inputs']).float()[:, [2, 1, 0]]
    return (images - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


def backbone_inputs(module, run):
    seen = []
    handle = module.backbone.register_forward_pre_hook(lambda _, args: seen.append(args[0]))
    try:
        run()
    finally:
        handle.remove()
    return seen[0]


def test_typed_algorithm_preprocessor_feeds_student_and_teacher_as_in_mmrazor():
    """MMRazor's KD R50 -> MobileNetV2 layout: the student's config has no preprocessor, the algorithm an
    ImgDataPreprocessor. Before, it was merged into the ImageClassifier config, which adds batch_augments to it."""
    model = build(data_preprocessor=MMRAZOR_PREPROCESSOR)
    assert type(model.data_preprocessor).__name__ == 'ImgDataPreprocessor'
    assert model.student.data_preprocessor is model.data_preprocessor
    data = raw_batch()
    expected = normalised_rgb(data, IMAGENET_MEAN, IMAGENET_STD)
    inputs = model.data_preprocessor(data, True)['inputs']
    torch.testing.assert_close(inputs, expected)
    # The teacher, without a preprocessor of its own, normalises alike: its inputs are the student's, unchanged.
    teacher_seen = backbone_inputs(model.teacher, lambda: model.record_teacher(inputs, None))
    torch.testing.assert_close(teacher_seen, expected)
    log_vars = model.train_step(raw_batch(), OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01)))
    assert {'loss_kl', 'student.loss'} <= set(log_vars)


def test_typed_preprocessor_replaces_the_students_own_and_says_so_when_it_normalises_differently():
    """MMRazor's CRD / Factor Transfer CIFAR configs: the student's own config normalises with CIFAR statistics, the
    algorithm with ImageNet's. The algorithm's wins (MMRazor); the teacher still gets its own normalisation."""
    cifar = dict(mean=CIFAR_MEAN, std=CIFAR_STD, to_rgb=False)
    with mock.patch('mmdistkd.models.algorithms.builders.print_log') as log:
        model = build(student=classifier(**cifar), teacher=classifier(depth=34, **cifar),
                      data_preprocessor=MMRAZOR_PREPROCESSOR)
    message = ' '.join(str(call.args[0]) for call in log.call_args_list)
    assert 'replaces the student\'s own' in message and 'test the exported student' in message
    data = raw_batch()
    inputs = model.data_preprocessor(data, True)['inputs']
    torch.testing.assert_close(inputs, normalised_rgb(data, IMAGENET_MEAN, IMAGENET_STD))
    teacher_seen = backbone_inputs(model.teacher, lambda: model.record_teacher(inputs, None))
    bgr = torch.stack(data['inputs']).float()
    torch.testing.assert_close(teacher_seen, (bgr - torch.tensor(CIFAR_MEAN).view(1, 3, 1, 1))
                               / torch.tensor(CIFAR_STD).view(1, 3, 1, 1), rtol=1e-4, atol=1e-4)


def test_typed_preprocessor_of_the_students_type_keeps_the_settings_it_leaves_out():
    """mmseg configs keep a typed preprocessor at the top level (the Runner hands it to the model) without the
    settings of their model's (its crop size): the student's own settings stay, those given win."""
    model = build(student=classifier(mean=CIFAR_MEAN, std=CIFAR_STD, pad_size_divisor=8, to_rgb=True),
                  data_preprocessor=dict(type='ClsDataPreprocessor', mean=IMAGENET_MEAN, std=IMAGENET_STD))
    assert model.data_preprocessor.pad_size_divisor == 8 and model.data_preprocessor.to_rgb
    assert model.data_preprocessor.mean.flatten().tolist() == pytest.approx(IMAGENET_MEAN)


def test_untyped_preprocessor_still_completes_the_students_config():
    """mmpretrain configs' top-level settings (no type), handed over by the Runner: the student's where it has
    none, with its class's additions (batch augments from train_cfg), as before."""
    student = dict(classifier(), train_cfg=dict(augments=dict(type='Mixup', alpha=0.2)))
    model = build(student=student, data_preprocessor=dict(mean=CIFAR_MEAN, std=CIFAR_STD, num_classes=NUM_CLASSES))
    assert type(model.data_preprocessor).__name__ == 'ClsDataPreprocessor'
    assert model.data_preprocessor.batch_augments is not None
    assert model.teacher.data_preprocessor.mean.flatten().tolist() == pytest.approx(CIFAR_MEAN)


def metafile_weights(config):
    """The Weights entry of ``config`` ('configs/...py') in mmpretrain's metafiles, read with yaml."""
    root = osp.join(get_installed_path('mmpretrain'), '.mim')
    with open(osp.join(root, 'model-index.yml')) as index:
        metafiles = yaml.safe_load(index)['Import']
    for metafile in metafiles:
        with open(osp.join(root, metafile)) as file:
            for model in yaml.safe_load(file).get('Models', []):
                if model.get('Config') == config:
                    return model['Weights']
    raise AssertionError(f'{config} is not in the model index')


@pytest.fixture
def loads():
    """Replaces the loader of the teacher's and the student's weights; records (model, checkpoint)."""
    calls = []
    with mock.patch('mmdistkd.models.algorithms.frozen_teacher.load_weights',
                    side_effect=lambda module, ckpt, *args: calls.append(('teacher', ckpt))), \
            mock.patch('mmdistkd.models.algorithms.builders.load_weights',
                       side_effect=lambda module, ckpt, *args: calls.append(('student', ckpt))):
        yield calls


def test_pretrained_teacher_loads_the_model_indexs_weights(loads):
    url = metafile_weights('configs/resnet/resnet18_8xb16_cifar10.py')
    assert url.startswith('https://download.openmmlab.com/') and pretrained_weights(
        dict(cfg_path=CIFAR10_RESNET18, pretrained=True), 'teacher') == url
    model = build(student=classifier(num_classes=10), teacher=dict(cfg_path=CIFAR10_RESNET18, pretrained=True))
    assert loads == [('teacher', url)]
    assert model.frozen_teacher.ckpt == url  # no 'random teacher' warning: it has weights


def test_teacher_ckpt_wins_over_pretrained_and_says_so(loads, tmp_path):
    ckpt = str(tmp_path / 'teacher.pth')
    open(ckpt, 'wb').close()
    with mock.patch('mmdistkd.models.algorithms.builders.print_log') as log:
        build(student=classifier(num_classes=10), teacher=dict(cfg_path=CIFAR10_RESNET18, pretrained=True),
              teacher_ckpt=ckpt)
    assert loads == [('teacher', ckpt)]
    message = ' '.join(str(call.args[0]) for call in log.call_args_list)
    assert ckpt in message and 'not loaded' in message


def test_pretrained_student_loads_and_keeps_its_weights_through_init_weights(loads):
    model = build(student=dict(cfg_path=CIFAR10_RESNET18, pretrained=True), teacher=classifier(num_classes=10))
    assert loads == [('student', metafile_weights('configs/resnet/resnet18_8xb16_cifar10.py'))]
    weight = model.student.head.fc.weight
    with torch.no_grad():
        weight.fill_(0.5)  # stands for the loaded weights
    model.init_weights()
    assert (weight == 0.5).all()


@pytest.mark.parametrize('model_cfg, match', [
    (dict(cfg_path='mmpretrain::_base_/models/resnet18_cifar.py', pretrained=True), 'lists no weights'),
    (dict(cfg_path='local/config.py', pretrained=True), 'must be a "pkg::rel/path.py" path'),
])
def test_pretrained_that_cannot_be_honoured_fails_loudly(model_cfg, match):
    with pytest.raises(ValueError, match=match):
        pretrained_weights(model_cfg, 'teacher')


def test_pretrained_false_or_beside_a_type_is_not_mmrazors_key():
    assert pretrained_weights(dict(cfg_path=CIFAR10_RESNET18, pretrained=False), 'student') is None
    assert pretrained_weights(dict(cfg_path=CIFAR10_RESNET18, pretrained='x.pth'), 'student') is None
    assert pretrained_weights(dict(type='ImageClassifier', pretrained='x.pth'), 'student') is None


@pytest.mark.parametrize('pretrained', [None, 'backbone.pth'])
def test_pretrained_that_is_not_a_bool_overrides_the_models_own(pretrained):
    """mmseg's segmentors take their backbone's weights as ``pretrained='open-mmlab://...'``: beside ``cfg_path``,
    a value other than True/False overrides it (MMRazor's converted mmseg configs set it to None)."""
    cfg_path = 'mmseg::pspnet/pspnet_r18-d8_4xb2-80k_cityscapes-512x1024.py'
    assert resolve_submodel(dict(cfg_path=cfg_path), 'student')[0]['pretrained'] == 'open-mmlab://resnet18_v1c'
    model_cfg, _ = resolve_submodel(dict(cfg_path=cfg_path, pretrained=pretrained), 'student')
    assert model_cfg['pretrained'] == pretrained
    assert 'pretrained' not in resolve_submodel(dict(cfg_path=CIFAR10_RESNET18, pretrained=False), 'student')[0]
