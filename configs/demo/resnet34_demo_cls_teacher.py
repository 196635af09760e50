# ResNet teacher for the demo classification data: mmpretrain's resnet34_8xb16_cifar10.py recipe (same
# bases) shrunk for CPU: a half-width ResNet_CIFAR-34 and an iteration-based schedule.
_base_ = [
    'mmpretrain::_base_/models/resnet34_cifar.py', '../_base_/datasets/demo_cls.py',
    'mmpretrain::_base_/schedules/cifar10_bs128.py', 'mmpretrain::_base_/default_runtime.py'
]
max_iters = 1500

model = dict(
    backbone=dict(stem_channels=32, base_channels=32),  # stage widths 32, 64, 128, 256
    head=dict(num_classes=10, in_channels=256))

train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=0.0005))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=50, end=max_iters, eta_min=0.0005)
]
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(by_epoch=False, interval=max_iters))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
