from .distill_optim_wrapper_constructor import SeparateDistillerOptimWrapperConstructor, optim_wrapper_cfg_for  # noqa: F401
from .distill_optim_wrapper_dict import DistillOptimWrapperDict  # noqa: F401
from .separate_optim_wrapper_constructor import SeparateOptimWrapperConstructor  # noqa: F401
