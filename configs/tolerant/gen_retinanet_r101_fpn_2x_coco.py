# Distillation in generations (docs/tolerant.md) on COCO: every generation is mmdet's RetinaNet
# R101-FPN 2x (plain focal loss: only the first teacher is tolerant), distilled from the previous one:
#     L = lambda * (focal + box losses) + (1 - lambda) * KL,
# the KL a per-class binary KL (sigmoid, temperature 1) on the classification logits of every anchor of
# every FPN level. Run the chain with tools/generations.py, which passes each previous generation's
# checkpoint as model.teacher_ckpt:
#   python tools/generations.py configs/tolerant/tolerant_retinanet_r101_fpn_2x_coco.py \
#       configs/tolerant/gen_retinanet_r101_fpn_2x_coco.py --generations 2 --work-dir work_dirs/gen_retinanet
_base_ = [
    'mmdet::retinanet/retinanet_r101_fpn_2x_coco.py', '../_base_/distill_runtime.py',
    '../_base_/recipes/generations.py'
]

model = dict(
    _base_.generation_model,
    _delete_=True,
    architecture=dict(cfg_path='mmdet::retinanet/retinanet_r101_fpn_2x_coco.py'),
    teacher=dict(cfg_path='mmdistkd::tolerant/tolerant_retinanet_r101_fpn_2x_coco.py'),
    distiller=_base_.generation_retinanet_distiller)
