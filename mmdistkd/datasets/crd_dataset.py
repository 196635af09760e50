"""The dataset side of CRD, "Contrastive Representation Distillation" (Tian et al., ICLR 2020, arXiv 1910.10699):
every training sample names the training images its embeddings are contrasted with.
"""
import copy
import warnings

import numpy as np
from mmengine.dataset import BaseDataset, force_full_init

from mmdistkd.registry import DATASETS


@DATASETS.register_module()
class CRDDataset:
    """Wraps a classification dataset (an mmpretrain ``BaseDataset`` or its config) so that each training sample
    also carries ``contrast_sample_idxs``: ``1 + neg_num`` dataset indices, a positive then ``neg_num``
    negatives drawn from the images of the other classes (with replacement only when there are fewer than
    ``neg_num``). ``sample_idx`` (the sample's own index, set by mmengine's datasets) and these are what
    ``CRDLoss`` reads; ``PackCRDClsInputs`` packs both into the data sample. A test-mode dataset passes through.

    MMRazor's ``CRDDataset`` (same arguments and sampling). Draws use numpy's global random generator, as
    MMRazor's: they repeat under ``np.random.seed`` (mmengine's runner seeds it in each dataloader worker from
    ``randomness.seed``).

    Args:
        dataset: the wrapped dataset, or its config.
        neg_num: negatives per sample (``CRDLoss``'s ``neg_num``).
        percent: the share, in (0, 1], of each class's negative pool kept (drawn once, at initialisation).
        lazy_init: defer ``full_init`` (loading the annotations) to its first call.
        num_classes: the number of classes; by default the largest label plus one.
        sample_mode: ``'exact'``: the positive is the sample itself; ``'random'``: a random image of its class.
    """

    def __init__(self, dataset, neg_num, percent, lazy_init=False, num_classes=None, sample_mode='exact'):
        if sample_mode not in ('exact', 'random'):
            raise ValueError(f"CRDDataset sample_mode must be 'exact' or 'random', got {sample_mode!r}")
        if not 0 < percent <= 1:
            raise ValueError(f'CRDDataset percent is the share of negatives kept, in (0, 1]; got {percent!r}')
        if isinstance(dataset, dict):
            dataset = build_wrapped(dataset)
        if not isinstance(dataset, BaseDataset):
            raise TypeError(f'CRDDataset wraps an mmengine BaseDataset or its config, got {type(dataset).__name__}')
        self.dataset = dataset
        self.neg_num = neg_num
        self.percent = percent
        self.num_classes = num_classes
        self.sample_mode = sample_mode
        self._fully_initialized = False
        if not lazy_init:
            self.full_init()

    @property
    def metainfo(self):
        return copy.deepcopy(self.dataset.metainfo)

    def full_init(self):
        if self._fully_initialized:
            return
        self.dataset.full_init()
        if not self.dataset.test_mode:
            self._index_classes()
        self._fully_initialized = True

    def _index_classes(self):
        """The dataset indices of each class (positives) and of the other classes (negatives)."""
        self.gt_labels = np.asarray(self.dataset.get_gt_labels())
        num_classes = self.num_classes or int(self.gt_labels.max()) + 1
        if self.gt_labels.max() >= num_classes:
            raise ValueError(f'CRDDataset(num_classes={num_classes}) got label {self.gt_labels.max()}: leave '
                             'num_classes unset or give the number of classes of the dataset')
        self.cls_positive = [np.flatnonzero(self.gt_labels == label) for label in range(num_classes)]
        self.cls_negative = [np.flatnonzero(self.gt_labels != label) for label in range(num_classes)]
        if any(len(self.cls_negative[label]) == 0 for label in set(self.gt_labels.tolist())):
            raise ValueError('CRDDataset needs images of at least two classes: a sample has no negatives')
        if self.percent < 1:
            # Per class (MMRazor keeps as many as class 0 keeps for every class: the same on balanced data).
            self.cls_negative = [np.random.permutation(pool)[:max(1, int(len(pool) * self.percent))]
                                 for pool in self.cls_negative]

    def contrast_sample_idxs(self, idx):
        """``1 + neg_num`` dataset indices for sample ``idx``: its positive, then its negatives."""
        label = self.gt_labels[idx]
        positive = idx if self.sample_mode == 'exact' else np.random.choice(self.cls_positive[label])
        pool = self.cls_negative[label]
        negatives = np.random.choice(pool, self.neg_num, replace=self.neg_num > len(pool))
        return np.concatenate([[positive], negatives])

    @force_full_init
    def get_data_info(self, idx):
        data_info = self.dataset.get_data_info(idx)
        if not self.dataset.test_mode:
            data_info['contrast_sample_idxs'] = self.contrast_sample_idxs(idx)
        return data_info

    def prepare_data(self, idx):
        return self.dataset.pipeline(self.get_data_info(idx))

    def __getitem__(self, idx):
        if not self._fully_initialized:
            warnings.warn('CRDDataset: call full_init() before handing the dataset to a dataloader, so that its '
                          'workers share the parsed annotations instead of each parsing them')
            self.full_init()
        # A training pipeline may reject a sample (a broken image): another one is taken, as mmengine's datasets do.
        for _ in range(1 if self.dataset.test_mode else self.dataset.max_refetch + 1):
            data = self.prepare_data(idx)
            if data is not None:
                return data
            idx = self.dataset._rand_another()
        raise RuntimeError(f'CRDDataset: the pipeline of {type(self.dataset).__name__} returned None for every '
                           'sample tried; check the image paths and the pipeline')

    @force_full_init
    def __len__(self):
        return len(self.dataset)


def build_wrapped(cfg):
    """The wrapped dataset from its config. Built while the wrapper's scope (``mmdistkd``) is the default one,
    it needs a scope of its own, as MMRazor's CRD config gives it (``_scope_='mmcls'``)."""
    try:
        return DATASETS.build(cfg)
    except KeyError as error:
        if '_scope_' in cfg:
            raise
        raise KeyError(f"CRDDataset could not build its dataset {cfg.get('type')!r} ({error}): give the dataset "
                       "config its package's scope, e.g. _scope_='mmpretrain'") from error
