# RetinaNet teacher for the demo detection data: mmdet's retinanet_r50_fpn_1x_coco.py recipe (same bases)
# shrunk for CPU: a ResNet-34 of half width trained from scratch, a narrow FPN and head.
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py', '../_base_/datasets/demo_det.py',
    'mmdet::_base_/schedules/schedule_1x.py', 'mmdet::_base_/default_runtime.py'
]
max_iters = 1200

model = dict(
    backbone=dict(
        depth=34,
        base_channels=32,  # stage widths 32, 64, 128, 256
        # from scratch: nothing frozen, BN statistics learned
        frozen_stages=-1,
        norm_eval=False,
        init_cfg=None),
    # the neck and head widths are shared with the student so their features can be compared directly
    neck=dict(in_channels=[32, 64, 128, 256], out_channels=64),
    bbox_head=dict(
        num_classes=3,
        in_channels=64,
        feat_channels=64,
        stacked_convs=2,
        # 16-56 px objects: anchors of 16-25 px on P3 instead of 32-50 px
        anchor_generator=dict(octave_base_scale=2)))

train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=0.0001),
    # from-scratch RetinaNet can spike in the first iterations
    clip_grad=dict(max_norm=35, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=100, end=max_iters, eta_min=0.0002)
]
default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(by_epoch=False, interval=max_iters))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
