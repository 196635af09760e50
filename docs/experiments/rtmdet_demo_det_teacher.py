# RTMDet teacher for the demo detection data (docs/experiments/rtmdet_demo.md): the model of mmdet's
# rtmdet_l_8xb32-300e_coco.py at RTMDet-S depth (deepen 0.33) and a quarter of its width (widen 0.25: stage widths
# 32, 64, 128, 256), a 64-channel neck and head, trained from scratch on CPU.
# Written out rather than inherited: mmengine refuses a key defined in two bases, and RTMDet's config and the
# demo dataset both define the data pipelines and loaders. What differs from upstream and why:
# - BN instead of SyncBN (one CPU process), no pretrained backbone (the demo trains everything from scratch);
# - the demo pipeline (128x128, flips only): no mosaic, mixup or the pipeline switch of the last epochs;
# - no EMAHook: an EMA of a few hundred iterations would mostly average the first ones;
# - iteration-based, a few hundred iterations of batch 8: RTMDet's AdamW (lr 0.004, weight decay 0.05, none on
#   norms and biases) with its warm-up shortened to 50 iterations, cosine to 5% of the peak as upstream, and
#   gradient clipping as the demo RetinaNet's, because a from-scratch QualityFocalLoss/GIoU head can spike early.
# The DIST student (rtmdet_tiny_demo_det_student.py) trains with this recipe too.
_base_ = [
    '../../configs/_base_/datasets/demo_det.py', 'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py'
]
max_iters = 800
base_lr = 0.004
norm_cfg = dict(type='BN')
act_cfg = dict(type='SiLU', inplace=True)

model = dict(
    type='RTMDet',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[103.53, 116.28, 123.675],
        std=[57.375, 57.12, 58.395],
        bgr_to_rgb=False,
        batch_augments=None),
    backbone=dict(
        type='CSPNeXt',
        arch='P5',
        expand_ratio=0.5,
        deepen_factor=0.33,
        widen_factor=0.25,
        channel_attention=True,
        norm_cfg=norm_cfg,
        act_cfg=act_cfg),
    neck=dict(
        type='CSPNeXtPAFPN',
        in_channels=[64, 128, 256],
        out_channels=64,
        num_csp_blocks=1,
        expand_ratio=0.5,
        norm_cfg=norm_cfg,
        act_cfg=act_cfg),
    bbox_head=dict(
        type='RTMDetSepBNHead',
        num_classes=3,
        in_channels=64,
        stacked_convs=2,
        feat_channels=64,
        # strides 8-32 on 128x128 images: 16x16 to 4x4 locations for the 16-56 px objects
        anchor_generator=dict(type='MlvlPointGenerator', offset=0, strides=[8, 16, 32]),
        bbox_coder=dict(type='DistancePointBBoxCoder'),
        loss_cls=dict(type='QualityFocalLoss', use_sigmoid=True, beta=2.0, loss_weight=1.0),
        loss_bbox=dict(type='GIoULoss', loss_weight=2.0),
        with_objectness=False,
        exp_on_reg=False,  # as RTMDet-S and -tiny
        share_conv=True,
        pred_kernel_size=1,
        norm_cfg=norm_cfg,
        act_cfg=act_cfg),
    train_cfg=dict(
        assigner=dict(type='DynamicSoftLabelAssigner', topk=13),
        allowed_border=-1,
        pos_weight=-1,
        debug=False),
    test_cfg=dict(
        nms_pre=30000,
        min_bbox_size=0,
        score_thr=0.001,
        nms=dict(type='nms', iou_threshold=0.65),
        max_per_img=300))

train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=base_lr, weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0, bias_decay_mult=0, bypass_duplicate=True),
    clip_grad=dict(max_norm=35, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=1.0e-5, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=50, end=max_iters, eta_min=base_lr * 0.05)
]
default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(by_epoch=False, interval=max_iters))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
