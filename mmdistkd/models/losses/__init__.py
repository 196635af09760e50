from .ab import ABLoss  # noqa: F401
from .at import ATLoss  # noqa: F401
from .base import DistillLoss, Fp32Loss, check_same_levels, check_same_shape  # noqa: F401
from .cka import batch_unbiased_cka, token_linear_cka  # noqa: F401
from .crd import CRDLoss  # noqa: F401
from .cross_entropy import CrossEntropyLoss  # noqa: F401
from .cwd import ChannelWiseDivergence  # noqa: F401
from .data_free import ActivationLoss, InformationEntropyLoss, OnehotLikeLoss  # noqa: F401
from .dist import DISTLoss  # noqa: F401
from .dkd import DKDLoss  # noqa: F401
from .dpk import DPKLoss  # noqa: F401
from .fbkd import FBKDLoss  # noqa: F401
from .feature_distance import L1Loss, L2Loss  # noqa: F401
from .fgd import FGDLoss  # noqa: F401
from .ft import FTLoss  # noqa: F401
from .kd import KLDivergence  # noqa: F401
from .kd_soft_ce import KDSoftCELoss  # noqa: F401
from .mgd import MGDLoss  # noqa: F401
from .ofd import OFDLoss  # noqa: F401
from .pkd import PKDLoss  # noqa: F401
from .rkd import AngleWiseRKD, DistanceWiseRKD  # noqa: F401
from .tolerant import TolerantLoss, TopScoreDifferenceLoss  # noqa: F401
from .wsld import WSLD  # noqa: F401
