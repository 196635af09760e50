# ResNet student for the demo classification data: the teacher's recipe with a quarter-width
# ResNet_CIFAR-18 and a shorter schedule.
_base_ = ['./resnet34_demo_cls_teacher.py']
max_iters = 1000

model = dict(
    backbone=dict(depth=18, stem_channels=16, base_channels=16),  # stage widths 16, 32, 64, 128
    head=dict(in_channels=128))

train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=50, end=max_iters, eta_min=0.0005)
]
default_hooks = dict(checkpoint=dict(interval=max_iters))
