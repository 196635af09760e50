"""Datasets and transforms (MMRazor's CRD data). Not imported by ``import mmdistkd`` (they import mmpretrain): the
``mmdistkd`` DATASETS and TRANSFORMS registries import this package when a config first names one of them."""
from .crd_dataset import CRDDataset  # noqa: F401
from .transforms import PackCRDClsInputs  # noqa: F401
