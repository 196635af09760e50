# Distillation in generations (docs/tolerant.md) on the demo classification data: a student of the
# teacher's own architecture and recipe (the plain demo ResNet-34: only the first teacher is tolerant)
#     L = lambda * CE + (1 - lambda) * KL(p_teacher || p_student), temperature 1.
# tools/generations.py passes the previous generation's checkpoint as model.teacher_ckpt; the teacher's
# architecture is the tolerant teacher's, which every later generation shares.
_base_ = ['./resnet34_demo_cls_teacher.py', '../_base_/distill_runtime.py', '../_base_/recipes/generations.py']

model = dict(
    _base_.generation_model,
    _delete_=True,
    architecture=dict(cfg_path='mmdistkd::demo/resnet34_demo_cls_teacher.py'),
    teacher=dict(cfg_path='mmdistkd::demo/tolerant_resnet34_demo_cls_teacher.py'),
    distiller=_base_.generation_classifier_distiller)
