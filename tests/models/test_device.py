"""Every tensor mmdistkd creates takes its device from its inputs: the registered losses, the recorders, the
teacher-forward strategies and whole distillation steps, forward and backward, without a GPU.

Two checks, each of which fails on a tensor created on the CPU inside mmdistkd:

- ``meta``: inputs, parameters and buffers on PyTorch's ``meta`` device (shapes without data). A CPU tensor of
  more than one element that meets a meta tensor raises ("Tensor on device cpu is not on the expected device
  meta"). Covers: ``KLDivergence`` (softmax, sigmoid, levels, every reduction), ``DISTLoss`` (softmax, dense,
  both sigmoid modes, levels, ``resize_teacher``; without ignored pixels), ``FGDLoss`` (boxes, an image without
  boxes, an align conv), ``TopScoreDifferenceLoss``, ``TolerantLoss`` around mmpretrain's, mmseg's and mmdet's
  cross-entropy and mmdet's focal and quality focal losses, MMRazor's losses (``ABLoss``, ``ATLoss``, both RKD
  losses, ``ChannelWiseDivergence``, ``CrossEntropyLoss``, ``DKDLoss`` and ``WSLD`` with class scores,
  ``FBKDLoss``, ``FTLoss``, ``KDSoftCELoss``, ``L1Loss``, ``L2Loss``, ``MGDLoss``, ``OFDLoss``, ``PKDLoss`` and
  DAFL's three), the CKA helpers, ``pearson_relations``, every recorder (module, method and function outputs
  and inputs, ``Parameter``, ``QuerySegLogScores``), the ``'tensor'``, ``'extract_feat'`` and
  ``'seg_decode_aux'`` strategies, and a whole KD and DIST training step of mmpretrain classifiers (loss,
  backward, optimizer step).
- ``creations`` (``CpuTensorCreations``): on the CPU, every call of a tensor factory (``torch.zeros``,
  ``ones``, ``arange``, ``full``, ``empty``, ``tensor``, ``as_tensor``, ``rand*``, ...) without ``device=``
  whose caller is a file under ``mmdistkd/`` is recorded, and the test asserts there is none. It also catches
  0-dim CPU tensors, which meta lets through as scalars. It runs every case above again, plus what meta cannot
  run because it needs values: ``DPKLoss`` (its prior ratio is a Python float, its token counts are read from
  the mask), ``DISTLoss`` excluding ignored pixels (boolean indexing), ``CRDLoss`` and ``DKDLoss`` / ``WSLD``
  with class indices (they check the indices' range on the host), the ``'roi_on_student_rois'`` strategy
  and a two-stage detector's step (mmcv's RoIAlign has no meta kernel), and the demo DIST segmentation,
  DPK + FGD RetinaNet and DPK classification steps (mmseg's and mmdet's losses read values: assigners, ignore
  masks). A loss is built outside this check: buffers made in ``__init__`` move with the module.

``test_a_cpu_tensor_created_in_a_loss_fails_both_checks`` shows each check failing on a loss that creates
``torch.ones(classes)``. A registered loss, recorder or teacher-forward strategy without a case here fails
``test_every_registered_loss_and_recorder_has_a_case``.
"""
import contextlib
import os.path as osp
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.structures import InstanceData, PixelData
from mmseg.structures import SegDataSample
from torch import nn
from torch.overrides import TorchFunctionMode

import mmdistkd
from mmdistkd.analysis.synthetic import fit_preprocessor_to_size, synthetic_batch_for
from mmdistkd.models.algorithms.teacher_forward import build_teacher_forward
from mmdistkd.models.losses import Fp32Loss, KLDivergence, kd
from mmdistkd.models.losses.cka import batch_unbiased_cka, token_linear_cka
from mmdistkd.models.losses.relations import pearson_relations
from mmdistkd.models.recorders import RecorderManager
from mmdistkd.models.recorders.recorders import BaseRecorder
from mmdistkd.registry import MODELS, TEACHER_FORWARDS, build_in_mmdistkd_scope
from mmdistkd.testing import REPO

from test_single_teacher_distill import batch, build, classifier, kd_distiller
from test_teacher_forward import dist_distiller, tiny_faster_rcnn, tiny_segmentor

