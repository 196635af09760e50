# ResNet student for the demo classification data: the teacher's recipe with a quarter-width
# ResNet_CIFAR-18, batch 16, a higher learning rate with a longer warm-up, and a shorter schedule.
_base_ = ['./resnet34_demo_cls_teacher.py']
max_iters = 500
warmup_iters = 125

model = dict(
    backbone=dict(depth=18, stem_channels=16, base_channels=16),  # stage widths 16, 32, 64, 128
    head=dict(in_channels=128))

# Measured (val top-1 of the student alone / with DIST / with KD + DPK). On the texture data the demo used until
# 2026-12-04 (seeds 0 and 1): at batch 8 and lr 0.05 the student alone stayed near chance for 1000 iterations
# (11-13%); at lr 0.1 it learned (49-79%) but DIST students blew up (10%); at batch 16, lr 0.1 and 800 iterations
# a 50-iteration warm-up let a DIST seed blow up (8%), and with a 200-iteration one a baseline seed (38.0%) and a
# DIST seed (14.5%) still stayed at chance through the peak lr on another machine. On the real digits
# (2026-12-04, seeds 0-3) this recipe leaves chance on every seed: with 50 training scans per digit and 800
# iterations every run ended at 98.0-98.8% (means 98.31 / 98.31 / 98.38, the teacher 98.92: a ceiling); the
# demo uses 20 scans per digit and 500 iterations (the warm-up a quarter of them, as at 800).
train_dataloader = dict(batch_size=16)
optim_wrapper = dict(optimizer=dict(lr=0.1))

train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=warmup_iters),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=warmup_iters, end=max_iters, eta_min=0.0005)
]
default_hooks = dict(checkpoint=dict(interval=max_iters))
