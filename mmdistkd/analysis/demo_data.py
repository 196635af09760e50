"""Generate the small, learnable demo datasets used by ``configs/demo``.

Detection and segmentation images are drawn procedurally (numpy + OpenCV); the classification images are real
scans shipped with scikit-learn. Nothing is downloaded; every split is deterministic for a given seed, in the
formats the real OpenMMLab datasets read:

* ``det``: COCO detection (``annotations/instances_{train,val}.json`` + ``{train,val}/*.png``), 3 classes of
  coloured shapes on textured backgrounds, read by ``mmdet.datasets.CocoDataset``.
* ``seg``: Cityscapes (``leftImg8bit/<split>/<city>/*_leftImg8bit.png`` +
  ``gtFine/<split>/<city>/*_gtFine_labelTrainIds.png``), street-like scenes, read by
  ``mmseg.datasets.CityscapesDataset``.
* ``cls``: class folders (``{train,val}/<digit>/*.png``), real handwritten digits: scikit-learn's copy of
  the UCI 8x8 scans, upsampled to 32x32, read by ``mmpretrain.datasets.CustomDataset``.

Written by ``tools/make_demo_data.py`` and, when missing, by ``tools/demo.py``.
"""
import colorsys
import json
import os
import os.path as osp

import cv2
import numpy as np

# Images per split. ``small=True`` (``--small``) is for tests: enough to load, too few to learn from.
SIZES = {
    'det': {'train': 300, 'val': 60},
    'seg': {'train': 100, 'val': 30},
    # per digit (the scans hold 174-183 per digit). With 50 training scans per digit every demo run, students
    # and teacher, ended at 98.0-98.9% (2026-12-04): a ceiling where no method can show anything; 20 leave
    # room. The large val split keeps the accuracy's standard error near half a point.
    'cls': {'train': 20, 'val': 150},
}
SMALL_SIZES = {
    'det': {'train': 8, 'val': 4},
    'seg': {'train': 4, 'val': 2},
    'cls': {'train': 3, 'val': 2},
}
# One seed offset per (task, split) so that generating a subset of tasks gives the same images.
SPLIT_SEED = {'train': 0, 'val': 1}
TASK_SEED = {'det': 100, 'seg': 200, 'cls': 300}


def _rng(seed, task, split):
    return np.random.default_rng([seed, TASK_SEED[task], SPLIT_SEED[split]])


def _write_png(path, bgr_or_gray):
    os.makedirs(osp.dirname(path), exist_ok=True)
    if not cv2.imwrite(path, bgr_or_gray):
        raise IOError(f'could not write {path}')


def _hsv_to_bgr(hue_deg, sat, val):
    r, g, b = colorsys.hsv_to_rgb((hue_deg % 360) / 360, sat, val)
    return np.array([b, g, r]) * 255


def _smooth_noise(rng, height, width, cells, channels=3):
    """Low-frequency noise in [0, 1]: a coarse random grid upsampled bicubically."""
    coarse = rng.random((cells, cells, channels)).astype(np.float32)
    smooth = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    return np.clip(smooth.reshape(height, width, channels), 0, 1)


# ---------------------------------------------------------------------------------------------- det

DET_CLASSES = ('rectangle', 'ellipse', 'triangle')
# Each class has a typical hue, but hues are jittered and sometimes random, so the shape has to be seen.
DET_CLASS_HUE = {'rectangle': 0, 'ellipse': 120, 'triangle': 240}
DET_RANDOM_HUE_PROB = 0.3
DET_IMAGE_SIZE = 128
DET_OBJECT_SIZE = (16, 56)


def _det_background(rng, size):
    base = _smooth_noise(rng, size, size, cells=rng.integers(2, 6)) * 160 + 40
    if rng.random() < 0.5:  # stripes: straight edges that are not objects
        angle = rng.uniform(0, np.pi)
        yy, xx = np.mgrid[0:size, 0:size]
        stripes = np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * rng.uniform(0.2, 0.8))
        base += (stripes > 0)[..., None] * rng.uniform(-40, 40, size=3)
    base += rng.normal(0, 12, size=base.shape)
    return base