PACKAGE_DIR = osp.dirname(mmdistkd.__file__) + osp.sep


@pytest.fixture(autouse=True)
def mmdistkd_scope():
    """Losses and recorders are built by their bare names, as a distiller builds them: in mmdistkd's scope (a
    Runner of an earlier test leaves its own default scope behind)."""
    with DefaultScope.overwrite_default_scope('mmdistkd'):
        yield
TORCH_OVERRIDES = torch.overrides.__file__  # its dispatch frames stand between a caller and the mode
FACTORIES = {getattr(torch, name) for name in (
    'zeros', 'ones', 'empty', 'full', 'arange', 'range', 'linspace', 'logspace', 'eye', 'tensor', 'as_tensor',
    'scalar_tensor', 'rand', 'randn', 'randint', 'randperm', 'normal', 'empty_strided', 'from_numpy')}


class CpuTensorCreations(TorchFunctionMode):
    """Within the ``with`` block, ``found`` lists (as ``path:line: torch.name``) every tensor factory called
    without ``device=`` directly from a file under mmdistkd/: one that torch (e.g. a module's parameters, moved
    later) or an upstream library (mmdet, mmseg, ...) calls is not ours; ``as_tensor`` of a tensor keeps its
    device."""

    def __init__(self):
        super().__init__()
        self.found = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        keeps_device = func is torch.as_tensor and args and torch.is_tensor(args[0])
        if func in FACTORIES and kwargs.get('device') is None and not keeps_device:
            frame = sys._getframe(1)
            while frame.f_code.co_filename == TORCH_OVERRIDES:
                frame = frame.f_back
            if frame.f_code.co_filename.startswith(PACKAGE_DIR):
                where = osp.relpath(frame.f_code.co_filename, osp.dirname(PACKAGE_DIR.rstrip(osp.sep)))
                self.found.append(f'{where}:{frame.f_lineno}: torch.{func.__name__}')
        return func(*args, **kwargs)


@contextlib.contextmanager
def no_cpu_tensor_creations():
    """Fails, naming each place, when mmdistkd code in the block creates a tensor without ``device=``."""
    with CpuTensorCreations() as creations:
        yield
    assert not creations.found, 'tensors created without device= in mmdistkd: ' + ', '.join(creations.found)


def on(device, value):
    """``value`` (tensors, or lists / tuples of them) on ``device``; floating tensors become leaves requiring
    grad, so that backward reaches them."""
    if isinstance(value, (list, tuple)):
        return type(value)(on(device, v) for v in value)
    if not torch.is_tensor(value):
        return value
    value = value.detach().to(device)
    return value.requires_grad_(value.is_floating_point())


def float_leaves(value):
    if isinstance(value, (list, tuple)):
        return [leaf for v in value for leaf in float_leaves(v)]
    return [value] if torch.is_tensor(value) and value.requires_grad else []


def total(output):
    """The scalar to backpropagate from a loss's output (a tensor, a dict with ``'loss'``, or a list)."""
    if isinstance(output, dict):
        return output['loss']
    if isinstance(output, (list, tuple)):
        return sum(level.sum() for level in output)
    return output.sum()


# ------------------------------------------------------------------------------------------ input makers
def randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def student_teacher(*shape, teacher_shape=None, names=('preds_S', 'preds_T')):
    """Random student and teacher inputs under the loss's argument ``names``."""
    return {names[0]: randn(*shape), names[1]: randn(*(teacher_shape or shape), seed=1)}


def dist_inputs(*shape, teacher_shape=None):
    return student_teacher(*shape, teacher_shape=teacher_shape, names=('logits_S', 'logits_T'))


def features(*shape, teacher_shape=None):
    """``s_feature`` / ``t_feature``, the argument names of MMRazor's feature losses."""
    return student_teacher(*shape, teacher_shape=teacher_shape, names=('s_feature', 't_feature'))


def dist_levels():
    return dict(logits_S=[randn(2, 6, 4, 4), randn(2, 6, 2, 2)], logits_T=[randn(2, 6, 4, 4, seed=1),
                                                                          randn(2, 6, 2, 2, seed=1)])


