"""OverhaulFeatureDistillation and OFDDistiller ("A Comprehensive Overhaul of Feature Distillation", arXiv
1904.01866): the margins from the teacher's batch norms against the paper's formula written out per channel in
float64 (math.erf), given to the teacher connectors after the teacher's checkpoint loads; a training step on real
tiny mmpretrain ResNets; the errors of a wrong config."""
import math

import pytest
import torch
from mmengine.optim import OptimWrapper
from mmengine.registry import DefaultScope
from mmpretrain.structures import DataSample
from torch import nn

from mmdistkd.models.distillers.ofd_distiller import ofd_margin
from mmdistkd.registry import MODELS

NUM_CLASSES, WIDTH = 4, 8
SOURCES = ('backbone.layer2.0.bn1', 'backbone.layer3.0.bn1')


def reference_margin(weight, bias):
    """The paper's margin per channel: the mean of N(bias, weight^2) below zero, -3 |weight| when less than 0.1 %
    of it is below zero, written with math.erf in float64."""
    margins = []
    for gamma, beta in zip(weight.tolist(), bias.tolist()):
        std = abs(gamma)
        if std == 0:  # the channel outputs its bias alone
            margins.append(min(beta, 0.0))
            continue
        below_zero = 0.5 * (1 + math.erf(-beta / std / math.sqrt(2)))
        density = math.exp(-0.5 * (beta / std) ** 2) / math.sqrt(2 * math.pi)
        margins.append(beta - std * density / below_zero if below_zero > 1e-3 else -3 * std)
    return torch.tensor(margins, dtype=torch.float64)


def batch_norm(weight, bias, dtype=torch.float32):
    bn = nn.BatchNorm2d(len(weight)).to(dtype)
    with torch.no_grad():
        bn.weight.copy_(torch.as_tensor(weight))
        bn.bias.copy_(torch.as_tensor(bias))
    return bn


def test_margins_match_the_formula_on_both_branches_and_for_negative_weights():
    torch.manual_seed(0)
    weight = torch.randn(64, dtype=torch.float64) * 2
    bias = torch.randn(64, dtype=torch.float64) * 3
    weight[:4] = torch.tensor([1.0, -1.0, 0.5, 0.1])
    bias[:4] = torch.tensor([4.0, 4.0, -1.0, 2.0])  # 4 std above zero: the -3 std branch
    margin = ofd_margin(batch_norm(weight, bias))
    assert margin.shape == (1, 64, 1, 1) and margin.dtype == torch.float32
    bn = batch_norm(weight, bias)  # the float32 values the margins are computed from
    expected = reference_margin(bn.weight.double(), bn.bias.double())
    torch.testing.assert_close(margin.flatten().double(), expected, rtol=1e-6, atol=1e-6)
    assert margin[0, 0] == margin[0, 1] == pytest.approx(-3.0)
    assert (margin <= 0).all()  # a mean of negative values


def test_margins_of_degenerate_channels_are_finite():
    weight = torch.tensor([0.0, 0.0, 0.0, 1e-30, 1.0])
    bias = torch.tensor([-2.0, 0.0, 3.0, -1.0, -50.0])
    margin = ofd_margin(batch_norm(weight, bias)).flatten()
    assert torch.isfinite(margin).all()
    expected = reference_margin(weight.double(), bias.double())
    torch.testing.assert_close(expected, torch.tensor([-2.0, 0.0, 0.0, -1.0, -50.0], dtype=torch.float64))
    torch.testing.assert_close(margin.double(), expected)


def test_margins_of_a_half_precision_teacher_are_computed_in_float64():
    weight, bias = torch.tensor([0.7, 1.3, 0.2]), torch.tensor([-0.4, 2.5, 0.6])
    half = batch_norm(weight, bias, torch.float16)
    margin = ofd_margin(half)
    assert margin.dtype == torch.float32
    torch.testing.assert_close(margin.flatten().double(), reference_margin(half.weight, half.bias), rtol=1e-6,
                               atol=1e-6)


@MODELS.register_module(name='TestMarginConnector', force=True)
class MarginConnector(nn.Module):
    """Stands for MMRazor's OFDTeacherConnector: ``init_margin`` keeps the margin, the forward clips at it."""

    def __init__(self):
        super().__init__()
        self.register_buffer('margin', None)

    def init_margin(self, margin):
        self.margin = margin

    def forward(self, feature):
        return torch.max(feature.detach(), self.margin.to(feature))


@MODELS.register_module(name='TestFeatureMSE', force=True)
class FeatureMSE(nn.Module):
    """A plain feature loss with OFDLoss's argument names."""

    def forward(self, s_feature, t_feature):
        return (s_feature - t_feature).pow(2).mean()


