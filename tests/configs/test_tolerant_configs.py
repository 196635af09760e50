"""The tolerant-teacher and generation-student configs (docs/tolerant.md): the teachers are plain
upstream configs plus mmdistkd's custom import and a wrapped loss (they train with the upstream project's
own tools/train.py), and every generation student is distilled into its teacher's own architecture."""
import glob
import os.path as osp

import mmpretrain
import pytest
from mmdet.models.dense_heads import Mask2FormerHead
from mmengine.config import Config
from mmengine.registry import DefaultScope

import mmdistkd  # noqa: F401
from mmdistkd.models.losses.tolerant import TolerantLoss
from mmdistkd.registry import MODELS
from mmdistkd.testing import REPO, run_tool
from mmdistkd.utils.tasks import task_of

TEACHERS = sorted(glob.glob(osp.join(REPO, 'configs', 'tolerant', 'tolerant_*.py')) +
                  glob.glob(osp.join(REPO, 'configs', 'demo', 'tolerant_*.py')))
STUDENTS = sorted(glob.glob(osp.join(REPO, 'configs', 'tolerant', 'gen_*.py')) +
                  glob.glob(osp.join(REPO, 'configs', 'demo', 'gen_*.py')))


def build(model_cfg, default_scope):
    with DefaultScope.overwrite_default_scope(default_scope):
        return MODELS.build(model_cfg)


def tolerant_losses(model):
    return [module for module in model.modules() if isinstance(module, TolerantLoss)]


def ids(paths):
    return [osp.relpath(path, osp.join(REPO, 'configs')) for path in paths]


@pytest.mark.parametrize('config', TEACHERS, ids=ids(TEACHERS))
def test_tolerant_teacher_is_a_plain_config_with_a_wrapped_loss(config):
    with open(config) as file:
        assert 'mmdistkd::' not in file.read(), 'upstream tools cannot resolve mmdistkd:: paths'
    cfg = Config.fromfile(config)
    assert cfg.custom_imports == dict(imports=['mmdistkd'], allow_failed_imports=False)
    model = build(cfg.model, cfg.default_scope)
    losses = tolerant_losses(model)
    assert losses and all(0 < loss.eta < 1 for loss in losses)
    task = task_of(model)
    # mmseg's Mask2Former head is mmdet's: it calls its query-class loss as a detection head does.
    query_head = isinstance(getattr(model, 'decode_head', None), Mask2FormerHead)
    assert {loss.task for loss in losses} == {'det' if query_head else task}
    if task == 'det' and hasattr(model, 'bbox_head'):  # dense heads keep sigmoid outputs: no background channel
        assert model.bbox_head.use_sigmoid_cls and model.bbox_head.cls_out_channels == model.bbox_head.num_classes
    if task == 'det' and hasattr(model, 'roi_head'):  # RoI heads keep their softmax over classes + background
        bbox_head = model.roi_head.bbox_head
        assert bbox_head.fc_cls.out_features == bbox_head.num_classes + 1
    if query_head:  # softmax over classes + "no object", with the class weights the head reads from the wrapper
        head = model.decode_head
        assert head.cls_embed.out_features == head.num_classes + 1
        assert head.class_weight == head.loss_cls.base_loss.class_weight
    elif task == 'seg':  # decode and auxiliary heads, the latter still weighted 0.4
        assert sorted(loss.loss_weight for loss in losses) == ([0.4, 1.0] if model.with_auxiliary_head else [1.0])


@pytest.mark.parametrize('config', STUDENTS, ids=ids(STUDENTS))
def test_generation_student_has_its_teachers_architecture(config):
    cfg = Config.fromfile(config)
    assert cfg.model.teacher_ckpt is None, 'tools/generations.py fills in the teacher checkpoint'
    model = build(cfg.model, cfg.get('default_scope'))
    student, teacher = model.student, model.teacher
    assert type(student) is type(teacher)
    assert {k: v.shape for k, v in student.state_dict().items()} == \
        {k: v.shape for k, v in teacher.state_dict().items()}
    assert tolerant_losses(teacher) and not tolerant_losses(student), 'only the first teacher is tolerant'
    # lambda on the task loss, 1 - lambda on the distillation
    distill_weights = {loss.loss_weight for loss in model.distiller.distill_losses.values()}
    assert max(distill_weights) == pytest.approx(1 - model.student_loss_weight)


def test_demo_teacher_trains_with_mmpretrains_own_train_script(demo_data, tmp_path):
    """Only custom_imports and the loss wrapper added to a plain config: upstream's script trains it."""
    script = osp.join(osp.dirname(mmpretrain.__file__), '.mim', 'tools', 'train.py')
    work_dir = tmp_path / 'upstream'
    result = run_tool([script, 'configs/demo/tolerant_resnet34_demo_cls_teacher.py', '--work-dir', str(work_dir),
                       '--cfg-options', 'train_cfg.max_iters=2', 'train_cfg.val_interval=2',
                       'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
                       'val_dataloader.num_workers=0', 'val_dataloader.dataset.indices=4',
                       'default_hooks.logger.interval=1'])
    log = result.stdout + result.stderr
    assert 'Iter(train) [2/2]' in log and 'accuracy/top1' in log
    assert osp.isfile(work_dir / 'iter_2.pth')
