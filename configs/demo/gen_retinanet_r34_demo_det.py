# Distillation in generations (docs/tolerant.md) on the demo detection data: a student of the teacher's
# own architecture and recipe (the plain demo RetinaNet-R34: only the first teacher is tolerant)
#     L = lambda * (focal + box losses) + (1 - lambda) * KL,
# the KL a per-class binary KL (sigmoid, temperature 1) on the classification logits of every anchor of
# every FPN level. tools/generations.py passes the previous generation's checkpoint as model.teacher_ckpt.
_base_ = ['./retinanet_r34_demo_det_teacher.py', '../_base_/distill_runtime.py']
student_loss_weight = 0.5  # lambda; change it here: the KL's weight 1 - lambda follows

model = dict(
    _delete_=True,
    type='mmdistkd.SingleTeacherDistill',
    architecture=dict(cfg_path='mmdistkd::demo/retinanet_r34_demo_det_teacher.py'),
    teacher=dict(cfg_path='mmdistkd::demo/tolerant_retinanet_r34_demo_det_teacher.py'),
    teacher_ckpt=None,
    student_loss_weight=student_loss_weight,
    distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=dict(cls=dict(type='ModuleOutputs', source='bbox_head.retina_cls')),
        teacher_recorders=dict(cls=dict(type='ModuleOutputs', source='bbox_head.retina_cls')),
        distill_losses=dict(loss_kd=dict(type='KLDivergence', sigmoid=True, tau=1.0,
                                         loss_weight=1 - student_loss_weight)),
        loss_forward_mappings=dict(loss_kd=dict(
            preds_S=dict(from_student=True, recorder='cls', record_idx='all'),
            preds_T=dict(from_student=False, recorder='cls', record_idx='all')))))
val_cfg = dict(_delete_=True, type='mmdistkd.SingleTeacherDistillValLoop')
