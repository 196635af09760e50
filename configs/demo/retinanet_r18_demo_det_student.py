# RetinaNet student for the demo detection data: the teacher's recipe with a quarter-width ResNet-18
# backbone, the same FPN and head widths, half the peak lr and a shorter schedule.
_base_ = ['./retinanet_r34_demo_det_teacher.py']
# 600 iterations until 2026-12-04; 400 since, so that `make demo` trains 4 rows x 4 seeds in about 20 minutes
# on 2 cores (docs/demo.md compares the two budgets' rankings).
max_iters = 400

model = dict(
    backbone=dict(depth=18, base_channels=16),  # stage widths 16, 32, 64, 128
    neck=dict(in_channels=[16, 32, 64, 128]))

train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
# Half the teacher's peak lr. At 0.02 the from-scratch student's classifier destabilised at the peak in three of
# four seeds (loss_cls climbing from 0.89 to 1.10 over iterations 120-180, grad norm 4-5, far below the clip), and
# those runs ended at 0.030-0.050 mAP against 0.135 for the fourth; at 0.01 all four ended at 0.098-0.119. Every
# row (baseline, DIST, DPK) trains with this recipe.
optim_wrapper = dict(optimizer=dict(lr=0.01))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=100, end=max_iters, eta_min=0.0002)
]
default_hooks = dict(checkpoint=dict(interval=max_iters))