def seg_samples(num_classes, height, width):
    """Two mmseg data samples whose top rows are labelled 255 (ignored)."""
    samples = []
    for seed in range(2):
        labels = torch.randint(0, num_classes, (1, height, width), generator=torch.Generator().manual_seed(seed))
        labels[:, :2] = 255
        samples.append(SegDataSample(gt_sem_seg=PixelData(data=labels)))
    return samples


def det_samples(*boxes_per_image, frame=(32, 32)):
    """mmdet-like data samples with the given boxes (x1, y1, x2, y2 in a 32 x 32 frame)."""
    from mmdet.structures import DetDataSample
    return [DetDataSample(metainfo=dict(batch_input_shape=frame, img_shape=frame),
                          gt_instances=InstanceData(bboxes=torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)))
            for boxes in boxes_per_image]


def fgd_inputs(student_channels=8):
    return dict(preds_S=randn(2, student_channels, 8, 8), preds_T=randn(2, 8, 8, 8, seed=1),
                data_samples=det_samples([[2, 3, 12, 20], [16, 16, 30, 31]], []))


def head_inputs(*score_shape, target):
    return dict(pred=randn(*score_shape), target=target)


def labels(*shape, high, seed=2):
    return torch.randint(0, high, shape, generator=torch.Generator().manual_seed(seed))


def qfl_target():
    """QualityFocalLoss's (labels, IoU scores): two positives of 4 classes, label 4 is the background."""
    return labels(6, high=5), torch.rand(6, generator=torch.Generator().manual_seed(3))


def tolerant(base_loss, **kwargs):
    return dict(base_loss=base_loss, **kwargs)


def with_labels(inputs, label_form, classes=6):
    """``inputs`` of (4, ``classes``) logits with ``gt_labels`` as class indices or as mixup-like class scores."""
    gt_labels = labels(4, high=classes) if label_form == 'indices' else randn(4, classes, seed=2).softmax(1)
    return inputs | dict(gt_labels=gt_labels)


def crd_inputs(contrasted):
    """(3, 8) embeddings and data samples with tensor ``sample_idx`` (as ``PackCRDClsInputs`` packs them) and, if
    ``contrasted``, ``contrast_sample_idxs`` (1 + neg_num = 6 bank indices)."""
    from mmengine.structures import BaseDataElement
    samples = [BaseDataElement(sample_idx=torch.tensor(i)) for i in (0, 5, 9)]
    if contrasted:
        for sample, row in zip(samples, labels(3, 6, high=12).tolist()):
            sample.contrast_sample_idxs = torch.tensor([sample.sample_idx.item(), *row[1:]])
    return dict(s_feats=randn(3, 8), t_feats=randn(3, 8, seed=1), data_samples=samples)


def fbkd_inputs():
    """The FBKD connectors' tuples for (2, 4, 3, 3) features, the spatial and channel masks positive."""
    n, c, h, w = 2, 4, 3, 3
    student = (randn(n, 1, h, w).abs(), randn(n, c, 1, 1).abs(), randn(n, c), randn(n, 1, h, w), randn(n, c, h, w),
               randn(n, c, h, w))
    teacher = (randn(n, 1, h, w, seed=1).abs(), randn(n, c, 1, 1, seed=1).abs(), randn(n, 1, h, w, seed=1),
               randn(n, c, h, w, seed=1), randn(n, c, h, w, seed=2))
    return dict(s_input=student, t_input=teacher)


