# Distillation in generations (docs/tolerant.md) on the demo classification data: a student of the
# teacher's own architecture and recipe (the plain demo ResNet-34: only the first teacher is tolerant)
#     L = lambda * CE + (1 - lambda) * KL(p_teacher || p_student), temperature 1.
# tools/generations.py passes the previous generation's checkpoint as model.teacher_ckpt; the teacher's
# architecture is the tolerant teacher's, which every later generation shares.
_base_ = ['./resnet34_demo_cls_teacher.py', '../_base_/distill_runtime.py']
student_loss_weight = 0.5  # lambda; change it here: the KL's weight 1 - lambda follows

model = dict(
    _delete_=True,
    type='mmdistkd.SingleTeacherDistill',
    architecture=dict(cfg_path='mmdistkd::demo/resnet34_demo_cls_teacher.py'),
    teacher=dict(cfg_path='mmdistkd::demo/tolerant_resnet34_demo_cls_teacher.py'),
    teacher_ckpt=None,
    student_loss_weight=student_loss_weight,
    distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=dict(logits=dict(type='ModuleOutputs', source='head.fc')),
        teacher_recorders=dict(logits=dict(type='ModuleOutputs', source='head.fc')),
        distill_losses=dict(loss_kd=dict(type='KLDivergence', tau=1.0, loss_weight=1 - student_loss_weight)),
        loss_forward_mappings=dict(loss_kd=dict(
            preds_S=dict(from_student=True, recorder='logits'),
            preds_T=dict(from_student=False, recorder='logits')))))
val_cfg = dict(_delete_=True, type='mmdistkd.SingleTeacherDistillValLoop')
