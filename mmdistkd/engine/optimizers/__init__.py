from .distill_optim_wrapper_constructor import (SeparateDistillerOptimWrapperConstructor,  # noqa: F401
                                                optim_wrapper_cfg_for)
from .distill_optim_wrapper_dict import DistillOptimWrapperDict  # noqa: F401