# (registered loss, constructor arguments, its inputs, whether meta can run it)
LOSS_CASES = {
    'kd': ('KLDivergence', dict(tau=2.0), lambda: student_teacher(4, 10), True),
    'kd_dense_sigmoid_sum': ('KLDivergence', dict(sigmoid=True, reduction='sum'),
                             lambda: student_teacher(2, 6, 4, 4), True),
    'kd_levels_none': ('KLDivergence', dict(reduction='none'),
                       lambda: dict(preds_S=[randn(2, 3, 4, 4), randn(2, 3, 2, 2)],
                                    preds_T=[randn(2, 3, 4, 4, seed=1), randn(2, 3, 2, 2, seed=1)]), True),
    'kd_mean': ('KLDivergence', dict(reduction='mean'), lambda: student_teacher(4, 10), True),
    'dist': ('DISTLoss', dict(tau=4.0), lambda: dist_inputs(4, 10), True),
    'dist_dense': ('DISTLoss', dict(), lambda: dist_inputs(2, 5, 6, 6), True),
    'dist_sigmoid_anchor_levels': ('DISTLoss', dict(mode='sigmoid_anchor', num_classes=3), dist_levels, True),
    'dist_sigmoid_flat': ('DISTLoss', dict(mode='sigmoid_flat'), lambda: dist_inputs(2, 6, 4, 4), True),
    'dist_resize_teacher': ('DISTLoss', dict(resize_teacher=True),
                            lambda: dist_inputs(2, 5, 4, 4, teacher_shape=(2, 5, 8, 8)), True),
    'dist_chunked': ('DISTLoss', dict(), lambda: dist_inputs(64, 5, 64, 40), True),  # several chunks per image
    'dist_ignored_pixels': ('DISTLoss', dict(),
                            lambda: dict(dist_inputs(2, 5, 6, 6), data_samples=seg_samples(5, 12, 12)), False),
    'fgd': ('FGDLoss', dict(in_channels=8), fgd_inputs, True),
    'fgd_align': ('FGDLoss', dict(in_channels=8, student_channels=4), lambda: fgd_inputs(4), True),
    'dpk_tokens': ('DPKLoss', dict(student_channels=4, teacher_channels=8, embed_dims=16, encoder_depth=1,
                                   num_heads=2, decoder_depth=1, min_tokens=1),
                   lambda: student_teacher(2, 8, 4, 4) | dict(preds_S=randn(2, 4, 2, 2)), False),
    'dpk_authors_cifar_l1': ('DPKLoss', dict(student_channels=8, teacher_channels=8, embed_dims=16, encoder_depth=1,
                                             num_heads=2, decoder_depth=1, pi_from='authors_cifar', patch_size=2,
                                             feature_loss='l1', min_tokens=1),
                             lambda: student_teacher(4, 8, 6, 6), False),
    'dpk_fgd': ('DPKLoss', dict(student_channels=8, teacher_channels=8, embed_dims=16, encoder_depth=1, num_heads=2,
                                decoder_depth=1, min_tokens=1, feature_loss=dict(type='FGDLoss', in_channels=8)),
                fgd_inputs, False),
    'tsd': ('TopScoreDifferenceLoss', dict(k=3), lambda: dict(logits=randn(2, 5, 4, 4)), True),
    'tolerant_cls': ('TolerantLoss', tolerant(dict(type='mmpretrain.CrossEntropyLoss')),
                     lambda: head_inputs(4, 6, target=labels(4, high=6)), True),
    'tolerant_seg': ('TolerantLoss', tolerant(dict(type='mmseg.CrossEntropyLoss')),
                     lambda: head_inputs(2, 5, 4, 4, target=labels(2, 4, 4, high=5)), True),
    'tolerant_det_focal': ('TolerantLoss', tolerant(dict(type='mmdet.FocalLoss', use_sigmoid=True), use_sigmoid=True),
                           lambda: head_inputs(6, 4, target=labels(6, high=5)) | dict(avg_factor=2.0), True),
    'tolerant_det_softmax': ('TolerantLoss', tolerant(dict(type='mmdet.CrossEntropyLoss')),
                             lambda: head_inputs(6, 5, target=labels(6, high=5)) | dict(avg_factor=3.0), True),
    # mmdet's QualityFocalLoss opens an autocast region, which has no meta device type.
    'tolerant_det_qfl': ('TolerantLoss', tolerant(dict(type='mmdet.QualityFocalLoss', use_sigmoid=True),
                                                  use_sigmoid=True),
                         lambda: head_inputs(6, 4, target=qfl_target()) | dict(avg_factor=2.0), False),
    'ab': ('ABLoss', dict(), lambda: features(2, 4, 3, 3), True),
    'at': ('ATLoss', dict(), lambda: features(2, 4, 3, 3, teacher_shape=(2, 6, 3, 3)), True),
    'rkd_angle': ('AngleWiseRKD', dict(), lambda: student_teacher(4, 6, teacher_shape=(4, 3, 2, 2)), True),
    'rkd_distance': ('DistanceWiseRKD', dict(), lambda: student_teacher(4, 6, teacher_shape=(4, 3, 2, 2)), True),
    # Its index bounds check reads the indices on the host (one sync per step, by design).
    'crd_drawn': ('CRDLoss', dict(neg_num=5, sample_n=12, dim_out=8), lambda: crd_inputs(False), False),
    'crd_contrasted': ('CRDLoss', dict(neg_num=5, sample_n=12, dim_out=8), lambda: crd_inputs(True), False),
    'cwd': ('ChannelWiseDivergence', dict(tau=2.0), lambda: student_teacher(2, 4, 3, 3), True),
    'cross_entropy': ('CrossEntropyLoss', dict(), lambda: student_teacher(2, 5, 3, 3), True),
    # Class indices: their range check reads them on the host (by design); class scores skip it.
    'dkd_indices': ('DKDLoss', dict(beta=0.5), lambda: with_labels(student_teacher(4, 6), 'indices'), False),
    'dkd_scores': ('DKDLoss', dict(reduction='none'), lambda: with_labels(student_teacher(4, 6), 'scores'), True),
    'wsld_indices': ('WSLD', dict(tau=2.0, num_classes=6),
                     lambda: with_labels(student_teacher(4, 6, names=('student', 'teacher')), 'indices'), False),
    'wsld_scores': ('WSLD', dict(num_classes=6),
                    lambda: with_labels(student_teacher(4, 6, names=('student', 'teacher')), 'scores'), True),
    'fbkd': ('FBKDLoss', dict(), fbkd_inputs, True),
    'ft': ('FTLoss', dict(), lambda: features(2, 4, 3, 3), True),
    'kd_soft_ce_weighted': ('KDSoftCELoss', dict(tau=2.0),
                            lambda: student_teacher(4, 6) | dict(weight=randn(4, seed=2).abs(), avg_factor=3.0), True),
    'l1': ('L1Loss', dict(), lambda: features(2, 4, 3, 3), True),
    'l2': ('L2Loss', dict(), lambda: features(2, 4, 3, 3), True),
    'l2_dist_singletons': ('L2Loss', dict(normalize=False, dist=True),
                           lambda: features(2, 4, teacher_shape=(2, 4, 1, 1)), True),
    'mgd': ('MGDLoss', dict(), lambda: student_teacher(2, 4, 3, 3), True),
    'ofd': ('OFDLoss', dict(), lambda: features(2, 4, 3, 3), True),
    'pkd_resize_levels': ('PKDLoss', dict(),
                          lambda: dict(preds_S=[randn(2, 4, 3, 3), randn(2, 4, 2, 2)],
                                       preds_T=[randn(2, 4, 6, 6, seed=1), randn(2, 4, 2, 2, seed=1)]), True),
    'onehot_like': ('OnehotLikeLoss', dict(), lambda: dict(preds_T=randn(4, 6)), True),
    'information_entropy': ('InformationEntropyLoss', dict(), lambda: dict(preds_T=randn(4, 6)), True),
    'activation_abs': ('ActivationLoss', dict(), lambda: dict(feat_T=randn(2, 4, 3, 3)), True),
    'activation_norm': ('ActivationLoss', dict(norm_type='norm'), lambda: dict(feat_T=randn(2, 4, 3, 3)), True),
}


