# Distillation in generations (docs/tolerant.md) on the demo detection data: a student of the teacher's
# own architecture and recipe (the plain demo RetinaNet-R34: only the first teacher is tolerant)
#     L = lambda * (focal + box losses) + (1 - lambda) * KL,
# the KL a per-class binary KL (sigmoid, temperature 1) on the classification logits of every anchor of
# every FPN level. tools/generations.py passes the previous generation's checkpoint as model.teacher_ckpt.
_base_ = ['./retinanet_r34_demo_det_teacher.py', '../_base_/distill_runtime.py', '../_base_/recipes/generations.py']

model = dict(
    _base_.generation_model,
    _delete_=True,
    architecture=dict(cfg_path='mmdistkd::demo/retinanet_r34_demo_det_teacher.py'),
    teacher=dict(cfg_path='mmdistkd::demo/tolerant_retinanet_r34_demo_det_teacher.py'),
    distiller=_base_.generation_retinanet_distiller)
