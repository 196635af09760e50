"""FGD, "Focal and Global Knowledge Distillation for Detectors" (Yang et al., CVPR 2022), on detector features.

For a student / teacher feature pair ``S, T (N, C, H, W)`` of one level (the student first through a 1x1
``align`` conv when its channels differ) and the ground-truth boxes of each image:

- attention of a feature ``F`` at temperature ``temp``: spatial ``A_s = H*W * softmax_HW(mean_C |F| / temp)``,
  channel ``A_c = C * softmax_C(mean_HW |F| / temp)``;
- foreground mask ``M_fg (N, H, W)``: each box placed on the level (``x * W / frame_w``, ``y * H / frame_h``,
  the frame being the sample's ``metainfo[box_frame]``, below) covers the cells from the floor of its top-left
  to the ceil of its bottom-right corner, both inclusive, and gives them ``1 / (rows * columns)`` of that cell
  range; the largest value wins where boxes overlap. Background ``M_bg``: 1 outside every box, divided by its
  count (per image; all zero when the boxes cover the whole level);
- focal loss ``alpha * fg + beta * bg`` with ``fg = sum((S - T)^2 * A_c^T * A_s^T * M_fg) / N`` and ``bg``
  alike with ``M_bg``: the teacher's attention weights both sides;
- attention loss ``gamma * (sum|A_c^S - A_c^T| + sum|A_s^S - A_s^T|) / N``;
- global loss ``lambda * sum((S + g_S(S) - T - g_T(T))^2) / N``, with ``g_S`` and ``g_T`` a GcBlock each
  (context pooling, then a bottleneck whose last conv starts at zero: at initialisation the term is
  ``sum((S - T)^2) / N``). Both blocks are trained, the teacher's too.

The frame of the boxes, ``box_frame``. A batch's feature maps cover the padded batch: mmdet pads every image
at the bottom and right to ``metainfo['batch_input_shape']``, and box coordinates are pixels of the image,
which starts at the batch's top-left corner. ``'batch_input_shape'`` (the default) therefore puts each box
where it lies on the feature map, the paper's mask (exactly on each level whose stride divides the padded
batch: P2-P5 at mmdet's ``pad_size_divisor=32``; docs/fgd.md measures P7). ``'img_shape'`` scales by the
unpadded image instead, as the FGD authors' ``FeatureLoss`` does (yzd-v/FGD @c03a6cf,
``mmdet/distillation/losses/fgd.py``, the ``new_boxxes`` lines of ``forward``; the DPK authors' copy,
zongdaoming/dpk @7f66025 ``detection/mmdet/distillation/losses/fgd.py``, likewise): an image smaller than its
batch then has its boxes stretched towards the bottom-right by the batch-to-image ratio (measured in
docs/fgd.md). Use it only to reproduce their numbers.

Otherwise this is the maths of the authors' ``FeatureLoss`` (after their fix of the transposed box mask).
MMRazor never merged an FGD loss; its two pull requests, open-mmlab/mmrazor#401 (``mmrazor/models/losses/
fgd.py`` @3d47f16, boxes scaled by ``img_shape``) and #463 (``mmrazor/models/losses/fgd_loss.py`` @b479dc5,
by ``batch_input_shape``), both have the constructor arguments and defaults that ``FGDLoss`` takes. Unlike
theirs, the ground truth comes in as ``data_samples`` (each sample's ``gt_instances.bboxes`` and metainfo)
instead of state set by a hook or extra arguments. Two numerical differences, both where theirs is off: a box's
cells are ``x * W / frame_w`` (theirs ``x / frame_w * W``, whose rounding can step over an integer: 180 / 600 *
50 gives 15.000001 in fp32, and its ceil one cell too many), and cells outside the level are dropped (theirs wrap
around for negative coordinates). The cell count in ``1 / (rows * columns)`` is the authors' also where the
range runs past the border (a box touching the right edge ends at column ``W``, one past the last).
"""
import torch
import torch.nn.functional as F
from mmcv.cnn import ContextBlock
from torch import nn

from mmdistkd.registry import MODELS

from .base import DistillLoss, check_same_levels


def feature_attention(feat, temp):
    """Spatial ``(N, H, W)`` and channel ``(N, C)`` attention of ``feat (N, C, H, W)``; each sums to the number
    of its positions."""
    num_images, channels, height, width = feat.shape
    magnitude = feat.abs()
    spatial = F.softmax(magnitude.mean(dim=1).flatten(1) / temp, dim=1) * (height * width)
    channel = F.softmax(magnitude.mean(dim=(2, 3)) / temp, dim=1) * channels
    return spatial.view(num_images, height, width), channel


