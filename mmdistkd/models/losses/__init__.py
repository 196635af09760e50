from .base import DistillLoss, Fp32Loss, check_same_levels, check_same_shape  # noqa: F401
from .cka import batch_unbiased_cka, token_linear_cka  # noqa: F401
from .dist import DISTLoss  # noqa: F401
from .dpk import DPKLoss  # noqa: F401
from .fgd import FGDLoss  # noqa: F401
from .kd import KLDivergence  # noqa: F401
from .tolerant import TolerantLoss, TopScoreDifferenceLoss  # noqa: F401
