"""FGDLoss against a float64 reference written from the FGD paper (Yang et al., CVPR 2022) and the authors'
FeatureLoss, and inside a real mmdet RetinaNet distillation."""
import math

import pytest
import torch
import torch.nn.functional as F
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import HorizontalBoxes
from mmengine.registry import DefaultScope
from mmengine.structures import InstanceData

import mmdistkd  # noqa: F401
from mmdistkd.analysis.synthetic import synthetic_batch
from mmdistkd.models.losses import FGDLoss
from mmdistkd.registry import MODELS

BATCH_SHAPE = (64, 96)  # (h, w) of the padded batch, not square: a transposed mask would show
LEVELS = ((8, 12), (4, 6))  # strides 8 and 16
FRAMES = ('batch_input_shape', 'img_shape')
WEIGHTS = dict(alpha_fgd=1.0, beta_fgd=2.0, gamma_fgd=0.1, lambda_fgd=1e-3)  # every term counts
ONLY = dict(fg=dict(alpha_fgd=1.0, beta_fgd=0, gamma_fgd=0, lambda_fgd=0),
            bg=dict(alpha_fgd=0, beta_fgd=1.0, gamma_fgd=0, lambda_fgd=0),
            attention=dict(alpha_fgd=0, beta_fgd=0, gamma_fgd=1.0, lambda_fgd=0),
            relation=dict(alpha_fgd=0, beta_fgd=0, gamma_fgd=0, lambda_fgd=1.0))
# (img_shape, boxes) per image of a batch padded to BATCH_SHAPE at the bottom and right, as mmdet pads.
IMAGES = [
    # filling the batch: boxes touching the top-left border, overlapping the next one, touching the bottom-right
    # border, a small one
    ((64, 96), [[0, 0, 20, 12], [10, 6, 40, 30], [70, 40, 96, 64], [50.3, 20.7, 55.1, 26.2]]),
    ((64, 96), []),  # no boxes: all background
    ((64, 96), [[0, 0, 96, 64]]),  # the whole image, which fills the batch: no background cell
    ((64, 72), [[40, 20, 72, 64], [5, 3, 17.5, 9]]),  # narrower than the batch, a box at its bottom-right corner
    ((64, 40), [[8, 16, 40, 60], [20, 2, 30, 10]]),  # a portrait image in the landscape batch
]


def data_samples(images=IMAGES, batch_shape=BATCH_SHAPE):
    """Detection data samples as mmdet's DetDataPreprocessor leaves them: img_shape and batch_input_shape."""
    samples = []
    for img_shape, boxes in images:
        sample = DetDataSample(metainfo=dict(img_shape=img_shape, batch_input_shape=batch_shape))
        sample.gt_instances = InstanceData(bboxes=torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
                                           labels=torch.zeros(len(boxes), dtype=torch.long))
        samples.append(sample)
    return samples


def filling_the_batch(*boxes):
    """Images of BATCH_SHAPE, one per entry of ``boxes``: both frames agree."""
    return [(BATCH_SHAPE, image_boxes) for image_boxes in boxes]


def frame_shapes(box_frame, images=IMAGES):
    """Per image, the (h, w) its boxes are scaled by: the padded batch, or the image itself (the authors')."""
    return [BATCH_SHAPE if box_frame == 'batch_input_shape' else img_shape for img_shape, _ in images]


def features(channels, levels=LEVELS, num_images=len(IMAGES), seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(num_images, channels, h, w, generator=generator) for h, w in levels]


