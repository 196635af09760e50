# RTMDet-tiny-like student for the demo detection data (docs/experiments/rtmdet_demo.md): the teacher's recipe
# (rtmdet_demo_det_teacher.py) with RTMDet-tiny's depth (deepen 0.167) at an eighth of upstream width
# (widen 0.125: stage widths 16, 32, 64, 128) and a 32-channel neck and head. The baseline and the DIST student
# train with this recipe.
_base_ = ['./rtmdet_demo_det_teacher.py']
max_iters = 400

model = dict(
    backbone=dict(deepen_factor=0.167, widen_factor=0.125),
    neck=dict(in_channels=[32, 64, 128], out_channels=32),
    bbox_head=dict(in_channels=32, feat_channels=32))

train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=1.0e-5, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=50, end=max_iters, eta_min=_base_.base_lr * 0.05)
]
default_hooks = dict(checkpoint=dict(interval=max_iters))
