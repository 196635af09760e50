# RetinaNet student for the demo detection data: the teacher's recipe with a quarter-width ResNet-18
# backbone, the same FPN and head widths, and a shorter schedule.
_base_ = ['./retinanet_r34_demo_det_teacher.py']
max_iters = 600

model = dict(
    backbone=dict(depth=18, base_channels=16),  # stage widths 16, 32, 64, 128
    neck=dict(in_channels=[16, 32, 64, 128]))

train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=100, end=max_iters, eta_min=0.0002)
]
default_hooks = dict(checkpoint=dict(interval=max_iters))
