from .configurable_distiller import ConfigurableDistiller  # noqa: F401