def classifier(depth):
    return dict(
        type='ImageClassifier',
        backbone=dict(type='ResNet_CIFAR', depth=depth, stem_channels=WIDTH, base_channels=WIDTH, out_indices=(3, )),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=NUM_CLASSES, in_channels=8 * WIDTH,
                  loss=dict(type='CrossEntropyLoss')),
        data_preprocessor=dict(type='ClsDataPreprocessor', mean=[128.] * 3, std=[64.] * 3))


def ofd_distiller(distiller_type='OFDDistiller', teacher_source=None, margin_side=False,
                  connector='TestMarginConnector'):
    """MMRazor's OFD config for two stages (student and teacher of the same widths: no student connector)."""
    recorders = {f'bb_{i}': dict(type='ModuleOutputs', source=source) for i, source in enumerate(SOURCES)}
    teacher_recorders = dict(recorders)
    if teacher_source is not None:
        teacher_recorders['bb_0'] = dict(type='ModuleOutputs', source=teacher_source)
    return dict(
        type=distiller_type, student_recorders=recorders, teacher_recorders=teacher_recorders,
        connectors={f'loss_{i}_tfeat': dict(type=connector) for i in range(len(SOURCES))},
        distill_losses={f'loss_{i}': dict(type='TestFeatureMSE') for i in range(len(SOURCES))},
        loss_forward_mappings={f'loss_{i}': dict(
            s_feature=dict(from_student=True, recorder=f'bb_{i}', **(
                dict(connector=f'loss_{i}_tfeat') if margin_side else {})),
            t_feature=dict(from_student=False, recorder=f'bb_{i}', connector=f'loss_{i}_tfeat'))
            for i in range(len(SOURCES))})


def build(distiller=None, **kwargs):
    cfg = dict(type='mmdistkd.OverhaulFeatureDistillation', architecture=classifier(18), teacher=classifier(34),
               distiller=distiller or ofd_distiller(), **kwargs)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return MODELS.build(cfg)


def batch(n=4, size=16):
    torch.manual_seed(0)
    return dict(inputs=[torch.randint(0, 256, (3, size, size), dtype=torch.uint8) for _ in range(n)],
                data_samples=[DataSample().set_gt_label(i % NUM_CLASSES) for i in range(n)])


def trained_teacher_checkpoint(path):
    """A teacher checkpoint whose batch norms have varied weights and biases (a fresh BN has 1 and 0)."""
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        teacher = MODELS.build(dict(classifier(34), type='mmpretrain.ImageClassifier'))
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for module in teacher.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator))
                module.bias.copy_(torch.randn(module.bias.shape, generator=generator) * 2)
    torch.save(dict(state_dict=teacher.state_dict()), path)
    return teacher


@pytest.mark.parametrize('connector', ['TestMarginConnector', 'OFDTeacherConnector'])
def test_margins_come_from_the_loaded_teacher_and_the_student_trains(tmp_path, connector):
    path = str(tmp_path / 'teacher.pth')
    saved = trained_teacher_checkpoint(path)
    model = build(distiller=ofd_distiller(connector=connector), teacher_ckpt=path)
    for i, source in enumerate(SOURCES):
        bn = saved.get_submodule(source)
        expected = reference_margin(bn.weight.detach().double(), bn.bias.detach().double())
        torch.testing.assert_close(model.distiller.connectors[f'loss_{i}_tfeat'].margin.flatten().double(), expected,
                                   rtol=1e-6, atol=1e-6)
    before = model.student.backbone.layer2[0].conv1.weight.detach().clone()
    log_vars = model.train_step(batch(), OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01)))
    assert {'loss_0', 'loss_1', 'student.loss'} <= set(log_vars)
    assert all(math.isfinite(float(torch.as_tensor(value).detach())) for value in log_vars.values())
    assert not torch.equal(model.student.backbone.layer2[0].conv1.weight, before)


def test_wrong_configs_say_what_to_change():
    with pytest.raises(TypeError, match="distiller=dict\\(type='OFDDistiller'.*ConfigurableDistiller"):
        build(distiller=ofd_distiller('ConfigurableDistiller'))
    with pytest.raises(ValueError, match="teacher's 'backbone.layer2.0.conv1' is a Conv2d.*batch-norm"):
        build(distiller=ofd_distiller(teacher_source='backbone.layer2.0.conv1'))
    with pytest.raises(ValueError, match=r"\['loss_0'\]\['s_feature'\].*teacher item"):
        build(distiller=ofd_distiller(margin_side=True))
    unused = ofd_distiller()
    unused['connectors']['spare'] = dict(type='TestMarginConnector')
    with pytest.raises(ValueError, match=r"connectors \['spare'\].*no teacher item"):
        build(distiller=unused)
