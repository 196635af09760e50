# DeepLabV3 teacher for the demo segmentation data: mmseg's deeplabv3_r50-d8 Cityscapes recipe (same
# bases) shrunk for CPU: a half-width ResNetV1c-34 (output stride 8) trained from scratch, narrow heads.
_base_ = [
    'mmseg::_base_/models/deeplabv3_r50-d8.py', '../_base_/datasets/demo_seg.py',
    'mmseg::_base_/default_runtime.py', 'mmseg::_base_/schedules/schedule_40k.py'
]
max_iters = 500
crop_size = (128, 256)  # as in demo_seg.py: the data preprocessor pads batches to it
norm_cfg = dict(type='BN', requires_grad=True)  # one process: no SyncBN

model = dict(
    data_preprocessor=dict(size=crop_size),
    pretrained=None,
    backbone=dict(
        depth=34,
        stem_channels=32,
        base_channels=32,  # stage widths 32, 64, 128, 256
        norm_cfg=norm_cfg),
    decode_head=dict(
        in_channels=256,
        channels=64,
        # the upstream rates (12, 24, 36) exceed a 16x32 feature map
        dilations=(1, 2, 4, 6),
        norm_cfg=norm_cfg),
    auxiliary_head=dict(in_channels=128, channels=32, norm_cfg=norm_cfg))

train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=max_iters, by_epoch=False)]
default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(interval=max_iters))
randomness = dict(seed=0)
