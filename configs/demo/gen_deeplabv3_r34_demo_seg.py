# Distillation in generations (docs/tolerant.md) on the demo segmentation data: a student of the
# teacher's own architecture and recipe (the plain demo DeepLabV3-R34: only the first teacher is tolerant)
#     L = lambda * (CE + 0.4 CE_aux) + (1 - lambda) * (KL + 0.4 KL_aux), per pixel, temperature 1.
# tools/generations.py passes the previous generation's checkpoint as model.teacher_ckpt.
_base_ = ['./deeplabv3_r34_demo_seg_teacher.py', '../_base_/distill_runtime.py', '../_base_/recipes/generations.py']

model = dict(
    _base_.generation_model,
    _delete_=True,
    architecture=dict(cfg_path='mmdistkd::demo/deeplabv3_r34_demo_seg_teacher.py'),
    teacher=dict(cfg_path='mmdistkd::demo/tolerant_deeplabv3_r34_demo_seg_teacher.py'),
    teacher_forward='seg_decode_aux',
    distiller=_base_.generation_decode_aux_distiller)
