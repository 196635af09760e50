"""RazorVisualizationHook: MMRazor's hook that draws recorded feature maps of validation images (before training
and after every ``interval`` epochs), e.g. a distilled detector's FPN levels
(``configs/distill/mmdet/cwd/cwd_fpn_retina_r101_retina_r50_1x_coco_visualization.py``)."""
import os.path as osp

import mmcv
import torch
from mmengine.dataset import Compose
from mmengine.dist import master_only
from mmengine.fileio import get
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.utils import mkdir_or_exist

from mmdistkd.models.recorders import RecorderManager
from mmdistkd.registry import HOOKS

DEFAULT_VISUALIZATION_CFG = dict(channel_reduction='pixel_wise_max', topk=20, arrangement=(4, 5), resize_shape=None,
                                 alpha=0.5)
# Annotations are not needed to run a model on an image, and the image alone has none.
ANNOTATION_LOADERS = ('LoadAnnotations', 'LoadPanopticAnnotations')


@HOOKS.register_module()
class RazorVisualizationHook(Hook):
    """Draws the feature maps that ``recorders`` record while the model predicts the validation images
    ``data_idx``, one image per ``mappings`` entry (and per tensor of a tuple record), with the visualizer's
    ``draw_featmap`` over the original image. Before training (stage ``before_run``) and after every
    ``interval``-th epoch (``epoch_{n}``), on the main process only; images are named
    ``{stage}_data_idx_{idx}_{mapping}_{i}``.

    Where they go: with ``out_dir``, as JPEG files in ``{work_dir}/{timestamp}/{out_dir}``; with ``show``, to a
    window; otherwise to the visualizer's backends (``add_image``: local files, TensorBoard, WandB).

    Recorders are built and prepared on the runner's model, so a distillation's student is
    ``architecture.<name>`` (``source='architecture.neck'``). The image is read from the ``img_path`` of the
    validation dataset's sample and prepared by ``test_dataloader.dataset.pipeline`` (``val_dataloader``'s
    without a test dataloader) minus its annotation loading.

    MMRazor's hook and arguments, with these differences: the model predicts in eval mode (MMRazor predicts in
    whatever mode training left it, so BatchNorm layers would update their running statistics from the drawn
    images); the visualizer is not modified (MMRazor replaces its ``draw_featmap`` and, with ``show``, drops its
    backends); ``out_dir`` is joined to the work directory once (MMRazor joins it again at every drawing);
    ``use_norm`` standardises with the population standard deviation (MMRazor's sample one is NaN for a single
    value per channel).

    Args:
        recorders (dict): recorder configs by name, as a distiller's.
        mappings (dict): per image name, ``dict(recorder=..., record_idx=0, data_idx=None)`` picking the feature
            map(s) (``(N, C, H, W)``, the first image of the batch is drawn) from a recorder.
        enabled (bool): draw at all.
        data_idx (int | list[int]): indices of the validation images.
        interval (int): draw after every ``interval``-th epoch.
        show (bool): show the images in a window.
        wait_time (float): seconds each shown image stays.
        out_dir (str | None): the directory, under ``{work_dir}/{timestamp}``, to write the images to.
        file_client_args (dict): how to read the original image (``backend='disk'``: local files; otherwise
            mmengine's ``backend_args``).
        is_overlaid (bool): draw over the original image (else the feature map alone).
        visualization_cfg (dict): arguments of ``draw_featmap``: ``channel_reduction`` (``'pixel_wise_max'``,
            MMRazor's, the per-pixel maximum over channels; or mmengine's ``'squeeze_mean'``, ``'select_max'``,
            ``None`` for the ``topk`` channels in an ``arrangement`` grid), ``resize_shape``, ``alpha``.
        use_norm (bool): standardise each channel (over the batch and positions) before drawing.
    """

    def __init__(self, recorders, mappings, enabled=False, data_idx=0, interval=1, show=False, wait_time=0.1,
                 out_dir=None, file_client_args=None, is_overlaid=True, visualization_cfg=None, use_norm=False):
        self.recorder_manager = RecorderManager(recorders)
        self.mappings = mappings
        for name, mapping in mappings.items():
            if mapping.get('recorder') not in self.recorder_manager.recorders:
                raise ValueError(f'RazorVisualizationHook mapping {name!r} names the recorder '
                                 f'{mapping.get("recorder")!r}, but the recorders are: '
                                 f'{", ".join(self.recorder_manager.recorders) or "none"}')
        self.enabled = enabled
        self.data_idx = [data_idx] if isinstance(data_idx, int) else list(data_idx)
        self.interval = interval
        self.show = show
        self.wait_time = wait_time
        self.out_dir = out_dir
        file_client_args = dict(file_client_args or dict(backend='disk'))
        # mmengine's file backends call the local disk 'local' (the deprecated FileClient's 'disk').
        if file_client_args.get('backend') == 'disk':
            file_client_args['backend'] = 'local'
        self.backend_args = file_client_args
        self.is_overlaid = is_overlaid
        self.visualization_cfg = dict(DEFAULT_VISUALIZATION_CFG, **(visualization_cfg or {}))
        self.use_norm = use_norm
        self._step = 0

    @master_only
    def before_run(self, runner):
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        self.recorder_manager.prepare_from_model(model, role='model')
        if self.out_dir is not None:
            self.out_dir = osp.join(runner.work_dir, runner.timestamp, self.out_dir)
            mkdir_or_exist(self.out_dir)

    @master_only
    def before_train(self, runner):
        if self.enabled and runner.epoch % self.interval == 0:
            self._visualize(runner, 'before_run')

    @master_only
    def after_train_epoch(self, runner):
        if self.enabled and runner.epoch % self.interval == 0:
            self._visualize(runner, f'epoch_{runner.epoch}')

    def _visualize(self, runner, stage):
        val_loop = runner.val_loop
        if val_loop is None:
            raise RuntimeError('RazorVisualizationHook draws feature maps of validation images: configure '
                               'val_dataloader, val_cfg and val_evaluator')
        dataset = val_loop.dataloader.dataset
        loader_cfg = runner.cfg.get('test_dataloader') or runner.cfg.val_dataloader
        pipeline = Compose([step for step in loader_cfg.dataset.pipeline if step['type'] not in ANNOTATION_LOADERS])
        for idx in self.data_idx:
            img_path = dataset.get_data_info(idx)['img_path']
            data = pipeline(dict(img_path=img_path, img_id=0))
            self._predict(runner.model, dict(inputs=[data['inputs']], data_samples=[data['data_samples']]))
            image = mmcv.imfrombytes(get(img_path, backend_args=self.backend_args), channel_order='rgb') \
                if self.is_overlaid else None
            for name, mapping in self.mappings.items():
                recorder = self.recorder_manager.get_recorder(mapping['recorder'])
                feats = recorder.get_record_data(mapping.get('record_idx', 0), mapping.get('data_idx'))
                for i, feat in enumerate([feats] if isinstance(feats, torch.Tensor) else feats):
                    drawn = self._draw(runner.visualizer, standardized(feat) if self.use_norm else feat, image)
                    self._emit(runner.visualizer, f'{stage}_data_idx_{idx}_{name}_{i}', drawn)

    def _predict(self, model, data):
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad(), self.recorder_manager:
                model.test_step(data)
        finally:
            model.train(was_training)

    def _draw(self, visualizer, feat, image):
        cfg = dict(self.visualization_cfg)
        featmap = feat[0].detach().float().cpu()
        if image is not None and cfg['resize_shape'] is None:
            featmap = crop_to_aspect(featmap, image.shape[:2])
        if cfg['channel_reduction'] == 'pixel_wise_max':
            # Reduced here, drawn as mmengine draws a single channel.
            featmap, cfg['channel_reduction'], cfg['topk'] = featmap.amax(dim=0, keepdim=True), None, 0
        return visualizer.draw_featmap(featmap, image, **cfg)

    def _emit(self, visualizer, name, drawn):
        if self.show:
            visualizer.show(drawn, win_name=name, wait_time=self.wait_time)
        if self.out_dir is not None:
            mmcv.imwrite(drawn[..., ::-1], osp.join(self.out_dir, f'{name}.jpg'))
        elif not self.show:
            visualizer.add_image(name, drawn, step=self._step)
        self._step += 1


def crop_to_aspect(featmap, image_shape):
    """The top-left part of a ``(C, H, W)`` feature map with the aspect ratio of the image ``(height, width)``:
    batched inputs are padded at the bottom and right, so that part covers the image (as MMRazor draws)."""
    height, width = featmap.shape[-2:]
    image_height, image_width = image_shape
    if height * image_width > width * image_height:
        height = round(width * image_height / image_width)
    else:
        width = round(height * image_width / image_height)
    return featmap[..., :height, :width]


def standardized(feat):
    """``(N, C, H, W)`` features standardised per channel over the batch and positions."""
    mean = feat.mean(dim=(0, 2, 3), keepdim=True)
    std = feat.std(dim=(0, 2, 3), keepdim=True, correction=0)
    return (feat - mean) / (std + 1e-6)
