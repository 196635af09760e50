"""TolerantLoss around mmdet's QualityFocalLoss inside the real RTMDet and GFL heads (their (label, IoU score)
targets), against a reference TSD written from docs/tolerant.md on what the head passed to its loss."""
import math

import pytest
import torch
from mmengine.registry import DefaultScope
from mmengine.structures import InstanceData

from mmdistkd.models.losses.tolerant import TolerantLoss

NUM_CLASSES = 4


def reference_tsd(probs, k=3):
    """Per-row TSD in float64: explicit descending sort, top-1 minus the mean of ranks 2..k."""
    ranked = probs.double().sort(dim=-1, descending=True).values
    return ranked[:, 0] - ranked[:, 1:k].sum(-1) / (k - 1)


def qfl_cfg(**kwargs):
    return dict(type='QualityFocalLoss', use_sigmoid=True, beta=2.0, loss_weight=1.0, **kwargs)


def tolerant_cfg(eta):
    return dict(type='mmdistkd.TolerantLoss', use_sigmoid=True, eta=eta, base_loss=qfl_cfg())


def build_head(kind, loss_cls):
    """A tiny RTMDet or GFL head as their mmdet configs build it (registry, scope 'mmdet')."""
    from mmdet.registry import MODELS as MMDET_MODELS
    common = dict(num_classes=NUM_CLASSES, in_channels=4, feat_channels=4, stacked_convs=1, loss_cls=loss_cls)
    if kind == 'rtmdet':
        cfg = dict(type='RTMDetSepBNHead', with_objectness=False, norm_cfg=dict(type='BN'),
                   anchor_generator=dict(type='MlvlPointGenerator', offset=0, strides=[8, 16]),
                   bbox_coder=dict(type='DistancePointBBoxCoder'), loss_bbox=dict(type='GIoULoss', loss_weight=2.0),
                   train_cfg=dict(assigner=dict(type='DynamicSoftLabelAssigner', topk=13), allowed_border=-1,
                                  pos_weight=-1, debug=False), **common)
    else:
        cfg = dict(type='GFLHead', norm_cfg=dict(type='GN', num_groups=2, requires_grad=True),
                   anchor_generator=dict(type='AnchorGenerator', ratios=[1.0], octave_base_scale=2,
                                         scales_per_octave=1, strides=[8, 16]),
                   loss_dfl=dict(type='DistributionFocalLoss', loss_weight=0.25), reg_max=16,
                   loss_bbox=dict(type='GIoULoss', loss_weight=2.0),
                   train_cfg=dict(assigner=dict(type='ATSSAssigner', topk=9), allowed_border=-1, pos_weight=-1,
                                  debug=False), **common)
    with DefaultScope.overwrite_default_scope('mmdet'):
        return MMDET_MODELS.build(cfg)