def build_loss(name, kwargs):
    return build_in_mmdistkd_scope(dict(type=name, **kwargs))


def run_loss(case, device, check=contextlib.nullcontext):
    """Builds the case's loss on ``device`` and runs it forward and backward there, within ``check()``; returns
    the output. Building is outside ``check``: buffers made on the CPU in ``__init__`` move with the module
    (CRD's memory banks), and meta still fails on any that would not."""
    name, kwargs, make_inputs, _ = LOSS_CASES[case]
    torch.manual_seed(0)
    loss = build_loss(name, kwargs).to(device)
    inputs = {name: on(device, value) for name, value in make_inputs().items()}
    with check():
        output = loss(**inputs)
        total(output).backward()
    leaves = float_leaves(list(inputs.values())) + [p for p in loss.parameters() if p.requires_grad]
    assert any(leaf.grad is not None for leaf in leaves), case
    for leaf in leaves:
        assert leaf.grad is None or leaf.grad.device.type == device, case
    return output


def test_every_registered_loss_and_recorder_has_a_case():
    registered = MODELS.module_dict
    classes = {name: cls for name, cls in registered.items() if isinstance(cls, type)}  # not factories (DeiTClsHead)
    losses = {name for name, cls in classes.items() if issubclass(cls, Fp32Loss)}
    recorders = {name for name, cls in classes.items() if issubclass(cls, BaseRecorder)}
    assert losses == {name for name, *_ in LOSS_CASES.values()}, 'give each registered loss a case in LOSS_CASES'
    assert recorders == set(RECORDER_CASES), 'give each registered recorder a case in RECORDER_CASES'
    assert set(TEACHER_FORWARDS.module_dict) == set(STRATEGY_CASES), 'give each teacher-forward strategy a case'


