"""CRDDataset and PackCRDClsInputs (MMRazor's CRD data): each training sample's index and contrast indices, the
negatives from other classes only, repeatable draws, and the packed data samples CRDLoss reads."""
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate
from mmpretrain.datasets import BaseDataset

import mmdistkd  # noqa: F401
from mmdistkd.datasets import CRDDataset
from mmdistkd.models.losses import CRDLoss
from mmdistkd.registry import DATASETS

# 11 images of 3 classes, not balanced (class 0: 5 images, class 1: 4, class 2: 2).
LABELS = [0, 1, 0, 2, 1, 0, 0, 1, 2, 0, 1]


class ToyImages(BaseDataset):

    def load_data_list(self):
        return [dict(img=np.full((4, 4, 3), index, np.uint8), gt_label=label) for index, label in enumerate(LABELS)]


def toy_images(test_mode=False):
    return ToyImages(ann_file='', metainfo=dict(classes=('a', 'b', 'c')), test_mode=test_mode,
                     pipeline=[dict(type='mmdistkd.PackCRDClsInputs')])


def crd(neg_num=6, **kwargs):
    return CRDDataset(toy_images(), neg_num=neg_num, percent=kwargs.pop('percent', 1.0), **kwargs)


def other_class_indices(idx):
    return {i for i, label in enumerate(LABELS) if label != LABELS[idx]}


def test_each_sample_carries_its_index_then_the_positive_and_negatives_of_other_classes():
    np.random.seed(0)
    dataset = crd(neg_num=6)
    assert len(dataset) == len(LABELS)
    for idx in range(len(LABELS)):
        sample = dataset[idx]['data_samples']
        assert sample.sample_idx.dtype == torch.long and sample.sample_idx.item() == idx
        contrast = sample.contrast_sample_idxs
        assert contrast.dtype == torch.long and contrast.shape == (7, )
        assert contrast[0].item() == idx  # 'exact': the positive is the sample itself
        assert set(contrast[1:].tolist()) <= other_class_indices(idx)
        # At most 6 other-class images exist (class 0 has exactly 6): drawn without replacement then.
        if len(other_class_indices(idx)) >= 6:
            assert len(set(contrast[1:].tolist())) == 6
        assert dataset[idx]['inputs'][0, 0, 0].item() == idx  # the wrapped sample itself


def test_more_negatives_than_other_class_images_are_drawn_with_replacement():
    np.random.seed(0)
    dataset = crd(neg_num=50)
    negatives = dataset[0]['data_samples'].contrast_sample_idxs[1:].tolist()
    assert len(negatives) == 50 and set(negatives) == other_class_indices(0)


def test_random_mode_takes_a_positive_of_the_same_class():
    np.random.seed(0)
    dataset = crd(sample_mode='random')
    positives = {dataset.get_data_info(0)['contrast_sample_idxs'][0] for _ in range(40)}
    assert positives == {i for i, label in enumerate(LABELS) if label == 0}


def test_percent_keeps_that_share_of_each_class_negatives():
    np.random.seed(0)
    dataset = crd(neg_num=2, percent=0.5)
    for idx in (0, 1, 3):
        pool = other_class_indices(idx)
        drawn = {i for _ in range(60) for i in dataset.get_data_info(idx)['contrast_sample_idxs'][1:].tolist()}
        assert drawn <= pool and len(drawn) == len(pool) // 2


def test_draws_repeat_under_the_same_numpy_seed():
    def contrast_of_all(seed):
        np.random.seed(seed)
        dataset = crd(neg_num=4, percent=0.7, sample_mode='random')
        return [dataset.get_data_info(idx)['contrast_sample_idxs'].tolist() for idx in range(len(LABELS))]

    assert contrast_of_all(3) == contrast_of_all(3)
    assert contrast_of_all(3) != contrast_of_all(4)


def test_a_test_mode_dataset_passes_through_with_its_sample_index():
    dataset = CRDDataset(toy_images(test_mode=True), neg_num=6, percent=1.0)
    sample = dataset[2]['data_samples']
    assert 'contrast_sample_idxs' not in sample and sample.sample_idx.item() == 2


def test_packed_samples_give_crd_loss_their_indices():
    np.random.seed(0)
    dataset = DATASETS.build(dict(type='CRDDataset', dataset=toy_images(), neg_num=5, percent=1.0))
    batch = pseudo_collate([dataset[3], dataset[8]])
    loss = CRDLoss(neg_num=5, sample_n=len(LABELS), dim_out=4)
    sample_idx, contrast_idx = loss.contrast_indices(batch['data_samples'], 2, torch.device('cpu'))
    assert sample_idx.tolist() == [3, 8]
    expected = torch.stack([sample.contrast_sample_idxs for sample in batch['data_samples']])
    assert torch.equal(contrast_idx, expected) and contrast_idx[:, 0].tolist() == [3, 8]


@pytest.mark.parametrize('kwargs, message', [
    (dict(sample_mode='hard'), "sample_mode must be 'exact' or 'random'"),
    (dict(percent=0.0), r'in \(0, 1\]'),
    (dict(num_classes=2), r'num_classes=2\) got label 2'),
])
def test_argument_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        crd(**kwargs)


def test_a_wrapped_dataset_config_needs_its_scope():
    """Under ``_scope_='mmdistkd'`` (the wrapper's) an unscoped ``CIFAR10`` would be looked up in mmdistkd."""
    with pytest.raises(KeyError, match="could not build its dataset 'CIFAR10'.*_scope_='mmpretrain'"):
        CRDDataset(dict(type='CIFAR10', data_root='data/cifar10'), neg_num=4, percent=1.0)


def test_config_types_resolve_without_importing_the_package_first():
    """``import mmdistkd`` leaves mmdistkd.datasets (and mmpretrain) alone; the registries import it on demand."""
    script = ('import sys, mmdistkd; from mmengine.registry import DATASETS, TRANSFORMS\n'
              'print("datasets" in dir(mmdistkd), "mmpretrain" in sys.modules)\n'
              'print(DATASETS.get("mmdistkd.CRDDataset").__name__,\n'
              '      TRANSFORMS.get("mmdistkd.PackCRDClsInputs").__name__)')
    lines = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True, check=True).stdout.split()
    assert lines == ['False', 'False', 'CRDDataset', 'PackCRDClsInputs']