def head_inputs(kind, num_boxes, size=64):
    """Random class scores and box predictions of two levels, boxes inside a ``size`` square image."""
    torch.manual_seed(3)
    metas = [dict(img_shape=(size, size), pad_shape=(size, size), scale_factor=(1.0, 1.0))] * 2
    gts = []
    for _ in metas:
        xy = torch.rand(num_boxes, 2) * size / 2
        gts.append(InstanceData(bboxes=torch.cat([xy, xy + size / 4 + torch.rand(num_boxes, 2) * 8], 1),
                                labels=torch.randint(0, NUM_CLASSES, (num_boxes,))))
    sizes = [size // s for s in (8, 16)]
    cls_scores = [torch.randn(2, NUM_CLASSES, n, n, requires_grad=True) for n in sizes]
    if kind == 'rtmdet':  # distances to the box sides, in pixels
        bbox_preds = [torch.rand(2, 4, n, n) * 16 + 1 for n in sizes]
    else:  # GFL: a distribution over reg_max + 1 bins per side
        bbox_preds = [torch.randn(2, 4 * 17, n, n) for n in sizes]
    return cls_scores, bbox_preds, gts, metas


def loss_calls(head, inputs):
    """Runs the head's loss and returns it with every call its classification loss received."""
    calls = []
    handle = head.loss_cls.register_forward_pre_hook(
        lambda module, args, kwargs: calls.append((args, kwargs)), with_kwargs=True)
    losses = head.loss_by_feat(*inputs)
    handle.remove()
    return losses, calls


def reference_tsd_of_call(args, kwargs):
    """The sum of weight * TSD over the positives of one loss_cls call, divided by its avg_factor (mmdet's
    weight_reduce_loss adds eps to it)."""
    pred, (labels, _) = args[0], args[1]
    weight = kwargs['weight'] if 'weight' in kwargs else args[2]
    positive = (labels >= 0) & (labels < NUM_CLASSES)
    total = (reference_tsd(pred.detach()[positive].sigmoid()) * weight[positive].double()).sum()
    return total / (kwargs['avg_factor'] + torch.finfo(torch.float32).eps)


def rtmdet_cls_avg_factor(calls):
    """RTMDet divides each level's class loss by the sum of all levels' assign metrics (at least 1)."""
    return max(sum(float(args[1][1].sum()) for args, _ in calls), 1.0)


@pytest.mark.parametrize('kind', ['rtmdet', 'gfl'])
def test_tsd_on_positives_normalised_as_the_heads_quality_focal_loss(kind):
    inputs = head_inputs(kind, num_boxes=3)
    eta = 0.6
    tolerant = build_head(kind, tolerant_cfg(eta))
    losses, calls = loss_calls(tolerant, inputs)
    assert all(isinstance(args[1], tuple) for args, _ in calls), 'the head passes (labels, IoU scores)'
    assert all(kwargs['avg_factor'] == 1.0 for _, kwargs in calls) == (kind == 'rtmdet')
    outside = rtmdet_cls_avg_factor(calls) if kind == 'rtmdet' else 1.0
    tsd = sum(reference_tsd_of_call(*call) for call in calls) / outside
    positives = sum(int((args[1][0] < NUM_CLASSES).sum()) for args, _ in calls)
    assert positives > 0 and tsd > 0

    plain = build_head(kind, qfl_cfg())
    qfl = sum(plain.loss_by_feat(*inputs)['loss_cls']).item()
    expected = eta * qfl + (1 - eta) * tsd.item()
    assert math.isclose(sum(losses['loss_cls']).item(), expected, rel_tol=1e-5)

    # TSD alone (eta 0): background positions get no gradient, every positive one does.
    for score in inputs[0]:
        score.grad = None
    losses, calls = loss_calls(build_head(kind, tolerant_cfg(0.0)), inputs)
    sum(losses['loss_cls']).backward()
    for score, (args, _) in zip(inputs[0], calls):
        grad = score.grad.permute(0, 2, 3, 1).reshape(-1, NUM_CLASSES)
        positive = args[1][0] < NUM_CLASSES
        assert (grad[~positive] == 0).all() and (grad[positive].abs().sum(-1) > 0).all()


@pytest.mark.parametrize('kind', ['rtmdet', 'gfl'])
def test_no_positives_give_zero_tsd_and_no_nan(kind):
    inputs = head_inputs(kind, num_boxes=0)
    losses, _ = loss_calls(build_head(kind, tolerant_cfg(0.0)), inputs)
    total = sum(losses['loss_cls'])
    total.backward()
    assert total.item() == 0 and all(torch.isfinite(s.grad).all() for s in inputs[0])
    eta = 0.6
    tolerant = sum(build_head(kind, tolerant_cfg(eta)).loss_by_feat(*inputs)['loss_cls'])
    qfl = sum(build_head(kind, qfl_cfg()).loss_by_feat(*inputs)['loss_cls'])
    assert torch.isfinite(tolerant) and math.isclose(tolerant.item(), eta * qfl.item(), rel_tol=1e-6)


def test_score_targets_and_activated_quality_focal_loss():
    """QualityFocalLoss also takes an (M, C) soft-score target, and probabilities with activated=True."""
    torch.manual_seed(4)
    eta = 0.7
    logits = torch.randn(6, NUM_CLASSES)
    labels = torch.tensor([0, 4, 2, 4, 3, 4])  # 4 = background
    scores = torch.rand(6)
    score_target = torch.zeros(6, NUM_CLASSES)
    positive = labels < NUM_CLASSES
    score_target[positive, labels[positive]] = scores[positive]
    avg_factor = 5.0  # as the heads pass it: both parts divide by it
    expected_tsd = reference_tsd(logits[positive].sigmoid()).sum() / avg_factor

    for activated, pred in ((False, logits), (True, logits.sigmoid())):
        base = dict(type='mmdet.QualityFocalLoss', use_sigmoid=True, activated=activated)
        loss = TolerantLoss(base_loss=base, eta=eta, use_sigmoid=True)
        for target in ((labels, scores), score_target):
            got = loss(pred, target, avg_factor=avg_factor)
            expected = eta * loss.base_loss(pred, target, avg_factor=avg_factor) + (1 - eta) * expected_tsd
            assert torch.allclose(got.double(), expected.double(), atol=1e-6)
