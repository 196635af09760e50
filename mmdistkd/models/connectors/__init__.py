"""MMRazor 1.0's connectors, under its type names and arguments."""
from .base import BaseConnector  # noqa: F401
from .byot import BYOTConnector  # noqa: F401
from .conv_module import ConvModuleConnector  # noqa: F401
from .crd import CRDConnector  # noqa: F401
from .factor_transfer import Paraphraser, Translator  # noqa: F401
from .fbkd import FBKDStudentConnector, FBKDTeacherConnector  # noqa: F401
from .mgd import MGDConnector  # noqa: F401
from .norm import NormConnector  # noqa: F401
from .ofd import OFDTeacherConnector  # noqa: F401
from .torch_wrappers import TorchFunctionalConnector, TorchNNConnector  # noqa: F401
