from .base_generator import BaseGenerator  # noqa: F401
from .dafl_generator import DAFLGenerator  # noqa: F401
from .zskt_generator import ZSKTGenerator  # noqa: F401
