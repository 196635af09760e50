# The demo classification data of tools/make_demo_data.py: real handwritten digits (scikit-learn's copy of the
# UCI 8x8 scans, upsampled to 32x32 grey PNGs; 20 train and 150 val per digit) in class folders, modelled on
# mmpretrain::_base_/datasets/cifar10_bs16.py but read from files by CustomDataset.
dataset_type = 'CustomDataset'
data_root = 'data/demo/cls/'
data_preprocessor = dict(
    num_classes=10,
    # the training scans' grey level: mean 77.4, standard deviation 81.9 (loaded as 3 equal channels)
    mean=[77.4, 77.4, 77.4],
    std=[81.9, 81.9, 81.9],
    to_rgb=True)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    # CIFAR's shift augmentation; the scans' background is black, like the padding. No flip: a mirrored
    # digit is another shape (or another digit).
    dict(type='RandomCrop', crop_size=32, padding=4),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root, data_prefix='train', pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=16,
    num_workers=2,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, data_prefix='val', pipeline=test_pipeline))
val_evaluator = dict(type='Accuracy', topk=(1, ))

test_dataloader = val_dataloader
test_evaluator = val_evaluator
