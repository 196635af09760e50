from .byot_distiller import BYOTDistiller  # noqa: F401
from .configurable_distiller import ConfigurableDistiller  # noqa: F401
from .ofd_distiller import OFDDistiller  # noqa: F401
