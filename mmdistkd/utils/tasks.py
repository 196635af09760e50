"""Which OpenMMLab task a model or loss belongs to, from the package that defines its class."""

TASK_OF_PACKAGE = {'mmpretrain': 'cls', 'mmseg': 'seg', 'mmdet': 'det'}


def package_of(obj):
    """The top-level package of ``obj``'s class, e.g. ``'mmdet'``."""
    return type(obj).__module__.split('.')[0]


def task_of(model):
    """'det', 'seg' or 'cls' from the package a (student) model comes from."""
    package = package_of(model)
    if package not in TASK_OF_PACKAGE:
        raise ValueError(f'{type(model).__name__} comes from {package!r}, not one of {list(TASK_OF_PACKAGE)}')
    return TASK_OF_PACKAGE[package]
