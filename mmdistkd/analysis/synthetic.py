"""Synthetic batches in the format each task's data preprocessor takes (``dict(inputs, data_samples)``), for
smoke tests of real configs and for the benchmark: no dataset needed."""
import torch


def box_masks(boxes, height, width):
    """One binary mask per box, filling the box (for instance segmentation heads, e.g. Mask R-CNN's)."""
    from mmdet.structures.mask import BitmapMasks
    masks = torch.zeros(len(boxes), height, width, dtype=torch.uint8)
    for mask, (x1, y1, x2, y2) in zip(masks, boxes.round().long().tolist()):
        mask[y1:y2, x1:x2] = 1
    return BitmapMasks(masks.numpy(), height, width)


def detection_batch(batch_size, height, width, num_classes, generator, with_masks=False):
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    samples = []
    for _ in range(batch_size):
        num_boxes = 3
        xy = torch.rand(num_boxes, 2, generator=generator) * torch.tensor([width * 0.6, height * 0.6])
        wh = (torch.rand(num_boxes, 2, generator=generator) * 0.3 + 0.1) * torch.tensor([width, height])
        boxes = torch.cat([xy, xy + wh], 1)
        sample = DetDataSample(metainfo=dict(img_shape=(height, width), ori_shape=(height, width),
                                             pad_shape=(height, width), scale_factor=(1.0, 1.0),
                                             batch_input_shape=(height, width)))
        sample.gt_instances = InstanceData(bboxes=boxes,
                                           labels=torch.randint(0, num_classes, (num_boxes, ), generator=generator))
        if with_masks:
            sample.gt_instances.masks = box_masks(boxes, height, width)
        sample.ignored_instances = InstanceData(bboxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.long))
        samples.append(sample)
    return samples


def segmentation_batch(batch_size, height, width, num_classes, generator):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    samples = []
    for _ in range(batch_size):
        label = torch.randint(0, num_classes, (1, height, width), generator=generator)
        label[:, :height // 8] = 255  # some ignored pixels, as in Cityscapes
        sample = SegDataSample(metainfo=dict(img_shape=(height, width), ori_shape=(height, width),
                                             pad_shape=(height, width)))
        sample.gt_sem_seg = PixelData(data=label)
        samples.append(sample)
    return samples


def classification_batch(batch_size, height, width, num_classes, generator):
    from mmpretrain.structures import DataSample
    return [DataSample().set_gt_label(int(torch.randint(0, num_classes, (1, ), generator=generator)))
            for _ in range(batch_size)]


SAMPLE_MAKERS = dict(det=detection_batch, seg=segmentation_batch, cls=classification_batch)


def synthetic_batch(task, batch_size, height, width, num_classes, seed=0, with_masks=False):
    """A random uint8 image batch with random ground truth for ``task`` in 'det', 'seg', 'cls'; ``with_masks``:
    detection boxes also get instance masks (see :func:`has_mask_head`)."""
    if with_masks and task != 'det':
        raise ValueError(f'with_masks is for detection batches, not {task!r}')
    generator = torch.Generator().manual_seed(seed)
    inputs = [torch.randint(0, 256, (3, height, width), dtype=torch.uint8, generator=generator)
              for _ in range(batch_size)]
    options = dict(with_masks=True) if with_masks else {}
    return dict(inputs=inputs,
                data_samples=SAMPLE_MAKERS[task](batch_size, height, width, num_classes, generator, **options))


def synthetic_batch_for(model, batch_size, height, width, seed=0):
    """:func:`synthetic_batch` with the ground truth ``model`` (a student) trains on: its task, its number of
    classes, and instance masks when it has a mask head."""
    from mmdistkd.utils.tasks import task_of
    return synthetic_batch(task_of(model), batch_size, height, width, num_classes_of(model), seed,
                           with_masks=has_mask_head(model))


def has_mask_head(model):
    """Whether a detector trains instance masks (Mask R-CNN's ``roi_head.mask_head``): its ground truth needs
    masks. Only such models get them: RTMDet's assigner, for one, takes the mask centres when masks are given."""
    return bool(getattr(getattr(model, 'roi_head', None), 'with_mask', False))


def fit_preprocessor_to_size(preprocessor, height, width):
    """mmseg's preprocessor pads every batch to its ``size`` (the training crop, 512x1024 for Cityscapes):
    make it pad to a reduced input size instead."""
    if getattr(preprocessor, 'size', None):
        preprocessor.size = (height, width)


def num_classes_of(model):
    """Classes of a detector's, segmentor's or classifier's head (for the synthetic ground truth)."""
    head = getattr(model, 'bbox_head', None) or getattr(model, 'decode_head', None) or \
        getattr(getattr(model, 'roi_head', None), 'bbox_head', None) or model.head
    return head.num_classes