@pytest.mark.parametrize('case', [case for case, (*_, meta) in LOSS_CASES.items() if meta])
def test_loss_runs_forward_and_backward_on_meta(case):
    output = run_loss(case, 'meta')
    assert all(leaf.device.type == 'meta' for leaf in (output.values() if isinstance(output, dict) else
                                                      output if isinstance(output, list) else [output]))


@pytest.mark.parametrize('case', list(LOSS_CASES))
def test_loss_creates_no_tensor_without_a_device(case):
    output = run_loss(case, 'cpu', check=no_cpu_tensor_creations)
    assert torch.isfinite(total(output))


@pytest.mark.parametrize('device', ['meta', 'cpu'])
def test_cka_and_relation_helpers_keep_the_device_and_float64(device):
    """The CKA helpers compute in float64 by design; ``pearson_relations`` keeps its inputs' dtype (float64 in
    gives float64 out and float64 gradients)."""
    feat_s, feat_t = on(device, randn(6, 4, 3, 3)), on(device, randn(6, 8, 3, 3, seed=1))
    scores_S, scores_T = on(device, randn(3, 5, 7).double()), on(device, randn(3, 5, 7, seed=1).double())
    with no_cpu_tensor_creations():
        ckas = [token_linear_cka(feat_s, feat_t), batch_unbiased_cka(feat_s, feat_t),
                batch_unbiased_cka(feat_s[:3], feat_t[:3])]  # below 4 images: NaN of the same device
        inter, intra = pearson_relations(scores_S, scores_T, 'softmax', tau=2.0, chunk_numel=10)
        (inter + intra).backward()
    assert all(cka.device.type == device and cka.dtype == torch.float64 for cka in ckas)
    assert {inter.dtype, intra.dtype, scores_S.grad.dtype, scores_T.grad.dtype} == {torch.float64}
    assert scores_S.grad.device.type == device


# ------------------------------------------------------------------------------------------ recorders
class Mask2FormerLikeHead(nn.Module):
    """Returns per-layer query class logits ``(N, Q, C + 1)`` and mask logits ``(N, Q, h, w)``, as mmseg's
    ``Mask2FormerHead.forward`` does."""

    def __init__(self, channels=4, queries=3, num_classes=5):
        super().__init__()
        self.cls = nn.Linear(channels, queries * (num_classes + 1))
        self.mask = nn.Conv2d(channels, queries, 1)
        self.queries = queries

    def forward(self, feat):
        cls = self.cls(feat.mean((2, 3))).reshape(feat.shape[0], self.queries, -1)
        return [cls, cls * 2], [self.mask(feat), self.mask(feat) * 2]


def scaled(feat, factor):
    """A module-level function the model calls, for the function recorders."""
    return feat * factor


class RecordedModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.decode_head = Mask2FormerLikeHead()

    def forward(self, x):
        return self.decode_head(scaled(self.conv(x), factor=2.0))