def foreground_mask(bboxes, frame_shape, height, width):
    """``(height, width)`` foreground mask of one image's ``bboxes (K, 4)`` (x1, y1, x2, y2 in pixels of a
    frame of ``frame_shape`` (h, w) that the ``height x width`` map covers): ``1 / (rows * columns)`` of each
    box's cell range in its cells, the largest value where boxes overlap, 0 elsewhere."""
    if not len(bboxes):
        return bboxes.new_zeros(height, width)
    frame_h, frame_w = frame_shape[:2]
    # Multiplied before dividing: an exact cell coordinate stays exact (see the module docstring).
    x1 = torch.floor(bboxes[:, 0] * width / frame_w)
    y1 = torch.floor(bboxes[:, 1] * height / frame_h)
    x2 = torch.ceil(bboxes[:, 2] * width / frame_w)
    y2 = torch.ceil(bboxes[:, 3] * height / frame_h)
    value = 1.0 / ((y2 + 1 - y1) * (x2 + 1 - x1))
    rows = torch.arange(height, device=bboxes.device, dtype=bboxes.dtype)
    cols = torch.arange(width, device=bboxes.device, dtype=bboxes.dtype)
    in_rows = (rows >= y1[:, None]) & (rows <= y2[:, None])
    in_cols = (cols >= x1[:, None]) & (cols <= x2[:, None])
    per_box = (in_rows[:, :, None] & in_cols[:, None, :]) * value[:, None, None]
    return per_box.amax(dim=0)


def background_mask(fg_mask):
    """Per image of ``fg_mask (N, H, W)``: 1 where it is 0, divided by the number of such cells (all zero when
    there is none)."""
    background = (fg_mask == 0).to(fg_mask.dtype)
    return background / background.sum(dim=(1, 2), keepdim=True).clamp(min=1)


def global_context_block(channels):
    """mmcv's GcNet ``ContextBlock`` as the FGD authors build theirs (attention pooling, the channel-add term
    through a C -> C/2 -> C bottleneck whose last conv starts at zero): ``feat + term(feat)``."""
    if channels < 2:
        raise ValueError(f'FGDLoss needs in_channels >= 2 for its global context block (a C/2 bottleneck), '
                         f'got {channels}')
    return ContextBlock(channels, ratio=0.5, pooling_type='att', fusion_types=('channel_add', ))


