import os.path as osp

from mmengine.dist import master_only
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.runner.checkpoint import get_state_dict, save_checkpoint

from mmdistkd.registry import HOOKS
from mmdistkd.utils.student import student_checkpoint


@HOOKS.register_module()
class StudentExportHook(Hook):
    """Writes the trained student to ``{work_dir}/{filename}`` at the end of training: a checkpoint that plain
    mmdet / mmseg / mmpretrain loads directly (no prefix, no teacher, no distiller modules)."""

    priority = 'VERY_LOW'

    def __init__(self, filename='student_final.pth'):
        self.filename = filename

    @master_only
    def after_train(self, runner):
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        meta = dict(epoch=runner.epoch, iter=runner.iter, dataset_meta=getattr(model, 'dataset_meta', None) or
                    runner.train_dataloader.dataset.metainfo)
        path = osp.join(runner.work_dir, self.filename)
        save_checkpoint(student_checkpoint(get_state_dict(model), meta), path)
        runner.logger.info(f'Student exported to {path}')
