"""The embedding head of "Contrastive Representation Distillation" (Tian, Krishnan and Isola, ICLR 2020,
arXiv 1910.10699): a linear projection to the contrastive space, L2-normalised; one per network."""
import torch.nn.functional as F
from torch import nn

from mmdistkd.registry import MODELS

from .base import BaseConnector


@MODELS.register_module()
class CRDConnector(BaseConnector):
    """``normalize(linear(flatten(x)))``: ``(N, *) -> (N, dim_out)`` unit vectors, for ``CRDLoss``.

    The normalisation runs in float32 (a sum of squares overflows float16) and divides by ``max(||v||, 1e-12)``,
    so a zero embedding stays zero where MMRazor's plain division gives NaN.

    Config (MMRazor's CRD student and teacher connectors)::

        loss_crd_stu=dict(type='CRDConnector', dim_in=512, dim_out=128)
        loss_crd_tea=dict(type='CRDConnector', dim_in=2048, dim_out=128)
    """

    def __init__(self, dim_in=1024, dim_out=128, init_cfg=None):
        super().__init__(init_cfg)
        self.linear = nn.Linear(dim_in, dim_out)

    def forward(self, feature):
        flat = feature.flatten(1)
        if flat.shape[1] != self.linear.in_features:
            raise ValueError(f'CRDConnector was built with dim_in={self.linear.in_features}, but got a feature of '
                             f'shape {tuple(feature.shape)}, {flat.shape[1]} values per sample: set '
                             f'dim_in={flat.shape[1]}, or record a feature with {self.linear.in_features} values')
        return F.normalize(self.linear(flat).float(), dim=1)
