"""SingleTeacherDistill(inherit_from_teacher=[...]) with tiny mmpretrain classifiers: the student's named modules
start from the teacher checkpoint's weights, at build and after the Runner's init_weights, while a load_from or
resume of a distillation checkpoint still wins; errors name what differs or the closest module names."""
import pytest
import torch
from mmengine.dataset import pseudo_collate
from mmengine.registry import DefaultScope
from mmengine.runner import Runner, save_checkpoint
from mmpretrain.structures import DataSample

import mmdistkd  # noqa: F401
from mmdistkd.registry import MODELS

NUM_CLASSES, NUM_IMAGES, SIZE = 4, 4, 16
INHERITED = ['backbone.bn1', 'neck', 'head']


def classifier(depth=18, width=8):
    """ResNet for 16x16 inputs with ``width`` channels in the stem, 8 * width at the end."""
    return dict(
        type='ImageClassifier',
        backbone=dict(type='ResNet_CIFAR', depth=depth, stem_channels=width, base_channels=width),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=NUM_CLASSES, in_channels=8 * width,
                  loss=dict(type='CrossEntropyLoss')),
        data_preprocessor=dict(type='ClsDataPreprocessor', mean=[128.] * 3, std=[64.] * 3))


def kd_distiller():
    return dict(
        type='ConfigurableDistiller',
        student_recorders=dict(logits=dict(type='ModuleOutputs', source='head.fc')),
        teacher_recorders=dict(logits=dict(type='ModuleOutputs', source='head.fc')),
        distill_losses=dict(loss_kd=dict(type='KLDivergence')),
        loss_forward_mappings=dict(loss_kd=dict(preds_S=dict(from_student=True, recorder='logits'),
                                                preds_T=dict(from_student=False, recorder='logits'))))


def build(student=None, teacher=None, distiller=None, **kwargs):
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return MODELS.build(dict(type='mmdistkd.SingleTeacherDistill', architecture=student or classifier(),
                                 teacher=teacher or classifier(depth=34), distiller=distiller or kd_distiller(),
                                 **kwargs))


@pytest.fixture(scope='module')
def teacher_ckpt(tmp_path_factory):
    """A ResNet-34 teacher checkpoint: initialised from its own seed, with BN statistics as after training."""
    torch.manual_seed(1)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        teacher = MODELS.build(classifier(depth=34))
    teacher.init_weights()
    state = teacher.state_dict()
    for key, value in state.items():
        if key.endswith('running_mean'):
            value.normal_(std=0.1)
        elif key.endswith('running_var'):
            value.uniform_(0.5, 2.0)
    path = str(tmp_path_factory.mktemp('teacher') / 'teacher.pth')
    save_checkpoint({'state_dict': state}, path)
    return path, state


def assert_inherited(student, teacher_state, buffers=True):
    for name in INHERITED:
        module = student.get_submodule(name)
        tensors = module.state_dict() if buffers else dict(module.named_parameters())
        for key, value in tensors.items():
            assert torch.equal(value, teacher_state[f'{name}.{key}']), f'{name}.{key}'


def test_inherited_modules_hold_the_teacher_checkpoint_and_the_rest_is_untouched(teacher_ckpt):
    path, teacher_state = teacher_ckpt
    torch.manual_seed(0)
    plain = build(teacher_ckpt=path)
    torch.manual_seed(0)
    model = build(teacher_ckpt=path, inherit_from_teacher=INHERITED)
    assert_inherited(model.student, teacher_state)
    assert model.student.backbone.bn1.running_var.ne(1).any()  # buffers too
    for key, value in model.student.state_dict().items():
        if not key.startswith(('backbone.bn1.', 'head.')):
            assert torch.equal(value, plain.student.state_dict()[key]), key
    # The Runner's init_weights re-initialises the student; the inherited modules come back from the teacher.
    model.init_weights()
    assert_inherited(model.student, teacher_state)
    assert not torch.equal(model.student.backbone.conv1.weight, plain.student.backbone.conv1.weight)


def test_a_trainable_teacher_keeps_its_checkpoint_through_init_weights(teacher_ckpt):
    path, teacher_state = teacher_ckpt
    model = build(teacher_ckpt=path, teacher_trainable=True, inherit_from_teacher=INHERITED)
    model.init_weights()
    for key, value in model.teacher.state_dict().items():
        assert torch.equal(value, teacher_state[key]), key
    assert_inherited(model.student, teacher_state)


def test_shape_mismatch_names_the_first_mismatching_parameter():
    # A ResNet-18 teacher twice as wide: its head reads 128 channels, the student's 64.
    with pytest.raises(ValueError, match=r"'head' differ \(first mismatching parameter head\.fc\.weight: "
                                         r"student \(4, 64\), teacher \(4, 128\)\)"):
        build(teacher=classifier(width=16), inherit_from_teacher=['head'])


