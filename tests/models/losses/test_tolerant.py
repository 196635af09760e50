"""TopScoreDifferenceLoss and TolerantLoss, against references written from the paper's TSD (Yang et al., AAAI
2019; docs/tolerant.md, with its dense-task extension) and inside the real mmpretrain / mmseg / mmdet heads they
are meant to drop into."""
import math

import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import DefaultScope

from mmdistkd.models.losses.tolerant import TolerantLoss, TopScoreDifferenceLoss
from mmdistkd.registry import MODELS


def reference_tsd(probs, k):
    """TSD of one probability vector (a list): explicit descending sort, then a loop over ranks 2..k."""
    ranked = sorted(probs, reverse=True)
    secondary = 0.0
    for rank in range(1, k):
        secondary += ranked[rank]
    return ranked[0] - secondary / (k - 1)


def reference_tsd_per_row(probs, k):
    return torch.tensor([reference_tsd(row.tolist(), k) for row in probs.double()], dtype=torch.float64)


def focal_cfg(**kwargs):
    return dict(type='mmdet.FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0, **kwargs)


# ---------------------------------------------------------------------------------------------- TSD
@pytest.mark.parametrize('k', [2, 3, 5])
def test_tsd_matches_reference_on_vectors_and_dense_maps(k):
    torch.manual_seed(0)
    logits = torch.randn(6, 7) * 3
    expected = reference_tsd_per_row(logits.softmax(-1), k)
    assert torch.allclose(TopScoreDifferenceLoss(k=k)(logits).double(), expected.mean(), atol=1e-6)

    dense = torch.randn(2, 5, 3, 4)  # every pixel is a sample
    pixels = dense.permute(0, 2, 3, 1).reshape(-1, 5)
    expected = reference_tsd_per_row(pixels.softmax(-1), k)
    assert torch.allclose(TopScoreDifferenceLoss(k=k, loss_weight=2.0)(dense).double(), 2 * expected.mean(),
                          atol=1e-6)

    # weights and a valid mask in the sample shape: mean over the valid samples
    weight = torch.rand(2, 3, 4)
    valid = torch.rand(2, 3, 4) > 0.5
    flat_w, flat_v = weight.reshape(-1).double(), valid.reshape(-1)
    expected = (expected * flat_w)[flat_v].sum() / flat_v.sum()
    got = TopScoreDifferenceLoss(k=k)(dense, weight=weight, valid_mask=valid)
    assert torch.allclose(got.double(), expected, atol=1e-6)


def test_tsd_no_valid_sample_is_zero_and_k_is_checked():
    logits = torch.randn(4, 5, requires_grad=True)
    loss = TopScoreDifferenceLoss()(logits, valid_mask=torch.zeros(4, dtype=torch.bool))
    loss.backward()
    assert loss.item() == 0 and torch.isfinite(logits.grad).all()
    with pytest.raises(ValueError, match='k'):
        TopScoreDifferenceLoss(k=6)(logits)


def test_tsd_reduction_has_mmdet_avg_factor_semantics():
    """'mean' divides the weighted sum by avg_factor (0 with no valid sample gives 0), 'sum' ignores the
    sample count and refuses an avg_factor, as mmdet's weight_reduce_loss does."""
    torch.manual_seed(7)
    logits, weight = torch.randn(5, 4), torch.rand(5)
    weighted = reference_tsd_per_row(logits.softmax(-1), 3) * weight.double()
    loss = TopScoreDifferenceLoss()
    assert torch.allclose(loss(logits, weight=weight, avg_factor=2.5).double(), weighted.sum() / 2.5, atol=1e-6)
    assert torch.allclose(loss(logits, weight=weight, reduction_override='sum').double(), weighted.sum(),
                          atol=1e-6)
    assert loss(logits, valid_mask=torch.zeros(5, dtype=torch.bool), avg_factor=0).item() == 0
    with pytest.raises(ValueError, match='avg_factor can not be used with reduction="sum"'):
        loss(logits, avg_factor=2.0, reduction_override='sum')


def test_tsd_gradient_step_lowers_top1_and_raises_secondary_probs():
    torch.manual_seed(1)
    k = 3
    logits = torch.randn(8, 10) * 2
    ranked = logits.softmax(-1).argsort(dim=-1, descending=True)
    before = logits.softmax(-1).gather(1, ranked[:, :k])
    logits.requires_grad_(True)
    TopScoreDifferenceLoss(k=k)(logits).backward()
    after = (logits - 0.5 * logits.grad).softmax(-1).gather(1, ranked[:, :k])
    assert (after[:, 0] < before[:, 0]).all()
    assert (after[:, 1:] > before[:, 1:]).all()


def test_tsd_is_fp32_under_bf16_autocast():
    logits = torch.randn(4, 6)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        loss = TopScoreDifferenceLoss()(logits.bfloat16())
    assert loss.dtype == torch.float32


# --------------------------------------------------------------------------------- wrapper build
def test_base_loss_resolves_by_prefix_or_default_scope_and_errors_say_how():
    prefixed = MODELS.build(dict(type='mmdistkd.TolerantLoss',
                                 base_loss=dict(type='mmpretrain.CrossEntropyLoss')))
    assert prefixed.task == 'cls' and type(prefixed.base_loss).__module__.startswith('mmpretrain')
    with DefaultScope.overwrite_default_scope('mmseg'):
        scoped = MODELS.build(dict(type='mmdistkd.TolerantLoss',
                                   base_loss=dict(type='CrossEntropyLoss', avg_non_ignore=True)))
    assert scoped.task == 'seg' and scoped.loss_name == 'loss_tolerant'
    with DefaultScope.overwrite_default_scope(None), pytest.raises(KeyError, match='mmdet.FocalLoss'):
        TolerantLoss(base_loss=dict(type='NoSuchLoss'))


def test_sigmoid_base_requires_use_sigmoid_on_the_wrapper_dict():
    with pytest.raises(ValueError, match='use_sigmoid=True'):
        TolerantLoss(base_loss=focal_cfg())
    with pytest.raises(ValueError, match='use_sigmoid=False'):
        TolerantLoss(base_loss=dict(type='mmdet.CrossEntropyLoss'), use_sigmoid=True)
    assert TolerantLoss(base_loss=focal_cfg(), use_sigmoid=True).task == 'det'
    with pytest.raises(ValueError, match='loss_'):
        TolerantLoss(base_loss=dict(type='mmseg.CrossEntropyLoss', avg_non_ignore=True), loss_name='tolerant')


# ------------------------------------------------------------------------------ mmpretrain ClsHead
def make_cls_samples(targets, soft):
    from mmpretrain.structures import DataSample
    return [DataSample().set_gt_score(t) if soft else DataSample().set_gt_label(t) for t in targets]


@pytest.mark.parametrize('soft', [False, True])
def test_linear_cls_head_with_labels_and_soft_targets(soft):
    from mmpretrain.models import LinearClsHead
    torch.manual_seed(2)
    eta, k, num_classes = 0.7, 3, 5
    head = LinearClsHead(num_classes=num_classes, in_channels=8, loss=dict(
        type='mmdistkd.TolerantLoss', eta=eta, k=k,
        base_loss=dict(type='mmpretrain.CrossEntropyLoss', use_soft=soft, loss_weight=1.0)))
    feats = torch.randn(4, 8)
    targets = (F.softmax(torch.randn(4, num_classes), -1) if soft else torch.randint(0, num_classes, (4,)))
    loss = head.loss((feats,), make_cls_samples(targets, soft))['loss']

    logits = head.fc(feats)
    ce = -(targets * logits.log_softmax(-1)).sum(-1).mean() if soft else F.cross_entropy(logits, targets)
    tsd = reference_tsd_per_row(logits.softmax(-1), k).mean()
    assert torch.allclose(loss.double(), eta * ce.double() + (1 - eta) * tsd, atol=1e-5)

    with torch.autocast('cpu', dtype=torch.bfloat16):
        assert head.loss((feats,), make_cls_samples(targets, soft))['loss'].dtype == torch.float32


# --------------------------------------------------------------------------------- mmseg FCNHead
def test_fcn_head_excludes_ignored_pixels():
    from mmengine.structures import PixelData
    from mmseg.models.decode_heads import FCNHead
    from mmseg.structures import SegDataSample
    torch.manual_seed(3)
    eta, k, num_classes = 0.6, 3, 4
    head = FCNHead(in_channels=8, channels=8, num_convs=1, num_classes=num_classes, loss_decode=[
        dict(type='mmseg.CrossEntropyLoss', loss_weight=1.0, avg_non_ignore=True),
        dict(type='mmdistkd.TolerantLoss', eta=eta, k=k, loss_name='loss_tolerant',
             base_loss=dict(type='mmseg.CrossEntropyLoss', loss_weight=0.4, avg_non_ignore=True))])
    labels = torch.randint(0, num_classes, (2, 1, 6, 6))
    labels[:, :, :2] = 255
    samples = [SegDataSample(gt_sem_seg=PixelData(data=label)) for label in labels]
    logits = torch.randn(2, num_classes, 6, 6)
    losses = head.loss_by_feat(logits, samples)
    assert set(losses) >= {'loss_ce', 'loss_tolerant'}

    valid = labels[:, 0] != 255
    pixels = logits.permute(0, 2, 3, 1)[valid]
    ce = F.cross_entropy(pixels, labels[:, 0][valid])
    tsd = reference_tsd_per_row(pixels.softmax(-1), k).mean()
    # loss_weight None -> the base loss's 0.4 scales the TSD term as well
    expected = 0.4 * (eta * ce.double() + (1 - eta) * tsd)
    assert torch.allclose(losses['loss_tolerant'].double(), expected, atol=1e-5)

    changed = logits.clone()
    changed[:, :, :2] = torch.randn(2, num_classes, 2, 6) * 10  # only ignored pixels change
    assert torch.allclose(head.loss_by_feat(changed, samples)['loss_tolerant'], losses['loss_tolerant'])


# ------------------------------------------------------------------------------- mmdet RetinaHead
def build_retina_head(eta, num_classes=4):
    """As a plain mmdet config builds it: mmdet's registry, default scope 'mmdet', unprefixed base loss."""
    from mmdet.registry import MODELS as MMDET_MODELS
    cfg = dict(
        type='RetinaHead', num_classes=num_classes, in_channels=4, stacked_convs=1, feat_channels=4,
        anchor_generator=dict(type='AnchorGenerator', octave_base_scale=4, scales_per_octave=1,
                              ratios=[0.5, 1.0, 2.0], strides=[8, 16]),
        bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.0] * 4, target_stds=[1.0] * 4),
        loss_cls=dict(type='mmdistkd.TolerantLoss', use_sigmoid=True, eta=eta, base_loss=dict(
            type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0)),
        loss_bbox=dict(type='L1Loss', loss_weight=1.0),
        train_cfg=dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.4, min_pos_iou=0,
                                     ignore_iof_thr=-1),
                       sampler=dict(type='PseudoSampler'), allowed_border=-1, pos_weight=-1, debug=False))
    with DefaultScope.overwrite_default_scope('mmdet'):
        return MMDET_MODELS.build(cfg)


