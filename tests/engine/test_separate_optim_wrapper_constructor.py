"""MMRazor's SeparateOptimWrapperConstructor: one optimizer wrapper per named submodule, and what it refuses."""
import pytest
import torch
from mmengine.optim import OptimWrapperDict
from torch import nn

from mmdistkd.engine.optimizers import SeparateOptimWrapperConstructor


class StudentAndGenerator(nn.Module):

    def __init__(self):
        super().__init__()
        self.architecture = nn.Linear(3, 2)
        self.generator = nn.Linear(2, 3)
        self.teacher = nn.Linear(3, 2).requires_grad_(False)


CFG = dict(architecture=dict(optimizer=dict(type='SGD', lr=0.1)), generator=dict(optimizer=dict(type='Adam', lr=1e-3)))


def test_each_entry_steps_only_its_submodule():
    model = StudentAndGenerator()
    wrappers = SeparateOptimWrapperConstructor(CFG)(model)
    assert isinstance(wrappers, OptimWrapperDict)
    assert isinstance(wrappers['architecture'].optimizer, torch.optim.SGD)
    assert isinstance(wrappers['generator'].optimizer, torch.optim.Adam)
    before = {name: param.detach().clone() for name, param in model.named_parameters()}
    loss = model.architecture(torch.ones(1, 3)).sum() + model.generator(torch.ones(1, 2)).sum()
    wrappers['architecture'].update_params(loss)
    changed = {name for name, param in model.named_parameters() if not torch.equal(param, before[name])}
    assert changed == {'architecture.weight', 'architecture.bias'}


def test_a_trainable_parameter_in_no_entry_is_refused():
    with pytest.raises(ValueError, match=r"\['generator.weight', 'generator.bias'\] are in none of the optim_wrapper "
                                         r'entries \(architecture\)'):
        SeparateOptimWrapperConstructor(dict(architecture=CFG['architecture']))(StudentAndGenerator())


def test_an_entry_without_its_submodule_is_refused_with_the_submodules():
    with pytest.raises(ValueError, match=r"names \['discriminator'\].*submodules are: architecture, generator, "
                                         'teacher'):
        SeparateOptimWrapperConstructor(dict(CFG, discriminator=CFG['generator']))(StudentAndGenerator())


def test_a_top_level_paramwise_cfg_is_refused():
    with pytest.raises(ValueError, match='inside each entry'):
        SeparateOptimWrapperConstructor(CFG, paramwise_cfg=dict(norm_decay_mult=0.))
