"""MMRazor's ``SeparateOptimWrapperConstructor``: one optimizer wrapper per named submodule of the model, e.g. the
student (``architecture``) and the generator of data-free distillation, each stepped by the algorithm's own
``train_step``."""
import copy

from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapperDict, build_optim_wrapper

from mmdistkd.registry import OPTIM_WRAPPER_CONSTRUCTORS


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class SeparateOptimWrapperConstructor:
    """Builds an ``OptimWrapperDict`` with one entry per key of ``optim_wrapper``: the optimizer wrapper config
    under the key trains the model's submodule of that name. A trainable parameter outside every named submodule
    is an error (it would never be stepped); a frozen one (a teacher) is ignored.

    Example (MMRazor's DAFL config)::

        optim_wrapper = dict(
            constructor='mmdistkd.SeparateOptimWrapperConstructor',
            architecture=dict(optimizer=dict(type='AdamW', lr=1e-1)),
            generator=dict(optimizer=dict(type='AdamW', lr=1e-3)))
        param_scheduler = dict(architecture=[...], generator=[...])
    """

    def __init__(self, optim_wrapper_cfg, paramwise_cfg=None):
        if paramwise_cfg is not None:
            raise ValueError('SeparateOptimWrapperConstructor: give paramwise_cfg inside each entry of optim_wrapper '
                             f'({", ".join(optim_wrapper_cfg)}); each entry is a whole optimizer wrapper config')
        if not optim_wrapper_cfg:
            raise ValueError('SeparateOptimWrapperConstructor needs one optim_wrapper entry per submodule to train, '
                             'e.g. architecture=dict(optimizer=...), generator=dict(optimizer=...)')
        self.optim_wrapper_cfgs = copy.deepcopy(dict(optim_wrapper_cfg))

    def __call__(self, model):
        model = model.module if is_model_wrapper(model) else model
        children = dict(model.named_children())
        missing = [name for name in self.optim_wrapper_cfgs if name not in children]
        if missing:
            raise ValueError(f'optim_wrapper names {missing}, which {type(model).__name__} does not have as '
                             f'submodules; its submodules are: {", ".join(children)}')
        covered = {id(param) for name in self.optim_wrapper_cfgs for param in children[name].parameters()}
        untrained = [name for name, param in model.named_parameters()
                     if param.requires_grad and id(param) not in covered]
        if untrained:
            raise ValueError(f'SeparateOptimWrapperConstructor: the trainable parameters {untrained[:5]} are in none '
                             f'of the optim_wrapper entries ({", ".join(self.optim_wrapper_cfgs)}) and would never '
                             'be updated: add an entry for their submodule or freeze them')
        return OptimWrapperDict(**{name: build_optim_wrapper(children[name], cfg)
                                   for name, cfg in self.optim_wrapper_cfgs.items()})
