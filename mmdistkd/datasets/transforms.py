"""Packing of CRD's per-sample indices (``CRDDataset``) for ``CRDLoss``."""
import torch
from mmpretrain.datasets.transforms import PackInputs

from mmdistkd.registry import TRANSFORMS


@TRANSFORMS.register_module()
class PackCRDClsInputs(PackInputs):
    """mmpretrain's ``PackInputs`` that also puts ``sample_idx`` and ``contrast_sample_idxs`` into the data sample
    as long tensors (data fields, where MMRazor's ``PackCRDClsInputs`` puts them; ``sample_idx`` leaves the
    meta keys). Takes ``PackInputs``'s arguments."""

    CRD_KEYS = ('sample_idx', 'contrast_sample_idxs')

    def __init__(self, input_key='img', algorithm_keys=(), meta_keys=PackInputs.DEFAULT_META_KEYS):
        super().__init__(input_key=input_key,
                         algorithm_keys=tuple(dict.fromkeys([*algorithm_keys, *self.CRD_KEYS])),
                         meta_keys=tuple(key for key in meta_keys if key not in self.CRD_KEYS))

    def transform(self, results):
        indices = {key: torch.as_tensor(results[key], dtype=torch.long) for key in self.CRD_KEYS if key in results}
        return super().transform({**results, **indices})