def randomise_parameters(loss, seed=1):
    """Non-zero last convs, so the global term differs from plain MSE and its blocks are tested."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in loss.parameters():
            param.copy_(torch.randn(param.shape, generator=generator) * 0.5)


# ---------------------------------------------------------------------------------- float64 reference
def ref_attention(feat, temp):
    num, channels, height, width = feat.shape
    magnitude = feat.abs()
    spatial_logits = magnitude.mean(1).reshape(num, -1) / temp
    spatial = torch.exp(spatial_logits - spatial_logits.max(1, keepdim=True).values)
    spatial = height * width * spatial / spatial.sum(1, keepdim=True)
    channel_logits = magnitude.mean((2, 3)) / temp
    channel = torch.exp(channel_logits - channel_logits.max(1, keepdim=True).values)
    channel = channels * channel / channel.sum(1, keepdim=True)
    return spatial.reshape(num, height, width), channel


def ref_masks(images, frames, height, width):
    """Per image: each box scaled from its frame (h, w) to the level covers rows floor(y1')..ceil(y2') and columns
    floor(x1')..ceil(x2'), value 1 / (rows * columns) counted over that whole range, max over boxes; background
    1 / count."""
    fg = torch.zeros(len(images), height, width, dtype=torch.float64)
    bg = torch.zeros_like(fg)
    for i, ((_, image_boxes), (frame_h, frame_w)) in enumerate(zip(images, frames)):
        for x1, y1, x2, y2 in image_boxes:
            col0, col1 = math.floor(x1 * width / frame_w), math.ceil(x2 * width / frame_w)
            row0, row1 = math.floor(y1 * height / frame_h), math.ceil(y2 * height / frame_h)
            value = 1.0 / ((row1 - row0 + 1) * (col1 - col0 + 1))
            for row in range(max(row0, 0), min(row1, height - 1) + 1):
                for col in range(max(col0, 0), min(col1, width - 1) + 1):
                    fg[i, row, col] = max(fg[i, row, col].item(), value)
        outside = (fg[i] == 0).double()
        if outside.sum() > 0:
            bg[i] = outside / outside.sum()
    return fg, bg


def ref_context_term(feat, block):
    """GcBlock additive term from the block's parameters, in float64, written out by hand."""
    p = {name: value.detach().double() for name, value in block.state_dict().items()}
    num, channels = feat.shape[:2]
    logits = torch.einsum('c,nchw->nhw', p['conv_mask.weight'].reshape(channels), feat) + p['conv_mask.bias']
    weights = torch.softmax(logits.reshape(num, -1), dim=1)
    add = {name.split('.', 1)[1]: value for name, value in p.items() if name.startswith('channel_add_conv.')}
    context = feat.reshape(num, channels, -1) @ weights[:, :, None]  # (N, C, 1)
    hidden = add['0.weight'].reshape(channels // 2, channels) @ context + add['0.bias'][:, None]
    mean = hidden.mean(1, keepdim=True)
    var = ((hidden - mean)**2).mean(1, keepdim=True)
    hidden = (hidden - mean) / torch.sqrt(var + 1e-5) * add['1.weight'].reshape(-1, 1) + \
        add['1.bias'].reshape(-1, 1)
    hidden = hidden.clamp(min=0)
    out = add['3.weight'].reshape(channels, channels // 2) @ hidden + add['3.bias'][:, None]
    return out[..., None]  # (N, C, 1, 1)


def ref_level(feat_S, feat_T, images, frames, loss, weights):
    if loss.align is not None:
        weight = loss.align.weight.detach().double()[:, :, 0, 0]
        feat_S = torch.einsum('oc,nchw->nohw', weight, feat_S) + loss.align.bias.detach().double()[:, None, None]
    num, _, height, width = feat_T.shape
    spatial_T, channel_T = ref_attention(feat_T, loss.temp)
    spatial_S, channel_S = ref_attention(feat_S, loss.temp)
    fg, bg = ref_masks(images, frames, height, width)
    scale = channel_T[:, :, None, None] * spatial_T[:, None]
    fg_loss = ((feat_S - feat_T)**2 * scale * fg[:, None]).sum() / num
    bg_loss = ((feat_S - feat_T)**2 * scale * bg[:, None]).sum() / num
    attention_loss = ((channel_S - channel_T).abs().sum() + (spatial_S - spatial_T).abs().sum()) / num
    out_S = feat_S + ref_context_term(feat_S, loss.student_context)
    out_T = feat_T + ref_context_term(feat_T, loss.teacher_context)
    relation_loss = ((out_S - out_T)**2).sum() / num
    return (weights['alpha_fgd'] * fg_loss + weights['beta_fgd'] * bg_loss + weights['gamma_fgd'] * attention_loss
            + weights['lambda_fgd'] * relation_loss)


def assert_matches_reference(loss, weights, feats_S, feats_T, images=IMAGES):
    feats_S = [f.clone().requires_grad_() for f in feats_S]
    feats_S64 = [f.detach().double().requires_grad_() for f in feats_S]
    value = loss(feats_S, feats_T, data_samples(images))
    frames = frame_shapes(loss.box_frame, images)
    expected = sum(ref_level(s, t.double(), images, frames, loss, weights) for s, t in zip(feats_S64, feats_T))
    assert value.dtype == torch.float32
    torch.testing.assert_close(value.double(), expected, rtol=1e-5, atol=0)
    grads = torch.autograd.grad(value, feats_S)
    expected_grads = torch.autograd.grad(expected, feats_S64)
    for grad, expected_grad in zip(grads, expected_grads):
        # Relative to the largest entry: entries near zero carry fp32 rounding of the larger ones.
        scale = expected_grad.abs().max().item()
        torch.testing.assert_close(grad.double(), expected_grad, rtol=1e-5, atol=1e-5 * scale)


@pytest.mark.parametrize('box_frame', FRAMES)
@pytest.mark.parametrize('terms', ['all', *ONLY])
def test_matches_float64_reference_on_levels_with_and_without_boxes(terms, box_frame):
    # box_frame='img_shape' against the reference in the FGD authors' frame: their maths, reproduced.
    weights = WEIGHTS if terms == 'all' else ONLY[terms]
    loss = FGDLoss(in_channels=8, temp=0.5, box_frame=box_frame, **weights)
    randomise_parameters(loss)
    assert_matches_reference(loss, weights, features(8, seed=0), features(8, seed=1))


def test_matches_reference_with_an_align_conv_for_other_student_channels():
    loss = FGDLoss(in_channels=8, student_channels=6, **WEIGHTS)
    randomise_parameters(loss)
    assert loss.align.in_channels == 6 and loss.align.out_channels == 8
    assert_matches_reference(loss, WEIGHTS, features(6, seed=0), features(8, seed=1))


def test_single_level_equals_that_level_of_a_list():
    loss = FGDLoss(in_channels=8, **WEIGHTS)
    randomise_parameters(loss)
    feats_S, feats_T = features(8, seed=0), features(8, seed=1)
    samples = data_samples()
    levels = [loss(s, t, samples) for s, t in zip(feats_S, feats_T)]
    torch.testing.assert_close(loss(feats_S, feats_T, samples), sum(levels))


def test_mask_values_by_hand():
    # Box (0, 0, 20, 12) in a 64 x 96 image at 8 x 12: columns 0..ceil(2.5)=3, rows 0..ceil(1.5)=2 -> 1/12.
    # Box (70, 40, 96, 64) touches the corner: columns 8..12, rows 5..8 are counted (1/20), the map ends at 11, 7.
    loss = FGDLoss(in_channels=8, alpha_fgd=1.0, beta_fgd=0, gamma_fgd=0, lambda_fgd=0)
    value = loss(torch.ones(1, 8, 8, 12), torch.zeros(1, 8, 8, 12),
                 data_samples(filling_the_batch([[0, 0, 20, 12], [70, 40, 96, 64]])))
    # Teacher all zero: both attentions are uniform (1 per cell, 1 per channel), so the loss is C * sum(mask).
    assert value.item() == pytest.approx(8 * (12 * (1 / 12) + 12 * (1 / 20)), rel=1e-6)


def test_mask_lies_on_the_box_for_a_portrait_image_in_a_landscape_batch():
    # A 64 x 40 (h x w) image padded to 64 x 96, map 8 x 12 (stride 8). Box (24, 16, 40, 40) lies on columns 3..4
    # and rows 2..4 of the map; the cell rule takes columns 3..ceil(5)=5 and rows 2..ceil(5)=5, value 1/12.
    # Scaled by the image instead (the authors'), its columns run from floor(7.2)=7 to ceil(12)=12 (1/24): off the
    # box, where the batch is padding.
    sample = data_samples([((64, 40), [[24, 16, 40, 40]])])[0]
    on_the_box = torch.zeros(8, 12)
    on_the_box[2:6, 3:6] = 1 / 12
    authors = torch.zeros(8, 12)
    authors[2:6, 7:12] = 1 / 24
    for box_frame, expected in (('batch_input_shape', on_the_box), ('img_shape', authors)):
        mask = FGDLoss(in_channels=8, box_frame=box_frame).image_foreground(sample, 8, 12, torch.zeros(1))
        torch.testing.assert_close(mask, expected)


def test_mask_covers_the_box_in_a_batch_padded_by_mmdet():
    """Images of different sizes (landscape and portrait) through mmdet's DetDataPreprocessor, each box painted
    into its image: the map cells holding painted pixels of the padded batch (max-pooled by the stride), plus one
    row and column at the bottom-right (the cell rule's inclusive ceil), are where the default mask must be."""
    from mmdet.models.data_preprocessors import DetDataPreprocessor
    shapes_and_boxes = [((40, 72), [20, 12, 61, 37]), ((90, 50), [10, 44, 35, 83])]
    inputs, samples = [], []
    for (height, width), (x1, y1, x2, y2) in shapes_and_boxes:
        image = torch.zeros(3, height, width, dtype=torch.uint8)
        image[:, y1:y2, x1:x2] = 255
        inputs.append(image)
        sample = DetDataSample(metainfo=dict(img_shape=(height, width)))
        sample.gt_instances = InstanceData(bboxes=torch.tensor([[x1, y1, x2, y2]], dtype=torch.float32),
                                           labels=torch.zeros(1, dtype=torch.long))
        samples.append(sample)
    data = DetDataPreprocessor(pad_size_divisor=32)(dict(inputs=inputs, data_samples=samples), training=True)
    assert tuple(data['inputs'].shape[-2:]) == (96, 96)
    assert all(sample.metainfo['batch_input_shape'] == (96, 96) for sample in data['data_samples'])

    stride = 8
    touched = F.max_pool2d(data['inputs'][:, :1].float(), stride)[:, 0] > 0
    expected = touched.clone()
    expected[:, 1:, :] |= touched[:, :-1, :]
    expected[:, :, 1:] |= expected[:, :, :-1].clone()
    for box_frame, lies_on_the_box in (('batch_input_shape', True), ('img_shape', False)):
        loss = FGDLoss(in_channels=8, box_frame=box_frame)
        masks = torch.stack([loss.image_foreground(sample, 12, 12, data['inputs']) for sample in data['data_samples']])
        assert torch.equal(masks > 0, expected) == lies_on_the_box


def test_box_structures_and_tensors_give_the_same_loss():
    loss = FGDLoss(in_channels=8, **WEIGHTS)
    feats_S, feats_T = features(8, seed=0), features(8, seed=1)
    samples = data_samples()
    boxed = data_samples()
    for sample in boxed:
        sample.gt_instances.bboxes = HorizontalBoxes(sample.gt_instances.bboxes)
    torch.testing.assert_close(loss(feats_S, feats_T, boxed), loss(feats_S, feats_T, samples))


def test_no_boxes_is_all_background_and_finite():
    loss = FGDLoss(in_channels=8)
    feats_S = [f.requires_grad_() for f in features(8, num_images=2, seed=0)]
    value = loss(feats_S, features(8, num_images=2, seed=1), data_samples(filling_the_batch([], [])))
    value.backward()
    assert torch.isfinite(value)
    assert all(torch.isfinite(f.grad).all() for f in feats_S)
    # Only the background term is left of the focal loss: with beta alone it is the reference's bg loss.
    bg_only = FGDLoss(in_channels=8, **ONLY['bg'])
    feat_S, feat_T = torch.randn(2, 8, 4, 6), torch.randn(2, 8, 4, 6)
    spatial_T, channel_T = ref_attention(feat_T.double(), 0.5)
    expected = ((feat_S - feat_T).double()**2 * channel_T[:, :, None, None] * spatial_T[:, None]).sum() / (2 * 24)
    torch.testing.assert_close(bg_only(feat_S, feat_T, data_samples(filling_the_batch([], []))).double(), expected,
                               rtol=1e-5, atol=0)


def test_global_blocks_start_as_zero_terms():
    loss = FGDLoss(in_channels=8, **ONLY['relation'])
    for block in (loss.student_context, loss.teacher_context):
        assert not block.channel_add_conv[-1].weight.any() and not block.channel_add_conv[-1].bias.any()
    assert loss.student_context is not loss.teacher_context
    feat_S, feat_T = torch.randn(2, 8, 4, 6), torch.randn(2, 8, 4, 6)
    expected = ((feat_S - feat_T)**2).sum() / 2
    torch.testing.assert_close(loss(feat_S, feat_T, data_samples(filling_the_batch([], [[0, 0, 10, 10]]))), expected)


def test_half_precision_inputs_compute_in_float32():
    loss = FGDLoss(in_channels=8, **WEIGHTS)
    feat_S, feat_T = torch.randn(len(IMAGES), 8, 8, 12), torch.randn(len(IMAGES), 8, 8, 12)
    value = loss(feat_S.half(), feat_T.half(), data_samples())
    assert value.dtype == torch.float32
    torch.testing.assert_close(value, loss(feat_S.half().float(), feat_T.half().float(), data_samples()))


def test_teacher_side_gets_no_gradient_but_its_context_block_trains():
    loss = FGDLoss(in_channels=8, **WEIGHTS)
    randomise_parameters(loss)
    feat_S = torch.randn(len(IMAGES), 8, 8, 12, requires_grad=True)
    feat_T = torch.randn(len(IMAGES), 8, 8, 12, requires_grad=True)
    loss(feat_S, feat_T, data_samples()).backward()
    assert feat_T.grad is None and feat_S.grad.abs().sum() > 0
    assert loss.teacher_context.channel_add_conv[0].weight.grad.abs().sum() > 0


def test_wrong_inputs_say_what_to_change():
    loss = FGDLoss(in_channels=8)
    samples = data_samples(filling_the_batch([], []))
    with pytest.raises(ValueError, match='student_channels'):
        loss(torch.randn(2, 6, 4, 4), torch.randn(2, 8, 4, 4), samples)
    with pytest.raises(ValueError, match='2 data samples for a batch of 3'):
        loss(torch.randn(3, 8, 4, 4), torch.randn(3, 8, 4, 4), samples)
    with pytest.raises(ValueError, match='same batch and spatial size'):
        loss(torch.randn(2, 8, 4, 4), torch.randn(2, 8, 2, 2), samples)
    with pytest.raises(ValueError, match='data samples'):
        loss(torch.randn(2, 8, 4, 4), torch.randn(2, 8, 4, 4), None)
    with pytest.raises(ValueError, match="box_frame must be 'batch_input_shape'.*or 'img_shape'.*'pad_shape'"):
        FGDLoss(in_channels=8, box_frame='pad_shape')


def test_samples_without_the_frame_are_refused_with_what_to_do():
    sample = DetDataSample(metainfo=dict(img_shape=(64, 96)))
    sample.gt_instances = InstanceData(bboxes=torch.tensor([[0.0, 0.0, 20.0, 12.0]]),
                                       labels=torch.zeros(1, dtype=torch.long))
    feat_S, feat_T = torch.randn(1, 8, 8, 12), torch.randn(1, 8, 8, 12)
    with pytest.raises(ValueError, match=r"metainfo\['batch_input_shape'\].*DetDataPreprocessor.*box_frame='img_s"):
        FGDLoss(in_channels=8)(feat_S, feat_T, [sample])
    authors_frame = FGDLoss(in_channels=8, box_frame='img_shape')(feat_S, feat_T, [sample])
    # Here the image fills its batch: both frames give one loss.
    sample.set_metainfo(dict(batch_input_shape=(64, 96)))
    torch.testing.assert_close(FGDLoss(in_channels=8)(feat_S, feat_T, [sample]), authors_frame)
    without_img_shape = DetDataSample(metainfo=dict(batch_input_shape=(64, 96)), gt_instances=sample.gt_instances)
    with pytest.raises(ValueError, match="metainfo\\['img_shape'\\].*PackDetInputs"):
        FGDLoss(in_channels=8, box_frame='img_shape')(feat_S, feat_T, [without_img_shape])


# ---------------------------------------------------------------------- mask IoU of the two frames (docs/fgd.md)
def cells_at_stride(box, stride, height, width):
    """Where ``box`` lies on a ``height x width`` level of that stride: the cell rule (floor of the top-left to
    ceil of the bottom-right, inclusive, clipped to the level) on the pixel coordinates divided by the stride."""
    x1, y1, x2, y2 = box
    cells = torch.zeros(height, width, dtype=torch.bool)
    cells[max(math.floor(y1 / stride), 0):min(math.ceil(y2 / stride), height - 1) + 1,
          max(math.floor(x1 / stride), 0):min(math.ceil(x2 / stride), width - 1) + 1] = True
    return cells


def fpn_level_size(batch_shape, level):
    """A RetinaNet FPN level's size for a batch padded to a multiple of 32: stride 8 on P3, each level above
    a stride-2 conv (kernel 3, padding 1) of the one below, ceil(n / 2)."""
    height, width = batch_shape[0] // 8, batch_shape[1] // 8
    for _ in range(level - 3):
        height, width = math.ceil(height / 2), math.ceil(width / 2)
    return height, width


def frame_ious(img_shape, batch_shape, level, box_frame):
    """IoU of FGD's mask cells with the box's cells on the level (``cells_at_stride``), for the 16 boxes tiling the
    image in 4 x 4 and for the box of the whole image: (mean over the tiles, worst tile, whole image)."""
    img_h, img_w = img_shape
    height, width = fpn_level_size(batch_shape, level)
    loss = FGDLoss(in_channels=8, box_frame=box_frame)

    def iou(box):
        sample = data_samples([(img_shape, [box])], batch_shape=batch_shape)[0]
        mask = loss.image_foreground(sample, height, width, torch.zeros(1)) > 0
        on_the_box = cells_at_stride(box, 2**level, height, width)
        return ((mask & on_the_box).sum() / (mask | on_the_box).sum()).item()

    tiles = [iou([col * img_w / 4, row * img_h / 4, (col + 1) * img_w / 4, (row + 1) * img_h / 4])
             for row in range(4) for col in range(4)]
    return sum(tiles) / len(tiles), min(tiles), iou([0, 0, img_w, img_h])


LANDSCAPE_IN_WIDER_BATCH = ((800, 1067), (800, 1216))  # a 4:3 photo at mmdet's (1333, 800), a wider one beside it
PORTRAIT_IN_LANDSCAPE_BATCH = ((1067, 800), (1088, 1216))  # a 3:4 photo beside that landscape batch


@pytest.mark.parametrize('case, level, box_frame, expected', [
    (LANDSCAPE_IN_WIDER_BATCH, 3, 'batch_input_shape', (1.0, 1.0, 1.0)),
    (LANDSCAPE_IN_WIDER_BATCH, 3, 'img_shape', (0.628, 0.404, 0.888)),
    (PORTRAIT_IN_LANDSCAPE_BATCH, 3, 'batch_input_shape', (1.0, 1.0, 1.0)),
    (PORTRAIT_IN_LANDSCAPE_BATCH, 3, 'img_shape', (0.220, 0.0, 0.660)),
    (LANDSCAPE_IN_WIDER_BATCH, 7, 'batch_input_shape', (0.854, 0.667, 1.0)),
    (LANDSCAPE_IN_WIDER_BATCH, 7, 'img_shape', (0.721, 0.429, 1.0)),
    (PORTRAIT_IN_LANDSCAPE_BATCH, 7, 'batch_input_shape', (1.0, 1.0, 1.0)),
    (PORTRAIT_IN_LANDSCAPE_BATCH, 7, 'img_shape', (0.421, 0.167, 0.8)),
], ids=[f'{image}-P{level}-{frame}' for level in (3, 7) for image in ('landscape', 'portrait')
        for frame in ('batch_input_shape', 'img_shape')])
def test_mask_iou_of_the_two_frames_is_as_in_the_docs(case, level, box_frame, expected):
    """The figures in docs/fgd.md: the default frame puts the mask on the box on P3 (and P4, P5); the authors'
    frame moves it off by the batch-to-image ratio."""
    assert frame_ious(*case, level, box_frame) == pytest.approx(expected, abs=5e-4)


# ---------------------------------------------------------------------------------- real RetinaNet
def fgd_retinanet_distill(student_fpn_channels):
    """Demo RetinaNet R34 (FPN 64 wide) -> R18, FGD on each of the five FPN levels, one loss per level."""
    student = dict(cfg_path='mmdistkd::demo/retinanet_r18_demo_det_student.py')
    if student_fpn_channels != 64:
        student.update(neck=dict(out_channels=student_fpn_channels),
                       bbox_head=dict(in_channels=student_fpn_channels, feat_channels=student_fpn_channels))
    levels = range(5)
    return dict(
        type='mmdistkd.SingleTeacherDistill',
        architecture=student,
        teacher=dict(cfg_path='mmdistkd::demo/retinanet_r34_demo_det_teacher.py'),
        distiller=dict(
            type='ConfigurableDistiller',
            student_recorders=dict(fpn=dict(type='ModuleOutputs', source='neck')),
            teacher_recorders=dict(fpn=dict(type='ModuleOutputs', source='neck')),
            distill_losses={f'loss_fgd_p{3 + i}': dict(type='FGDLoss', in_channels=64,
                                                       student_channels=student_fpn_channels)
                            for i in levels},
            loss_forward_mappings={
                f'loss_fgd_p{3 + i}': dict(preds_S=dict(from_student=True, recorder='fpn', data_idx=i),
                                           preds_T=dict(from_student=False, recorder='fpn', data_idx=i))
                for i in levels}))


@pytest.mark.parametrize('student_fpn_channels', [64, 32])
def test_trains_in_a_retinanet_distillation(student_fpn_channels):
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(fgd_retinanet_distill(student_fpn_channels))
    model.train()
    torch.manual_seed(0)
    optim = torch.optim.SGD(model.parameters(), lr=1e-3)
    data = model.data_preprocessor(synthetic_batch('det', 2, 64, 64, num_classes=3, seed=0), True)
    losses = model.loss(**data)
    fgd_names = [f'loss_fgd_p{level}' for level in range(3, 8)]
    assert set(fgd_names) <= set(losses)
    assert all(torch.isfinite(losses[name]) and losses[name] > 0 for name in fgd_names)
    fgd_grads = torch.autograd.grad(sum(losses[name] for name in fgd_names), list(model.student.neck.parameters()),
                                    retain_graph=True)
    assert any(g.abs().sum() > 0 for g in fgd_grads), 'FGD reaches the student neck'
    total, _ = model.parse_losses(losses)
    optim.zero_grad()
    total.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    assert all(p.grad is None for p in model.teacher.parameters())
    fgd = model.distiller.distill_losses['loss_fgd_p3']
    assert fgd.teacher_context.channel_add_conv[-1].weight.grad.abs().sum() > 0
    assert (fgd.align is not None) == (student_fpn_channels != 64)
    optim.step()
