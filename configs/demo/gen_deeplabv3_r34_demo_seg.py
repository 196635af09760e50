# Distillation in generations (docs/tolerant.md) on the demo segmentation data: a student of the
# teacher's own architecture and recipe (the plain demo DeepLabV3-R34: only the first teacher is tolerant)
#     L = lambda * (CE + 0.4 CE_aux) + (1 - lambda) * (KL + 0.4 KL_aux), per pixel, temperature 1.
# tools/generations.py passes the previous generation's checkpoint as model.teacher_ckpt.
_base_ = ['./deeplabv3_r34_demo_seg_teacher.py', '../_base_/distill_runtime.py']
student_loss_weight = 0.5  # lambda; change it here: the KL's weight 1 - lambda follows

model = dict(
    _delete_=True,
    type='mmdistkd.SingleTeacherDistill',
    architecture=dict(cfg_path='mmdistkd::demo/deeplabv3_r34_demo_seg_teacher.py'),
    teacher=dict(cfg_path='mmdistkd::demo/tolerant_deeplabv3_r34_demo_seg_teacher.py'),
    teacher_ckpt=None,
    student_loss_weight=student_loss_weight,
    teacher_forward='seg_decode_aux',
    distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=dict(decode=dict(type='ModuleOutputs', source='decode_head.conv_seg'),
                               aux=dict(type='ModuleOutputs', source='auxiliary_head.conv_seg')),
        teacher_recorders=dict(decode=dict(type='ModuleOutputs', source='decode_head.conv_seg'),
                               aux=dict(type='ModuleOutputs', source='auxiliary_head.conv_seg')),
        distill_losses=dict(
            loss_kd_decode=dict(type='KLDivergence', tau=1.0, loss_weight=1 - student_loss_weight),
            loss_kd_aux=dict(type='KLDivergence', tau=1.0, loss_weight=0.4 * (1 - student_loss_weight))),
        loss_forward_mappings=dict(
            loss_kd_decode=dict(preds_S=dict(from_student=True, recorder='decode'),
                                preds_T=dict(from_student=False, recorder='decode')),
            loss_kd_aux=dict(preds_S=dict(from_student=True, recorder='aux'),
                             preds_T=dict(from_student=False, recorder='aux')))))
val_cfg = dict(_delete_=True, type='mmdistkd.SingleTeacherDistillValLoop')
