"""OFDDistiller (MMRazor's name): the distiller of "A Comprehensive Overhaul of Feature Distillation" (Heo et
al., ICCV 2019, arXiv 1904.01866), trained by ``OverhaulFeatureDistillation``.

OFD distils the teacher's pre-ReLU features, each channel clipped from below at its margin: the expected value of
the channel's negative responses. A channel right after batch normalisation is modelled as ``N(beta, gamma^2)``
(its BN's bias and weight), whose mean below zero is ``beta - |gamma| * phi(beta / |gamma|) / Phi(-beta / |gamma|)``
(``phi``, ``Phi``: the standard normal density and distribution function); where negative responses are rarer
than 0.1 % the margin is ``-3 |gamma|``, as in the authors' code and MMRazor.
"""
import math

import torch
from torch import nn

from mmdistkd.models.recorders import ModuleOutputs, find_submodule
from mmdistkd.registry import MODELS

from .configurable_distiller import ConfigurableDistiller

# Below this probability of a negative response the Gaussian tail mean is unstable: the margin is -3 std.
MIN_NEGATIVE_PROBABILITY = 1e-3


def ofd_margin(bn):
    """The margin ``(1, C, 1, 1)`` (float32) of the features that the batch-norm layer ``bn`` outputs, from its
    weight and bias (module docstring), computed in float64. A channel whose weight is 0 outputs its bias
    alone: its margin is the bias where that is negative, else 0."""
    std, mean = bn.weight.detach().double().abs(), bn.bias.detach().double()
    ratio = mean / std
    negative_probability = torch.special.ndtr(-ratio)
    tail_mean = mean - std * torch.exp(-ratio**2 / 2) / math.sqrt(2 * math.pi) / negative_probability
    margin = torch.where(negative_probability > MIN_NEGATIVE_PROBABILITY, tail_mean, -3 * std)
    return margin.float().reshape(1, -1, 1, 1)


@MODELS.register_module()
class OFDDistiller(ConfigurableDistiller):
    """``ConfigurableDistiller`` (same arguments) that gives each teacher connector with an ``init_margin`` method
    (MMRazor's ``OFDTeacherConnector``) the margin of the teacher's batch-norm layer its recorder records:
    ``init_ofd_connectors(teacher)``, called by ``OverhaulFeatureDistillation`` once the teacher's weights are
    loaded."""

    def init_ofd_connectors(self, teacher):
        margin_connectors = {name for name, connector in self.connectors.items()
                             if callable(getattr(connector, 'init_margin', None))}
        initialised = set()
        for loss_name, mapping in self.loss_forward_mappings.items():
            for arg, item in mapping.items():
                connector = item.get('connector')
                if connector not in margin_connectors:
                    continue
                where = f'loss_forward_mappings[{loss_name!r}][{arg!r}] (connector {connector!r})'
                if item['from_student']:
                    raise ValueError(f'{where}: the connector takes its margins from the teacher\'s batch norm, so '
                                     'it belongs to a teacher item (from_student=False)')
                recorder = self.teacher_recorders.get_recorder(item['recorder'])
                self.connectors[connector].init_margin(recorded_bn_margin(teacher, recorder, where))
                initialised.add(connector)
        unused = sorted(margin_connectors - initialised)
        if unused:
            raise ValueError(f'connectors {unused} take margins from the teacher\'s batch norm, but no teacher item '
                             'of loss_forward_mappings uses them: map them to a teacher recorder of a BN output')


def recorded_bn_margin(teacher, recorder, where):
    """The OFD margin of the teacher's batch-norm layer whose outputs ``recorder`` records."""
    if not isinstance(recorder, ModuleOutputs):
        raise ValueError(f'{where}: OFD margins come from the recorded batch-norm layer, so the recorder must be a '
                         f'ModuleOutputs of one, not a {type(recorder).__name__}')
    bn = find_submodule(teacher, recorder.source, 'teacher')
    if not isinstance(bn, nn.modules.batchnorm._BatchNorm) or not bn.affine:
        raise ValueError(f'{where}: OFD margins come from the weight and bias of the recorded layer, but the '
                         f'teacher\'s {recorder.source!r} is a {type(bn).__name__}; record the outputs of an affine '
                         'batch-norm layer (e.g. backbone.layer2.0.bn1), before its ReLU')
    return ofd_margin(bn)