def _det_polygon(rng, cls_name, x0, y0, w, h):
    """The outline of one object as an (N, 2) int array of (x, y) points inside the box."""
    if cls_name == 'rectangle':
        return np.array([[x0, y0], [x0 + w - 1, y0], [x0 + w - 1, y0 + h - 1], [x0, y0 + h - 1]])
    if cls_name == 'ellipse':
        center = (x0 + (w - 1) // 2, y0 + (h - 1) // 2)
        return cv2.ellipse2Poly(center, ((w - 1) // 2, (h - 1) // 2), 0, 0, 360, 10)
    apex_x = x0 + int(rng.integers(0, w))  # triangle: apex anywhere on the top edge
    if rng.random() < 0.5:  # upside down
        return np.array([[apex_x, y0 + h - 1], [x0, y0], [x0 + w - 1, y0]])
    return np.array([[apex_x, y0], [x0, y0 + h - 1], [x0 + w - 1, y0 + h - 1]])


def _det_image(rng, size):
    image = _det_background(rng, size)
    objects, boxes = [], []
    for _ in range(int(rng.integers(1, 5))):
        for _attempt in range(20):  # objects do not overlap, so each box is the tight box of its pixels
            w, h = rng.integers(*DET_OBJECT_SIZE, size=2)
            x0, y0 = rng.integers(0, size - w), rng.integers(0, size - h)
            if all(x0 + w + 2 <= bx or bx + bw + 2 <= x0 or y0 + h + 2 <= by or by + bh + 2 <= y0
                   for bx, by, bw, bh in boxes):
                break
        else:
            continue
        cls_name = DET_CLASSES[rng.integers(len(DET_CLASSES))]
        polygon = _det_polygon(rng, cls_name, int(x0), int(y0), int(w), int(h))
        mask = np.zeros((size, size), np.uint8)
        cv2.fillPoly(mask, [polygon.astype(np.int32)], 1)
        hue = rng.uniform(0, 360) if rng.random() < DET_RANDOM_HUE_PROB else \
            DET_CLASS_HUE[cls_name] + rng.normal(0, 25)
        color = _hsv_to_bgr(hue, rng.uniform(0.5, 1.0), rng.uniform(0.5, 1.0))
        texture = rng.normal(0, 15, size=(size, size, 3))
        image[mask > 0] = (color + texture)[mask > 0]
        ys, xs = np.nonzero(mask)
        box = [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)]
        boxes.append(box)
        objects.append(dict(category=cls_name, bbox=box, area=int(mask.sum()),
                            segmentation=[polygon.reshape(-1).astype(int).tolist()]))
    return np.clip(image, 0, 255).astype(np.uint8), objects


def make_det(out_dir, seed, sizes):
    categories = [dict(id=i + 1, name=name, supercategory='shape') for i, name in enumerate(DET_CLASSES)]
    category_id = {c['name']: c['id'] for c in categories}
    for split, num_images in sizes.items():
        rng = _rng(seed, 'det', split)
        images, annotations = [], []
        for image_id in range(1, num_images + 1):
            image, objects = _det_image(rng, DET_IMAGE_SIZE)
            file_name = f'{image_id:06d}.png'
            _write_png(osp.join(out_dir, split, file_name), image)
            images.append(dict(id=image_id, file_name=file_name, height=DET_IMAGE_SIZE, width=DET_IMAGE_SIZE))
            for obj in objects:
                annotations.append(dict(id=len(annotations) + 1, image_id=image_id,
                                        category_id=category_id[obj['category']], bbox=obj['bbox'],
                                        area=obj['area'], segmentation=obj['segmentation'], iscrowd=0))
        ann_file = osp.join(out_dir, 'annotations', f'instances_{split}.json')
        os.makedirs(osp.dirname(ann_file), exist_ok=True)
        with open(ann_file, 'w') as f:
            json.dump(dict(images=images, annotations=annotations, categories=categories), f)
        print(f'det/{split}: {len(images)} images, {len(annotations)} boxes -> {ann_file}')


# ---------------------------------------------------------------------------------------------- seg

# Cityscapes trainIds used by the demo scenes (the other 19 - 7 classes never occur).
ROAD, SIDEWALK, BUILDING, POLE, VEGETATION, SKY, CAR = 0, 1, 2, 5, 8, 10, 13
IGNORE = 255
SEG_HEIGHT, SEG_WIDTH = 128, 256
SEG_CITIES = {'train': ('demotown', 'samplecity'), 'val': ('valburg', )}
# Mean BGR colour of each class; every image shifts them (lighting) and adds texture.
SEG_COLORS = {
    ROAD: (128, 64, 128), SIDEWALK: (170, 170, 190), BUILDING: (80, 90, 110), POLE: (150, 150, 150),
    VEGETATION: (40, 140, 60), SKY: (220, 170, 120), CAR: (150, 60, 20), IGNORE: (20, 20, 20),
}


def _seg_scene(rng):
    """A label map of trainIds, painted back to front like a street seen from a car."""
    h, w = SEG_HEIGHT, SEG_WIDTH
    label = np.full((h, w), SKY, np.uint8)
    horizon = int(rng.integers(h * 0.35, h * 0.55))
    label[horizon:] = SIDEWALK
    # buildings: a skyline of blocks standing on the horizon
    x = 0
    while x < w:
        block_w = int(rng.integers(20, 60))
        label[max(0, horizon - int(rng.integers(15, horizon))):horizon, x:x + block_w] = BUILDING
        x += block_w + int(rng.integers(0, 12))
    # trees in front of the buildings
    for _ in range(int(rng.integers(1, 5))):
        center = (int(rng.integers(0, w)), int(horizon - rng.integers(5, 25)))
        axes = (int(rng.integers(8, 25)), int(rng.integers(6, 18)))
        cv2.ellipse(label, center, axes, 0, 0, 360, int(VEGETATION), -1)
    # the road: a trapezoid from a vanishing point near the horizon to the bottom edge
    vanish_x = int(rng.integers(w * 0.35, w * 0.65))
    half_top, half_bottom = int(rng.integers(4, 15)), int(rng.integers(w * 0.3, w * 0.55))
    road = np.array([[vanish_x - half_top, horizon], [vanish_x + half_top, horizon],
                     [vanish_x + half_bottom, h - 1], [vanish_x - half_bottom, h - 1]])
    cv2.fillPoly(label, [road.astype(np.int32)], int(ROAD))
    # poles on the sidewalks
    for _ in range(int(rng.integers(0, 3))):
        px = int(rng.integers(0, w))
        label[int(horizon - rng.integers(10, 30)):int(rng.integers(horizon + 5, h)), px:px + 2] = POLE
    # cars on the road, bigger when lower (closer)
    for _ in range(int(rng.integers(0, 4))):
        bottom = int(rng.integers(horizon + 8, h))
        scale = (bottom - horizon) / (h - horizon)
        car_w, car_h = int(20 + 50 * scale), int(10 + 25 * scale)
        road_row = np.nonzero(label[bottom - 1] == ROAD)[0]
        if len(road_row) == 0:
            continue
        cx = int(rng.choice(road_row))
        x0, y0 = max(0, cx - car_w // 2), max(0, bottom - car_h)
        label[y0:bottom, x0:cx + car_w // 2] = CAR
        label[y0:y0 + car_h // 3, x0 + car_w // 5:cx + car_w // 2 - car_w // 5] = CAR  # cabin
    # the ego vehicle's hood is void in Cityscapes, and so it is here
    if rng.random() < 0.5:
        hood = int(rng.integers(5, 15))
        cv2.ellipse(label, (w // 2, h + hood), (w // 2 + 30, 2 * hood), 0, 180, 360, IGNORE, -1)
    return label


def _seg_image(rng, label):
    h, w = label.shape
    image = np.zeros((h, w, 3), np.float32)
    light = rng.uniform(0.7, 1.3)
    for train_id, color in SEG_COLORS.items():
        mask = label == train_id
        if mask.any():
            image[mask] = (np.array(color) + rng.normal(0, 20, size=3)) * light
    yy, xx = np.mgrid[0:h, 0:w]
    # textures so that classes differ in more than their mean colour
    windows = ((yy % 8 < 4) & (xx % 6 < 3)) * rng.uniform(20, 50)
    image[label == BUILDING] += windows[label == BUILDING][:, None]
    leaves = _smooth_noise(rng, h, w, cells=40, channels=1)[..., 0] * 60 - 30
    image[label == VEGETATION] += leaves[label == VEGETATION][:, None]
    sky_gradient = (yy / h) * 40
    image[label == SKY] += sky_gradient[label == SKY][:, None]
    image += rng.normal(0, 8, size=image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def make_seg(out_dir, seed, sizes):
    for split, num_images in sizes.items():
        rng = _rng(seed, 'seg', split)
        cities = SEG_CITIES[split]
        for index in range(num_images):
            city = cities[index % len(cities)]
            stem = f'{city}_{index // len(cities):06d}_000019'
            label = _seg_scene(rng)
            _write_png(osp.join(out_dir, 'leftImg8bit', split, city, f'{stem}_leftImg8bit.png'),
                       _seg_image(rng, label))
            _write_png(osp.join(out_dir, 'gtFine', split, city, f'{stem}_gtFine_labelTrainIds.png'), label)
        print(f'seg/{split}: {num_images} images of {SEG_WIDTH}x{SEG_HEIGHT} in {", ".join(cities)} '
              f'-> {osp.join(out_dir, "leftImg8bit", split)}')


# ---------------------------------------------------------------------------------------------- cls

CLS_SIZE = 32  # ResNet_CIFAR's input size; the scans are 8x8
CLS_CLASSES = tuple(str(digit) for digit in range(10))
DIGITS_MAX = 16  # the scans' grey levels are 0-16


def load_digit_scans():
    """The UCI handwritten digits bundled with scikit-learn: 1,797 real 8x8 scans of 43 writers' digits, in
    grey levels 0-16, with their labels (``sklearn.datasets.load_digits``, read from the installed package)."""
    from sklearn.datasets import load_digits
    digits = load_digits()
    return digits.images, digits.target


def _cls_image(scan):
    """An 8x8 scan as a CLS_SIZE x CLS_SIZE 8-bit grey image (bilinear upsampling of the 0-16 levels)."""
    upsampled = cv2.resize(scan.astype(np.float32) * (255 / DIGITS_MAX), (CLS_SIZE, CLS_SIZE),
                           interpolation=cv2.INTER_LINEAR)
    return np.clip(np.rint(upsampled), 0, 255).astype(np.uint8)


def make_cls(out_dir, seed, sizes):
    """Real images: per class, a seeded draw of ``sizes[split]`` scans for each split (disjoint)."""
    scans, labels = load_digit_scans()
    rng = np.random.default_rng([seed, TASK_SEED['cls']])
    per_class = {digit: rng.permutation(np.flatnonzero(labels == digit)) for digit in range(len(CLS_CLASSES))}
    offset = 0
    for split, num_per_class in sizes.items():
        for digit, indices in per_class.items():
            for index in indices[offset:offset + num_per_class]:
                _write_png(osp.join(out_dir, split, CLS_CLASSES[digit], f'{index:04d}.png'), _cls_image(scans[index]))
        offset += num_per_class
        print(f'cls/{split}: {len(CLS_CLASSES)} digits x {num_per_class} scans upsampled to {CLS_SIZE}x{CLS_SIZE} '
              f'-> {osp.join(out_dir, split)}')


# ---------------------------------------------------------------------------------------------- all tasks

MAKERS = {'det': make_det, 'seg': make_seg, 'cls': make_cls}


def generate_demo_data(out_dir='data/demo', tasks=('det', 'seg', 'cls'), seed=0, small=False):
    """Write the demo datasets of ``tasks`` under ``out_dir/<task>/``."""
    sizes = SMALL_SIZES if small else SIZES
    for task in tasks:
        MAKERS[task](osp.join(out_dir, task), seed, sizes[task])