def retina_inputs(num_boxes, num_classes=4, size=32):
    from mmengine.structures import InstanceData
    torch.manual_seed(4)
    metas = [dict(img_shape=(size, size), pad_shape=(size, size), scale_factor=(1.0, 1.0))] * 2
    gts = []
    for _ in metas:
        xy = torch.rand(num_boxes, 2) * size / 2
        gts.append(InstanceData(bboxes=torch.cat([xy, xy + size / 4 + torch.rand(num_boxes, 2) * 8], 1),
                                labels=torch.randint(0, num_classes, (num_boxes,))))
    cls_scores = [torch.randn(2, 3 * num_classes, size // s, size // s, requires_grad=True) for s in (8, 16)]
    bbox_preds = [torch.randn(2, 3 * 4, size // s, size // s) for s in (8, 16)]
    return cls_scores, bbox_preds, gts, metas


def test_retina_head_keeps_sigmoid_outputs_and_tsd_only_touches_positives():
    head = build_retina_head(eta=0.0)  # eta 0: loss_cls is the TSD term alone
    assert head.use_sigmoid_cls and head.cls_out_channels == 4
    cls_scores, bbox_preds, gts, metas = retina_inputs(num_boxes=3)
    losses = head.loss_by_feat(cls_scores, bbox_preds, gts, metas)
    sum(losses['loss_cls']).backward()

    anchors, valid_flags = head.get_anchors([s.shape[-2:] for s in cls_scores], metas, device='cpu')
    labels, _, _, _, avg_factor = head.get_targets(anchors, valid_flags, gts, metas)
    tsd_sum = 0.0
    for score, grad, level_labels in zip(cls_scores, (s.grad for s in cls_scores), labels):
        rows = score.detach().permute(0, 2, 3, 1).reshape(-1, 4)
        grad = grad.permute(0, 2, 3, 1).reshape(-1, 4)
        positive = level_labels.reshape(-1) < 4
        assert (grad[~positive] == 0).all()  # background anchors get no TSD gradient
        assert (grad[positive].abs().sum(-1) > 0).all()
        tsd_sum += reference_tsd_per_row(rows[positive].sigmoid(), 3).sum()
    assert sum(level_labels.lt(4).sum() for level_labels in labels) > 0
    assert math.isclose(sum(losses['loss_cls']).item(), tsd_sum.item() / avg_factor, rel_tol=1e-5)


def test_retina_head_without_positives_gives_zero_tsd():
    head = build_retina_head(eta=0.0)
    cls_scores, bbox_preds, gts, metas = retina_inputs(num_boxes=0)
    losses = head.loss_by_feat(cls_scores, bbox_preds, gts, metas)
    total = sum(losses['loss_cls'])
    total.backward()
    assert total.item() == 0 and all(torch.isfinite(s.grad).all() for s in cls_scores)
    # with the focal part back on, the loss is the focal loss alone, finite
    losses = build_retina_head(eta=0.5).loss_by_feat(cls_scores, bbox_preds, gts, metas)
    assert all(torch.isfinite(loss) for loss in losses['loss_cls'])


# ------------------------------------------------------------------------ two-stage softmax bbox head
def test_softmax_roi_loss_uses_foreground_topk_of_positive_proposals():
    from mmdet.models.roi_heads.bbox_heads import Shared2FCBBoxHead
    torch.manual_seed(5)
    eta, num_classes = 0.6, 4
    with DefaultScope.overwrite_default_scope('mmdet'):  # as an mmdet config builds it (its bbox coder too)
        head = Shared2FCBBoxHead(in_channels=4, fc_out_channels=8, roi_feat_size=2, num_classes=num_classes,
                                 loss_cls=dict(type='mmdistkd.TolerantLoss', eta=eta,
                                               base_loss=dict(type='mmdet.CrossEntropyLoss', loss_weight=1.0)))
    assert head.fc_cls.out_features == num_classes + 1
    cls_score = torch.randn(10, num_classes + 1, requires_grad=True)
    labels = torch.tensor([0, 3, 4, 4, 1, 4, 2, 4, 4, 4])  # 4 = background
    label_weights = torch.ones(10)
    losses = head.loss(cls_score, None, None, labels, label_weights, None, None)

    positive = labels < num_classes
    fg_probs = cls_score.detach().softmax(-1)[positive, :num_classes]  # softmax over C+1, then foreground
    tsd_sum = reference_tsd_per_row(fg_probs, 3).sum()
    ce = F.cross_entropy(cls_score.detach(), labels)
    expected = eta * ce.item() + (1 - eta) * tsd_sum.item() / 10  # avg_factor: the 10 sampled proposals
    assert math.isclose(losses['loss_cls'].item(), expected, rel_tol=1e-5)
    losses['loss_cls'].backward()
    assert torch.isfinite(cls_score.grad).all()


def test_reduction_none_gives_per_sample_losses():
    """OHEM samplers call the RoI loss with reduction_override='none' to rank proposals."""
    torch.manual_seed(6)
    eta = 0.6
    loss = TolerantLoss(base_loss=dict(type='mmdet.CrossEntropyLoss'), eta=eta)
    cls_score = torch.randn(5, 4)
    labels = torch.tensor([0, 3, 1, 3, 2])  # 3 = background
    per_sample = loss(cls_score, labels, reduction_override='none')
    tsd = reference_tsd_per_row(cls_score.softmax(-1)[:, :3], 3) * (labels < 3)
    expected = eta * F.cross_entropy(cls_score, labels, reduction='none').double() + (1 - eta) * tsd
    assert per_sample.shape == (5,) and torch.allclose(per_sample.double(), expected, atol=1e-6)
    with pytest.raises(ValueError, match="reduction 'none'"):  # focal returns (M, C): no per-sample shape
        TolerantLoss(base_loss=focal_cfg(), use_sigmoid=True)(cls_score, labels, reduction_override='none')
