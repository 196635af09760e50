"""MMRazor's ``DeiTClsHead`` on a tiny mmpretrain ``DistilledVisionTransformer`` (deit-tiny, 32x32 images, 16x16
patches): the score is the class token's head alone, the distillation head runs for its recorder, the label loss is
cross-entropy on the class score, no warning in training, mmpretrain's parameter names; and ``import mmdistkd``
still imports no mmpretrain model."""
import sys
import warnings

import pytest
import torch
from mmengine.registry import DefaultScope
from mmpretrain.models.heads import DeiTClsHead as MMPretrainDeiTClsHead
from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS
from mmpretrain.structures import DataSample

from mmdistkd.models.recorders import ModuleOutputs
from mmdistkd.registry import MODELS
from mmdistkd.testing import run_tool

NUM_CLASSES = 5
EMBED_DIMS = 192  # deit-tiny


def build_student(head_type='mmdistkd.DeiTClsHead', **head_kwargs):
    """A distilled DeiT classifier built as the student of MMRazor's DeiT config is, in scope mmpretrain, with
    random (not zero) head weights."""
    cfg = dict(type='ImageClassifier',
               backbone=dict(type='DistilledVisionTransformer', arch='deit-tiny', img_size=32, patch_size=16),
               head=dict(type=head_type, num_classes=NUM_CLASSES, in_channels=EMBED_DIMS,
                         loss=dict(type='CrossEntropyLoss'), **head_kwargs))
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        student = MMPRETRAIN_MODELS.build(cfg)
    student.init_weights()
    for layer in student.head.layers.children():
        if isinstance(layer, torch.nn.Linear):
            torch.nn.init.normal_(layer.weight), torch.nn.init.normal_(layer.bias)
    return student


def linear_float64(layer, x):
    return x.double() @ layer.weight.double().T + layer.bias.double()


def test_score_is_the_class_token_head_and_the_distillation_head_is_recorded():
    student = build_student().eval()
    recorder = ModuleOutputs('head.layers.head_dist')
    recorder.prepare(student)
    images = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        cls_token, dist_token = student.extract_feat(images)[-1]
        recorder.recording = True
        scores = student(images, mode='tensor')
        recorder.recording = False
    layers = student.head.layers
    assert not torch.allclose(cls_token, dist_token)
    torch.testing.assert_close(scores.double(), linear_float64(layers.head, cls_token), rtol=1e-5, atol=1e-5)
    assert len(recorder.records) == 1
    torch.testing.assert_close(recorder.get_record_data().double(), linear_float64(layers.head_dist, dist_token),
                               rtol=1e-5, atol=1e-5)


def test_label_loss_is_cross_entropy_on_the_class_score_without_warnings():
    student = build_student().train()
    images = torch.randn(4, 3, 32, 32)
    labels = [0, 3, 1, 4]
    samples = [DataSample().set_gt_label(label) for label in labels]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        losses = student(images, samples, mode='loss')
        cls_token, _ = student.extract_feat(images)[-1]  # same batch: deit-tiny has no dropout by default
    assert [str(warning.message) for warning in caught] == []
    cls_scores = linear_float64(student.head.layers.head, cls_token.detach())
    expected = -torch.stack([torch.log_softmax(row, 0)[label] for row, label in zip(cls_scores, labels)]).mean()
    assert set(losses) == {'loss'}
    torch.testing.assert_close(losses['loss'].double(), expected, rtol=1e-5, atol=1e-5)
    losses['loss'].backward()
    # the label loss reaches the class token's head only
    assert student.head.layers.head.weight.grad.abs().sum() > 0
    assert student.head.layers.head_dist.weight.grad is None


def test_mmpretrains_head_averages_both_and_warns_in_training():
    """What this head replaces (so the two tests above do tell the heads apart)."""
    student = build_student('mmpretrain.DeiTClsHead').train()
    images = torch.randn(2, 3, 32, 32)
    with pytest.warns(UserWarning, match='cannot train the distilled version'):
        scores = student(images, mode='tensor')
    cls_token, dist_token = student.extract_feat(images)[-1]
    layers = student.head.layers
    averaged = (linear_float64(layers.head, cls_token) + linear_float64(layers.head_dist, dist_token)) / 2
    torch.testing.assert_close(scores.double(), averaged.detach(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('hidden_dim', [None, 8])
def test_parameter_names_and_shapes_are_mmpretrains(hidden_dim):
    """Checkpoints interchange both ways, with or without the hidden layer."""
    kwargs = dict(num_classes=NUM_CLASSES, in_channels=EMBED_DIMS, hidden_dim=hidden_dim)
    ours = MODELS.build(dict(type='mmdistkd.DeiTClsHead', **kwargs))
    theirs = MMPretrainDeiTClsHead(**kwargs)
    assert isinstance(ours, MMPretrainDeiTClsHead) and type(ours) is not MMPretrainDeiTClsHead
    assert ({key: value.shape for key, value in ours.state_dict().items()} ==
            {key: value.shape for key, value in theirs.state_dict().items()})
    theirs.load_state_dict(ours.state_dict(), strict=True)
    ours.load_state_dict(theirs.state_dict(), strict=True)


IMPORT_MMDISTKD = """
import sys, mmdistkd
from mmdistkd.registry import MODELS
print('mmpretrain.models imported:', 'mmpretrain.models' in sys.modules)
print('registered:', 'DeiTClsHead' in MODELS.module_dict)
"""


def test_import_mmdistkd_registers_the_head_without_importing_mmpretrain_models():
    lines = run_tool([sys.executable, '-c', IMPORT_MMDISTKD]).stdout.splitlines()
    assert lines == ['mmpretrain.models imported: False', 'registered: True']