RECORDER_CASES = {
    'ModuleOutputs': dict(source='conv'),
    'ModuleInputs': dict(source='decode_head'),
    'MethodOutputs': dict(source=f'{__name__}.Mask2FormerLikeHead.forward'),
    'MethodInputs': dict(source=f'{__name__}.Mask2FormerLikeHead.forward'),
    'FunctionOutputs': dict(source=f'{__name__}.scaled'),
    'FunctionInputs': dict(source=f'{__name__}.scaled'),
    'Parameter': dict(source='conv.weight'),
    'QuerySegLogScores': dict(source='decode_head'),
}


def recorded_tensors(value):
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in recorded_tensors(v)]
    return [value] if torch.is_tensor(value) else []


@pytest.mark.parametrize('device', ['meta', 'cpu'])
@pytest.mark.parametrize('recorder', list(RECORDER_CASES))
def test_recorder_records_on_the_models_device_and_backward_runs(recorder, device):
    model = RecordedModel().to(device)
    manager = RecorderManager(dict(record=dict(type=recorder, **RECORDER_CASES[recorder])))
    manager.prepare_from_model(model, 'student')
    with no_cpu_tensor_creations(), manager:
        model(on(device, randn(2, 3, 6, 6)))
    records = recorded_tensors(manager.get_recorder('record').get_record_data(0))
    assert records and all(record.device.type == device for record in records)
    with no_cpu_tensor_creations():
        sum(record.float().sum() for record in records).backward()
    assert model.conv.weight.grad.device.type == device


# ------------------------------------------------------------------------------------------ strategies
def tensor_strategy_models():
    return build(student=classifier(), teacher=classifier()), 'head.fc'


def seg_strategy_models():
    """The FCN segmentor with a list of auxiliary heads (a ModuleList) as the teacher."""
    student, teacher = tiny_segmentor((32, 2)), tiny_segmentor([(32, 2), (64, 3)])
    return build(student=student, teacher=teacher, scope='mmseg', teacher_forward='seg_decode_aux',
                 distiller=dist_distiller('decode_head.conv_seg', 'auxiliary_head.1.conv_seg')), 'decode_head'


def extract_feat_strategy_models():
    """FCN segmentors: the teacher runs its backbone only (mmseg's ``extract_feat``)."""
    return build(student=tiny_segmentor(None), teacher=tiny_segmentor(None), scope='mmseg',
                 teacher_forward='extract_feat',
                 distiller=dist_distiller('backbone.layer4', 'backbone.layer4')), 'backbone'


def roi_strategy_models():
    cls_logits = 'roi_head.bbox_head.fc_cls'
    return build(student=tiny_faster_rcnn(18), teacher=tiny_faster_rcnn(18), scope='mmdet',
                 teacher_forward='roi_on_student_rois',
                 distiller=dist_distiller(cls_logits, cls_logits)), 'roi_head.bbox_head'


# strategy name -> (the models it runs on, whether meta can run it)
STRATEGY_CASES = {
    'tensor': (tensor_strategy_models, True),
    'seg_decode_aux': (seg_strategy_models, True),
    'extract_feat': (extract_feat_strategy_models, True),
    'roi_on_student_rois': (roi_strategy_models, False),
}


def preprocessed_batch(model, size=32):
    fit_preprocessor_to_size(model.data_preprocessor, size, size)
    return model.data_preprocessor(synthetic_batch_for(model.student, 2, size, size), True)


@pytest.mark.parametrize('device', ['meta', 'cpu'])
@pytest.mark.parametrize('strategy', list(STRATEGY_CASES))
def test_teacher_forward_strategy_runs_on_the_teachers_device_and_backward_runs(strategy, device):
    """The strategy on a teacher whose gradients are enabled (as a trainable teacher's), forward and backward;
    the student's forward first for a strategy that runs after it."""
    make_models, meta = STRATEGY_CASES[strategy]
    if device == 'meta' and not meta:
        pytest.skip(f'{strategy!r} needs values (mmcv RoIAlign, the student RoI sampling): checked on CPU')
    torch.manual_seed(0)
    model, recorded = make_models()
    model.to(device).train()
    forward = build_teacher_forward(strategy)
    forward.prepare(model.student, model.teacher)
    data = preprocessed_batch(model)
    with no_cpu_tensor_creations():
        if forward.runs_after_student:
            with torch.no_grad():
                model.student(**data, mode='loss')
        model.teacher.requires_grad_(True)
        outputs = []
        handle = model.teacher.get_submodule(recorded).register_forward_hook(
            lambda module, inputs, output: outputs.append(output))
        forward(model.teacher, data['inputs'], data['data_samples'])
        handle.remove()
        tensors = recorded_tensors(outputs)
        sum(t.float().sum() for t in tensors if t.is_floating_point()).backward()
    assert tensors and all(t.device.type == device for t in tensors)
    assert all(p.grad is not None and p.grad.device.type == device
               for p in model.teacher.get_submodule(recorded).parameters())


