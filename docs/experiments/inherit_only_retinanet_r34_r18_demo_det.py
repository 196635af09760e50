# Inheriting alone on the demo detection data: the student of configs/demo/dpk_retinanet_r34_r18_demo_det.py with
# the same modules inherited from the teacher (FPN output convs of P3-P5 and P7, the head) and no distillation
# loss (the teacher then does not run), at the same budget: what the DPK demo row owes to inheriting.
# Run from the repo root, as `make demo` runs its stages:
#   python tools/train.py docs/experiments/inherit_only_retinanet_r34_r18_demo_det.py \
#       --cfg-options model.teacher_ckpt=work_dirs/demo/det/teacher/iter_1200.pth randomness.seed=0
_base_ = ['../../configs/demo/dpk_retinanet_r34_r18_demo_det.py']

model = dict(distiller=dict(_delete_=True, type='ConfigurableDistiller'))