@MODELS.register_module()
class FGDLoss(DistillLoss):
    """Focal and Global Distillation of one feature level, or of a list of levels (losses summed; the
    levels then share this loss's context blocks and align conv: give one ``FGDLoss`` per level for
    blocks of their own, as the authors did). See the module docstring for the maths.

    Args:
        in_channels (int): Channels of the teacher's feature (and of the student's after ``align``).
        temp (float): Temperature of the attention softmaxes.
        alpha_fgd (float): Weight of the foreground loss.
        beta_fgd (float): Weight of the background loss.
        gamma_fgd (float): Weight of the attention loss.
        lambda_fgd (float): Weight of the global (relation) loss.
        student_channels (int, optional): Channels of the student's feature when they differ from
            ``in_channels``: a 1x1 conv maps the student's feature to ``in_channels`` first.
        box_frame (str): The metainfo entry whose ``(h, w)`` the feature map covers, which boxes are scaled
            by: ``'batch_input_shape'`` (default: the padded batch, where the boxes lie on the map; mmdet's
            ``DetDataPreprocessor`` sets it) or ``'img_shape'`` (the unpadded image, the FGD authors' frame,
            for reproducing their numbers). See the module docstring.
    """

    teacher_inputs = ('preds_T', )
    takes_data_samples = True
    BOX_FRAMES = ('batch_input_shape', 'img_shape')

    def __init__(self, in_channels, temp=0.5, alpha_fgd=0.001, beta_fgd=0.0005, gamma_fgd=0.001,
                 lambda_fgd=0.000005, student_channels=None, box_frame='batch_input_shape'):
        super().__init__()
        if temp <= 0:
            raise ValueError(f'FGDLoss temp must be positive, got {temp}')
        if box_frame not in self.BOX_FRAMES:
            raise ValueError(f'FGDLoss box_frame must be \'batch_input_shape\' (the padded batch the feature map '
                             f'covers) or \'img_shape\' (the unpadded image, the FGD authors\' frame), got '
                             f'{box_frame!r}')
        self.box_frame = box_frame
        self.in_channels = in_channels
        self.student_channels = student_channels or in_channels
        self.temp = temp
        self.alpha_fgd = alpha_fgd
        self.beta_fgd = beta_fgd
        self.gamma_fgd = gamma_fgd
        self.lambda_fgd = lambda_fgd
        self.align = None
        if self.student_channels != in_channels:
            self.align = nn.Conv2d(self.student_channels, in_channels, kernel_size=1)
        self.student_context = global_context_block(in_channels)
        self.teacher_context = global_context_block(in_channels)

    def forward(self, preds_S, preds_T, data_samples):
        check_same_levels(preds_S, preds_T)
        if data_samples is None:
            raise ValueError(f'FGDLoss needs the batch\'s data samples (their gt_instances.bboxes and '
                             f'{self.box_frame}); ConfigurableDistiller passes them unless loss_forward_mappings '
                             'maps data_samples')
        if not isinstance(preds_S, (list, tuple)):
            return self.level_loss(preds_S, preds_T, data_samples)
        return sum(self.level_loss(s, t, data_samples) for s, t in zip(preds_S, preds_T))

    def level_loss(self, feat_S, feat_T, data_samples):
        self.check_level(feat_S, feat_T, data_samples)
        if self.align is not None:
            feat_S = self.align(feat_S)
        num_images, _, height, width = feat_T.shape
        spatial_T, channel_T = feature_attention(feat_T, self.temp)
        spatial_S, channel_S = feature_attention(feat_S, self.temp)

        fg_mask = torch.stack([self.image_foreground(sample, height, width, feat_T) for sample in data_samples])
        bg_mask = background_mask(fg_mask)
        # alpha * fg + beta * bg in one pass: both weight the same squared difference.
        cell_weight = spatial_T * (self.alpha_fgd * fg_mask + self.beta_fgd * bg_mask)
        squared_diff = (feat_S - feat_T).square()
        focal = (squared_diff * channel_T[:, :, None, None] * cell_weight[:, None]).sum()

        attention = (channel_S - channel_T).abs().sum() + (spatial_S - spatial_T).abs().sum()
        relation = (self.student_context(feat_S) - self.teacher_context(feat_T)).square().sum()
        return (focal + self.gamma_fgd * attention + self.lambda_fgd * relation) / num_images

    def check_level(self, feat_S, feat_T, data_samples):
        if feat_S.dim() != 4:
            raise ValueError(f'FGDLoss takes (N, C, H, W) features, got student shape {tuple(feat_S.shape)}')
        if feat_S.shape[1] != self.student_channels or feat_T.shape[1] != self.in_channels:
            raise ValueError(
                f'FGDLoss(in_channels={self.in_channels}, student_channels={self.student_channels}) got a student '
                f'feature of {feat_S.shape[1]} channels and a teacher feature of {feat_T.shape[1]}: set '
                'in_channels to the teacher\'s channels and student_channels to the student\'s')
        if feat_S.shape[0] != feat_T.shape[0] or feat_S.shape[2:] != feat_T.shape[2:]:
            raise ValueError(f'FGDLoss needs student and teacher features of the same batch and spatial size, got '
                             f'{tuple(feat_S.shape)} and {tuple(feat_T.shape)}')
        if len(data_samples) != feat_S.shape[0]:
            raise ValueError(f'FGDLoss got {len(data_samples)} data samples for a batch of {feat_S.shape[0]} '
                             'feature maps')

    def image_foreground(self, sample, height, width, like):
        """The ``(height, width)`` foreground mask of one data sample's boxes in the frame ``box_frame``."""
        frame_shape = sample.metainfo.get(self.box_frame)
        if frame_shape is None:
            where_from = ("mmdet's DetDataPreprocessor sets it: pass the batch through the detector's "
                          "data_preprocessor, set it on hand-made samples, or give box_frame='img_shape' to scale "
                          'by the unpadded image as the FGD authors did'
                          if self.box_frame == 'batch_input_shape' else
                          "mmdet's PackDetInputs packs it: keep 'img_shape' in its meta_keys")
            raise ValueError(f'FGDLoss(box_frame={self.box_frame!r}) needs metainfo[{self.box_frame!r}] in every '
                             f'data sample, and a sample has none; {where_from}')
        bboxes = sample.gt_instances.bboxes
        # mmdet's box structures (HorizontalBoxes) hold the (K, 4) tensor in .tensor.
        bboxes = getattr(bboxes, 'tensor', bboxes).to(device=like.device, dtype=like.dtype)
        return foreground_mask(bboxes, frame_shape, height, width)
