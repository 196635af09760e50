# The demo classification data of tools/make_demo_data.py (class folders, 10 classes of 32x32 textures),
# modelled on mmpretrain::_base_/datasets/cifar10_bs16.py but read from files by CustomDataset.
dataset_type = 'CustomDataset'
data_root = 'data/demo/cls/'
data_preprocessor = dict(
    num_classes=10,
    # the generated colours are uniform in [0, 255]
    mean=[127.5, 127.5, 127.5],
    std=[73.6, 73.6, 73.6],
    to_rgb=True)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    # No augmentation: the generator already draws every texture with a random phase, frequency, contrast
    # and colours. CIFAR's RandomCrop(padding=4) pastes black borders into these textures, which stalled
    # the demo ResNets near chance; RandomFlip would turn a 45-degree grating into a 135-degree one.
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
