"""tools/make_demo_data.py writes data that the real OpenMMLab datasets load."""
import subprocess
import sys

import pytest

from mmdistkd.analysis.demo_data import CLS_CLASSES, DET_CLASSES, SMALL_SIZES, generate_demo_data
from mmdistkd.testing import REPO

SCRIPT = 'tools/make_demo_data.py'


@pytest.fixture(scope='module')
def demo_root(tmp_path_factory):
    out = tmp_path_factory.mktemp('demo')
    result = subprocess.run([sys.executable, SCRIPT, '--out', str(out), '--small'], cwd=REPO,
                            capture_output=True, text=True, check=True)
    assert 'det/train' in result.stdout and 'seg/val' in result.stdout and 'cls/train' in result.stdout
    return out


def test_deterministic(demo_root, tmp_path):
    generate_demo_data(str(tmp_path), ['det'], small=True)  # one task alone: the same images
    for name in ('annotations/instances_train.json', 'train/000001.png'):
        assert (tmp_path / 'det' / name).read_bytes() == (demo_root / 'det' / name).read_bytes()


@pytest.mark.parametrize('split', ['train', 'val'])
def test_det_loads_as_coco(demo_root, split):
    from mmdet.datasets import CocoDataset
    dataset = CocoDataset(
        data_root=str(demo_root / 'det'), ann_file=f'annotations/instances_{split}.json',
        data_prefix=dict(img=f'{split}/'), metainfo=dict(classes=DET_CLASSES),
        pipeline=[dict(type='mmdet.LoadImageFromFile'), dict(type='mmdet.LoadAnnotations', with_bbox=True)])
    assert len(dataset) == SMALL_SIZES['det'][split]
    assert dataset.metainfo['classes'] == DET_CLASSES
    sample = dataset[0]
    assert sample['img'].shape == (128, 128, 3)
    boxes, labels = sample['gt_bboxes'].numpy(), sample['gt_bboxes_labels']
    assert 1 <= len(boxes) <= 4 and set(labels) <= {0, 1, 2}
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 2:] <= 128).all() and (boxes[:, 2:] > boxes[:, :2]).all()


@pytest.mark.parametrize('split', ['train', 'val'])
def test_seg_loads_as_cityscapes(demo_root, split):
    from mmseg.datasets import CityscapesDataset
    dataset = CityscapesDataset(
        data_root=str(demo_root / 'seg'),
        data_prefix=dict(img_path=f'leftImg8bit/{split}', seg_map_path=f'gtFine/{split}'),
        pipeline=[dict(type='mmseg.LoadImageFromFile'), dict(type='mmseg.LoadAnnotations')])
    assert len(dataset) == SMALL_SIZES['seg'][split]
    sample = dataset[0]
    assert sample['img'].shape == (128, 256, 3)
    label = sample['gt_seg_map']
    assert label.shape == (128, 256)
    assert set(label.flat) <= set(range(19)) | {255}
    assert {0, 2} <= set(label.flat)  # every scene has a road and buildings


@pytest.mark.parametrize('split', ['train', 'val'])
def test_cls_loads_as_custom_dataset(demo_root, split):
    from mmpretrain.datasets import CustomDataset
    dataset = CustomDataset(data_root=str(demo_root / 'cls'), data_prefix=split,
                            pipeline=[dict(type='mmpretrain.LoadImageFromFile')])
    assert len(dataset) == len(CLS_CLASSES) * SMALL_SIZES['cls'][split]
    assert sorted(dataset.CLASSES) == sorted(CLS_CLASSES)
    sample = dataset[0]
    assert sample['img'].shape == (32, 32, 3)
    assert 0 <= sample['gt_label'] < len(CLS_CLASSES)


def test_cls_images_are_the_uci_scans_of_their_folder(demo_root):
    """Each image is the scikit-learn scan its file names (by index) upsampled bilinearly to 32x32 (PIL's
    bilinear resize as the reference, to rounding), in the folder of that scan's label; no scan is in both splits."""
    import cv2
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits
    digits = load_digits()
    indices = {}
    for split in ('train', 'val'):
        files = sorted((demo_root / 'cls' / split).glob('*/*.png'))
        assert len(files) == len(CLS_CLASSES) * SMALL_SIZES['cls'][split]
        indices[split] = {int(path.stem) for path in files}
        for path in files:
            index = int(path.stem)
            assert path.parent.name == str(digits.target[index])
            image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            assert image.shape == (32, 32) and image.dtype == np.uint8
            scan = Image.fromarray((digits.images[index] * 255 / 16).astype(np.float32), mode='F')
            expected = np.asarray(scan.resize((32, 32), Image.BILINEAR))
            assert np.abs(image - expected).max() <= 0.5 + 1e-4
    assert not indices['train'] & indices['val']
