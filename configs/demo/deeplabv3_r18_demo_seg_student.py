# DeepLabV3 student for the demo segmentation data: the teacher's recipe with a quarter-width ResNetV1c-18,
# heads narrowed like upstream's deeplabv3_r18-d8, and a shorter schedule.
_base_ = ['./deeplabv3_r34_demo_seg_teacher.py']
# 250 iterations until 2026-12-04; 200 since, so that `make demo TASK=seg` trains 3 rows x 4 seeds in about 20
# minutes on 2 cores (docs/demo.md compares the two budgets' rankings).
max_iters = 200

model = dict(
    backbone=dict(depth=18, stem_channels=16, base_channels=16),  # stage widths 16, 32, 64, 128
    decode_head=dict(in_channels=128, channels=32),
    auxiliary_head=dict(in_channels=64, channels=16))

train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=max_iters, by_epoch=False)]
default_hooks = dict(checkpoint=dict(interval=max_iters))
