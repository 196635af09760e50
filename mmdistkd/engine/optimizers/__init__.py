from .distill_optim_wrapper_constructor import SeparateDistillerOptimWrapperConstructor  # noqa: F401
from .distill_optim_wrapper_dict import DistillOptimWrapperDict  # noqa: F401