# ------------------------------------------------------------------------------------------ whole steps
def dist_classifier_distiller():
    return dist_distiller('head.fc', 'head.fc')


def step(model, data):
    """One training step (loss, backward, SGD with momentum) on ``data``; returns the logged values (each
    loss, its levels summed)."""
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1, momentum=0.9)
    loss, log_vars = model.parse_losses(model.loss(**data))
    loss.backward()
    optimizer.step()
    return log_vars


@pytest.mark.parametrize('distiller', [kd_distiller, dist_classifier_distiller])
def test_a_classifier_distillation_step_runs_on_meta(distiller):
    model = build(teacher=classifier(), distiller=distiller(), check_teacher=False).to('meta')
    data = model.data_preprocessor(batch(), True)  # the preprocessor moves the batch to the model's device
    assert data['inputs'].device.type == 'meta'
    losses = step(model, data)
    assert all(loss.device.type == 'meta' for loss in losses.values())
    assert model.student.head.fc.weight.grad.device.type == 'meta'


def demo_model(config, **options):
    """The model of ``configs/demo/<config>.py`` (random teacher, no first-iteration check, ``options`` of
    SingleTeacherDistill), in training mode."""
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'demo', f'{config}.py'))
    cfg.model.update(teacher_ckpt=None, check_teacher=False, **options)
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        return MODELS.build(cfg.model).train()


@pytest.mark.parametrize('config, size', [('dist_deeplabv3_r34_r18_demo_seg', 32),
                                          ('dpk_retinanet_r34_r18_demo_det', 64),
                                          ('dpk_resnet34_resnet18_demo_cls', 32)])
def test_demo_steps_that_need_values_create_no_tensor_without_a_device(config, size):
    """DIST on DeepLabV3 (ignored pixels), DPK + FGD on RetinaNet, DPK on ResNet: the demo configs at reduced
    size; the two-stage ``'roi_on_student_rois'`` step is in the strategy test above."""
    model = demo_model(config)
    data = preprocessed_batch(model, size)
    with no_cpu_tensor_creations():
        losses = step(model, data)
    assert len(losses) > 1 and all(torch.isfinite(loss) for loss in losses.values())


# ------------------------------------------------------------------------------------------ the checks fail
LEVEL_LOSS_WITH_A_CPU_TENSOR = '''
def level_loss(self, preds_S, preds_T):
    return (self.elementwise_kl(preds_S, preds_T) + torch.ones(preds_S.shape[-1])).sum()  # no device=: the bug
'''


def test_a_cpu_tensor_created_in_a_loss_fails_both_checks(monkeypatch):
    """A loss that adds ``torch.ones(classes)`` (created on the CPU) to its per-class values: meta raises, and the
    creation check names the line."""
    namespace = dict(torch=torch)
    # Compiled as kd.py's own code: the creation check attributes it to mmdistkd, as it would the real bug.
    exec(compile(LEVEL_LOSS_WITH_A_CPU_TENSOR, kd.__file__, 'exec'), namespace)
    monkeypatch.setattr(KLDivergence, 'level_loss', namespace['level_loss'])
    with pytest.raises(RuntimeError, match='Tensor on device cpu is not on the expected device meta'):
        run_loss('kd', 'meta')
    with pytest.raises(AssertionError, match=r'tensors created without device= in mmdistkd: '
                       r'mmdistkd/models/losses/kd\.py:3: torch\.ones\n'):
        run_loss('kd', 'cpu', check=no_cpu_tensor_creations)