def test_different_module_structure_names_the_missing_and_unexpected_parameters():
    # ResNet-34's layer1 has a third block, which the student's lacks.
    with pytest.raises(ValueError, match=r"unexpected \(only in the teacher\): backbone\.layer1\.2\.conv1\.weight"):
        build(inherit_from_teacher=['backbone.layer1'])
    with pytest.raises(ValueError, match=r"missing in the teacher: backbone\.layer1\.2\.conv1\.weight"):
        build(student=classifier(depth=34), teacher=classifier(), inherit_from_teacher=['backbone.layer1'])


def test_unknown_module_name_lists_the_closest_names():
    with pytest.raises(ValueError, match=r"no module named 'heads'.*Closest names: head"):
        build(inherit_from_teacher=['heads'])


def test_without_teacher_ckpt_it_warns_and_copies_the_random_teacher():
    with pytest.warns(UserWarning, match=r"inherit_from_teacher=\['head'\] copies a randomly initialised teacher"):
        model = build(inherit_from_teacher=['head'])
    assert torch.equal(model.student.head.fc.weight, model.teacher.head.fc.weight)


def test_inheriting_alone_trains_without_running_the_teacher(teacher_ckpt):
    path, _ = teacher_ckpt
    model = build(teacher_ckpt=path, distiller=dict(type='ConfigurableDistiller'), inherit_from_teacher=['head'])
    teacher_calls = []
    model.teacher.register_forward_pre_hook(lambda *args: teacher_calls.append(1))
    data = model.data_preprocessor(batch(), True)
    model.loss(**data)  # the first step's teacher check runs the teacher once (its own task loss)
    teacher_calls.clear()
    losses = model.loss(**data)
    assert set(losses) == {'student.loss'} and torch.isfinite(losses['student.loss'])
    assert not teacher_calls


# ---------------------------------------------------------------------- with mmengine's Runner
def batch():
    generator = torch.Generator().manual_seed(0)
    return dict(inputs=[torch.randint(0, 256, (3, SIZE, SIZE), dtype=torch.uint8, generator=generator)
                        for _ in range(NUM_IMAGES)],
                data_samples=[DataSample().set_gt_label(i % NUM_CLASSES) for i in range(NUM_IMAGES)])


class TinyImages(torch.utils.data.Dataset):
    metainfo = dict(classes=tuple(str(i) for i in range(NUM_CLASSES)))

    def __init__(self):
        self.items = [dict(inputs=image, data_samples=sample) for image, sample in zip(*batch().values())]

    def __len__(self):
        return NUM_IMAGES

    def __getitem__(self, index):
        return self.items[index]


def train_one_iteration(work_dir, name, teacher_ckpt, lr, load_from=None, resume=False):
    """A Runner over the inheriting model for one iteration (resumed at iteration 1: none) with SGD at ``lr``
    (0: the weights stay what initialisation and loading made them); returns the student."""
    runner = Runner(
        model=build(teacher_ckpt=teacher_ckpt, inherit_from_teacher=INHERITED), work_dir=str(work_dir),
        experiment_name=name, default_scope='mmpretrain',
        train_dataloader=dict(dataset=TinyImages(), sampler=dict(type='DefaultSampler', shuffle=False),
                              batch_size=NUM_IMAGES, collate_fn=pseudo_collate, num_workers=0),
        train_cfg=dict(by_epoch=False, max_iters=1), optim_wrapper=dict(optimizer=dict(type='SGD', lr=lr)),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1, by_epoch=False)),
        load_from=load_from, resume=resume)
    runner.train()
    return runner.model.student


def test_load_from_and_resume_of_a_distillation_checkpoint_win_over_inheriting(teacher_ckpt, tmp_path):
    path, teacher_state = teacher_ckpt
    # Without loading: the inherited parameters are the teacher's after the Runner's init_weights (and a step at
    # lr 0, which moves only BN statistics).
    assert_inherited(train_one_iteration(tmp_path / 'still', 'still', path, lr=0.), teacher_state, buffers=False)

    trained = train_one_iteration(tmp_path / 'trained', 'trained', path, lr=1.)
    trained_head = trained.head.fc.weight.detach().clone()
    assert not torch.equal(trained_head, teacher_state['head.fc.weight'])
    checkpoint = str(tmp_path / 'trained' / 'iter_1.pth')
    loaded = train_one_iteration(tmp_path / 'loaded', 'loaded', path, lr=0., load_from=checkpoint)
    assert torch.equal(loaded.head.fc.weight, trained_head)
    resumed = train_one_iteration(tmp_path / 'resumed', 'resumed', path, lr=1., load_from=checkpoint, resume=True)
    assert torch.equal(resumed.head.fc.weight, trained_head)
