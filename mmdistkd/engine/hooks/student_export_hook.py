import os.path as osp

import torch
from mmengine.dist import master_only
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.runner.checkpoint import get_state_dict, save_checkpoint

from mmdistkd.registry import HOOKS
from mmdistkd.utils.student import student_checkpoint


@HOOKS.register_module()
class StudentExportHook(Hook):
    """Writes the trained student to ``{work_dir}/{filename}`` at the end of training: a checkpoint that plain
    mmdet / mmseg / mmpretrain loads directly (no prefix, no teacher, no distiller modules). A student with
    non-finite weights (a diverged run) is refused: nothing is written and the run fails."""

    priority = 'VERY_LOW'

    def __init__(self, filename='student_final.pth'):
        self.filename = filename

    @master_only
    def after_train(self, runner):
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        meta = dict(epoch=runner.epoch, iter=runner.iter, dataset_meta=getattr(model, 'dataset_meta', None) or
                    runner.train_dataloader.dataset.metainfo)
        path = osp.join(runner.work_dir, self.filename)
        checkpoint = student_checkpoint(get_state_dict(model), meta)
        check_finite(checkpoint['state_dict'], path)
        save_checkpoint(checkpoint, path)
        runner.logger.info(f'Student exported to {path}')


def check_finite(state_dict, path):
    """Refuses to export a student whose floating-point tensors are not all finite."""
    floats = {key: value for key, value in state_dict.items() if torch.is_tensor(value) and value.is_floating_point()}
    bad = [key for key, value in floats.items() if not torch.isfinite(value).all()]
    if bad:
        raise RuntimeError(f'Not exporting {path}: {len(bad)} of {len(floats)} floating-point tensors of the student '
                           f'are not finite (first: {bad[0]}); the run diverged. Resume from a checkpoint saved '
                           'before the loss went non-finite, with a lower learning rate or gradient clipping.')
