"""Distilling Mask2Former: the per-pixel class scores that QuerySegLogScores records from a Mask2Former head
(teacher and student), checked against a hand computation from the head's raw query outputs, captured here by
a hook of the test's own; and one step of the real cross-family config (Mask2Former Swin-B teacher ->
DeepLabV3-R18 student), whose DIST value is checked against a float64 reference written here; and the tolerant
Mask2Former teacher's query-class loss in a real (tiny) head."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from torch import nn

import mmdistkd  # noqa: F401
from mmdistkd.analysis.synthetic import fit_preprocessor_to_size, synthetic_batch
from mmdistkd.models.algorithms.submodel import build_submodel
from mmdistkd.models.losses import TolerantLoss
from mmdistkd.models.recorders import QuerySegLogScores, RecorderManager
from mmdistkd.registry import MODELS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CROSS_FAMILY = osp.join(REPO, 'configs', 'dist', 'dist_mask2former_swin-b_deeplabv3_r18_cityscapes.py')
NUM_CLASSES = 19  # Cityscapes
IGNORE = 255
MIN_SCORE = 1e-6  # QuerySegLogScores' default
FP32 = dict(atol=1e-6, rtol=1e-5)  # a float32 record against a float64 hand computation


def hand_scores(cls_scores, mask_preds):
    """sum over queries of P(class c | query) * P(pixel in query's mask), in float64, query by query."""
    class_probs = cls_scores.double().softmax(dim=-1)[..., :-1]  # "no object" (the last class) left out
    masks = mask_preds.double().sigmoid()
    scores = 0
    for query in range(cls_scores.shape[1]):
        scores = scores + class_probs[:, query, :, None, None] * masks[:, query, None]
    return scores


def keep_outputs(module, kept):
    """A forward hook of this test's own that keeps the module's outputs."""
    return module.register_forward_hook(lambda mod, args, output: kept.append(output))


def pearson(a, b):
    """Pearson correlation of the rows of two float64 matrices."""
    a, b = a - a.mean(dim=1, keepdim=True), b - b.mean(dim=1, keepdim=True)
    return (a * b).sum(dim=1) / (a.norm(dim=1) * b.norm(dim=1))


def reference_dist(probs_S, probs_T):
    """DIST (tau 1, weights 1) of (samples, classes) probabilities: inter over rows, intra over columns."""
    return (1 - pearson(probs_S, probs_T).mean()) + (1 - pearson(probs_S.T, probs_T.T).mean())


# --- The recorder on tiny heads ----------------------------------------------------------------------------

class QueryHead(nn.Module):
    """Returns fixed per-layer outputs, as a Mask2Former head's forward does."""

    def __init__(self, outputs):
        super().__init__()
        self.outputs = outputs

    def forward(self, x):
        return self.outputs


def record(head, min_score=MIN_SCORE):
    recorders = RecorderManager(dict(scores=dict(type='mmdistkd.QuerySegLogScores', source='head',
                                                 min_score=min_score)))
    model = nn.Module()
    model.head = head
    recorders.prepare_from_model(model, role='teacher')
    with recorders:
        model.head(None)
    return recorders.get_recorder('scores').get_record_data()


def test_record_is_the_log_of_the_last_layers_scores_and_its_softmax_the_normalised_scores():
    torch.manual_seed(0)
    layers = [(torch.randn(2, 5, 4 + 1), torch.randn(2, 5, 3, 6) * 3) for _ in range(3)]
    record_data = record(QueryHead(([c for c, _ in layers], [m for _, m in layers])))
    scores = hand_scores(*layers[-1])
    assert record_data.dtype == torch.float32 and record_data.shape == (2, 4, 3, 6)
    torch.testing.assert_close(record_data.double(), scores.clamp(min=MIN_SCORE).log(), **FP32)
    torch.testing.assert_close(record_data.double().softmax(dim=1), scores / scores.sum(dim=1, keepdim=True), **FP32)


def test_record_is_computed_in_float32_under_autocast():
    """A teacher under autocast (SingleTeacherDistill.teacher_autocast) still gets float32 scores: autocast would
    run the einsum in bfloat16."""
    torch.manual_seed(1)
    cls_scores, mask_preds = torch.randn(2, 5, 4 + 1), torch.randn(2, 5, 3, 6) * 3
    with torch.autocast(device_type='cpu', dtype=torch.bfloat16):
        record_data = record(QueryHead(([cls_scores], [mask_preds])))
    assert record_data.dtype == torch.float32
    torch.testing.assert_close(record_data.double(), hand_scores(cls_scores, mask_preds).log(), **FP32)


def test_zero_scores_give_a_finite_record_and_gradient():
    cls_scores = torch.randn(1, 3, 4 + 1, requires_grad=True)
    mask_preds = torch.full((1, 3, 2, 2), -200.0).requires_grad_()  # sigmoid underflows to 0 in float32
    mask_preds.data[0, 0, 0, 0] = 0.0
    record_data = record(QueryHead(([cls_scores], [mask_preds])))
    assert torch.isfinite(record_data).all()
    assert torch.equal(record_data[0, :, 1, 1], torch.full((4, ), MIN_SCORE).log())
    record_data.softmax(dim=1).square().sum().backward()
    assert torch.isfinite(cls_scores.grad).all() and torch.isfinite(mask_preds.grad).all()


def test_head_without_query_outputs_and_a_bad_floor_are_refused():
    with pytest.raises(TypeError, match=r"QuerySegLogScores records a Mask2Former-like head.*'head' returned a "
                                        r'Tensor\. Record its logits with ModuleOutputs instead'):
        record(QueryHead(torch.randn(1, 4, 2, 2)))
    with pytest.raises(ValueError, match='min_score must be positive'):
        QuerySegLogScores(min_score=0.0)


# --- A Mask2Former student ------------------------------------------------------------------------------

def tiny_mask2former():
    """mmseg's Mask2Former R50 Cityscapes config narrowed to a ResNet-18, 32 channels, 8 queries, 2 decoder
    layers, one pixel-decoder layer and 64 sampled points."""
    attention = dict(embed_dims=32, num_heads=4)
    ffn = dict(embed_dims=32, feedforward_channels=64)
    return dict(
        cfg_path='mmseg::mask2former/mask2former_r50_8xb2-90k_cityscapes-512x1024.py',
        backbone=dict(depth=18, norm_cfg=dict(type='BN', requires_grad=False), init_cfg=None),
        decode_head=dict(
            in_channels=[64, 128, 256, 512], feat_channels=32, out_channels=32, num_queries=8,
            pixel_decoder=dict(encoder=dict(num_layers=1, layer_cfg=dict(self_attn_cfg=attention, ffn_cfg=ffn)),
                               positional_encoding=dict(num_feats=16)),
            positional_encoding=dict(num_feats=16),
            transformer_decoder=dict(num_layers=2, layer_cfg=dict(self_attn_cfg=attention,
                                                                  cross_attn_cfg=attention, ffn_cfg=ffn)),
            train_cfg=dict(num_points=64)))


def test_student_records_the_scores_of_its_loss_forward_with_their_gradient():
    torch.manual_seed(0)
    student = build_submodel(tiny_mask2former(), 'student').train()
    fit_preprocessor_to_size(student.data_preprocessor, 32, 64)
    data = student.data_preprocessor(synthetic_batch('seg', 2, 32, 64, NUM_CLASSES), True)
    recorders = RecorderManager(dict(scores=dict(type='mmdistkd.QuerySegLogScores', source='decode_head')))
    recorders.prepare_from_model(student, role='student')
    head_outputs = []
    hook = keep_outputs(student.decode_head, head_outputs)
    try:
        with recorders:
            losses = student.loss(**data)
    finally:
        hook.remove()
    assert 'decode.loss_cls' in losses  # the head ran in its loss, once
    records = recorders.get_recorder('scores').records
    assert len(records) == len(head_outputs) == 1
    cls_scores, mask_preds = head_outputs[0][0][-1], head_outputs[0][1][-1]
    assert records[0].shape == (2, NUM_CLASSES, 8, 16)  # masks at 1/4 of the 32x64 input
    torch.testing.assert_close(records[0].double(), hand_scores(cls_scores, mask_preds).clamp(min=MIN_SCORE).log(),
                               **FP32)
    # A loss on the record trains the student's class and mask branches.
    head = student.decode_head
    grads = torch.autograd.grad(records[0].softmax(dim=1).square().sum(),
                                [head.cls_embed.weight, head.mask_embed[0].weight])
    assert all(torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads)


# --- The cross-family config: Mask2Former Swin-B -> DeepLabV3-R18 ---------------------------------------

def test_cross_family_step_distils_the_teachers_hand_computed_scores_resized_to_the_students_logits():
    cfg = Config.fromfile(CROSS_FAMILY)
    cfg.model.teacher_ckpt = None
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmengine')):
        model = MODELS.build(cfg.model)
    model.train()
    height, width = 32, 64
    fit_preprocessor_to_size(model.data_preprocessor, height, width)
    data = model.data_preprocessor(synthetic_batch('seg', 2, height, width, NUM_CLASSES), True)
    teacher_outputs, student_logits = [], []
    hooks = [keep_outputs(model.teacher.decode_head, teacher_outputs),
             keep_outputs(model.student.decode_head.conv_seg, student_logits)]
    try:
        # The training step in its parts (model.loss runs them in this order), to read the record before the
        # loss releases it.
        model.record_teacher(**data)
        student_losses = model.record_student(**data)
    finally:
        for hook in hooks:
            hook.remove()
    assert len(teacher_outputs) == len(student_logits) == 1

    # The teacher's record: the scores computed by hand from its head's raw last-layer outputs (1/4 input).
    cls_scores, mask_preds = teacher_outputs[0][0][-1], teacher_outputs[0][1][-1]
    assert cls_scores.shape == (2, 100, NUM_CLASSES + 1) and mask_preds.shape == (2, 100, height // 4, width // 4)
    log_scores = hand_scores(cls_scores, mask_preds).clamp(min=MIN_SCORE).log()
    recorded = model.distiller.teacher_recorders.get_recorder('scores').get_record_data()
    torch.testing.assert_close(recorded.double(), log_scores, **FP32)
    loss = model.distiller.compute_distill_losses(data['data_samples'])['loss_dist_decode']

    # DIST: the student's logits are at 1/8. Halving by bilinear resizing with half-pixel centres averages
    # each 2x2 block, which is how the teacher's log scores are resized here.
    logits_S = student_logits[0].double()
    assert logits_S.shape == (2, NUM_CLASSES, height // 8, width // 8)
    num_images, classes, small_h, small_w = logits_S.shape
    resized_T = log_scores.reshape(num_images, classes, small_h, 2, small_w, 2).mean(dim=(3, 5))
    # Pixels whose label (nearest: the top-left input pixel of each 8x8 block) is 255 are left out.
    labels = torch.stack([sample.gt_sem_seg.data[0] for sample in data['data_samples']])
    valid = (labels[:, ::8, ::8] != IGNORE).reshape(-1)
    assert 0 < valid.sum() < valid.numel()
    rows = [logits.permute(0, 2, 3, 1).reshape(-1, classes)[valid].softmax(dim=1) for logits in (logits_S, resized_T)]
    expected = reference_dist(*rows)
    torch.testing.assert_close(loss.double(), expected, atol=1e-5, rtol=1e-5)
    # The distillation term trains the student's decode head, next to its own losses.
    assert all(torch.isfinite(value) for value in student_losses.values())
    grad, = torch.autograd.grad(loss, model.student.decode_head.conv_seg.weight)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0


# --- A tolerant Mask2Former teacher ---------------------------------------------------------------------

def test_tolerant_query_class_loss_is_cross_entropy_plus_tsd_on_the_matched_queries():
    """The tolerant config's loss_cls in a (tiny) Mask2Former: what the head passes it is mmdet's detection call
    (scores of every query over 19 classes + "no object", query labels with 19 for "no object", class-weighted
    avg_factor); the value is eta * weighted cross-entropy + (1 - eta) * TSD over the matched queries only, both
    divided by that avg_factor and scaled by the base loss weight, computed here in float64."""
    tolerant = Config.fromfile(osp.join(REPO, 'configs', 'tolerant', 'tolerant_mask2former_swin-b_cityscapes.py'))
    model_cfg = tiny_mask2former()
    model_cfg['decode_head']['loss_cls'] = dict(_delete_=True, **tolerant.model.decode_head.loss_cls)
    torch.manual_seed(0)
    segmentor = build_submodel(model_cfg, 'teacher').train()
    fit_preprocessor_to_size(segmentor.data_preprocessor, 32, 64)
    # 3 classes in the images: 3 of each image's 8 queries are matched, 5 are "no object".
    data = segmentor.data_preprocessor(synthetic_batch('seg', 2, 32, 64, 3), True)
    loss_cls = segmentor.decode_head.loss_cls
    calls = []
    hook = loss_cls.register_forward_hook(
        lambda module, args, kwargs, output: calls.append((args, kwargs, output)), with_kwargs=True)
    try:
        losses = segmentor.loss(**data)
    finally:
        hook.remove()
    assert len(calls) == 3  # one per decoder output: the query features before the 2 layers, and after each
    (scores, labels, label_weights), kwargs, value = calls[-1]
    assert scores.shape == (2 * 8, NUM_CLASSES + 1) and labels.shape == (2 * 8, )
    torch.testing.assert_close(losses['decode.loss_cls'], value)

    class_weight = torch.tensor(tolerant.class_weight, dtype=torch.float64)
    probs = scores.double().softmax(dim=-1)
    cross_entropy = -probs[torch.arange(len(labels)), labels].log() * class_weight[labels] * label_weights
    matched = labels < NUM_CLASSES
    assert matched.sum() == 2 * 3
    top = probs[matched, :NUM_CLASSES].topk(loss_cls.k, dim=-1).values
    tsd = (top[:, 0] - top[:, 1:].mean(dim=-1)) * label_weights[matched]
    avg_factor = kwargs['avg_factor']
    torch.testing.assert_close(avg_factor.double(), class_weight[labels].sum())
    expected = 2.0 * (loss_cls.eta * cross_entropy.sum() + (1 - loss_cls.eta) * tsd.sum()) / avg_factor.double()
    torch.testing.assert_close(value.double(), expected, atol=1e-6, rtol=1e-5)


def test_tolerant_wrapper_refuses_class_weights_other_than_its_base_losss():
    with pytest.raises(ValueError, match=r'TolerantLoss\(class_weight=\[1.0, 1.0\]\) but its base loss '
                                         r'CrossEntropyLoss has class_weight=\[1.0, 0.1\]: give both the same'):
        TolerantLoss(class_weight=[1.0, 1.0],
                     base_loss=dict(type='mmdet.CrossEntropyLoss', use_sigmoid=False, class_weight=[1.0, 0.1]))
