# Distillation in generations (docs/tolerant.md) on Cityscapes: every generation is mmseg's DeepLabV3
# R101-D8 80k (plain cross-entropy: only the first teacher is tolerant), distilled from the previous one:
#     L = lambda * (CE + 0.4 CE_aux) + (1 - lambda) * (KL + 0.4 KL_aux), per pixel, temperature 1.
# Run the chain with tools/generations.py, which passes each previous generation's checkpoint as
# model.teacher_ckpt:
#   python tools/generations.py configs/tolerant/tolerant_deeplabv3_r101_cityscapes.py \
#       configs/tolerant/gen_deeplabv3_r101_cityscapes.py --generations 2 --work-dir work_dirs/gen_deeplabv3
_base_ = ['mmseg::deeplabv3/deeplabv3_r101-d8_4xb2-80k_cityscapes-512x1024.py', '../_base_/distill_runtime.py']
student_loss_weight = 0.5  # lambda; change it here: the KL's weight 1 - lambda follows

model = dict(
    _delete_=True,
    type='mmdistkd.SingleTeacherDistill',
    architecture=dict(cfg_path='mmseg::deeplabv3/deeplabv3_r101-d8_4xb2-80k_cityscapes-512x1024.py'),
    teacher=dict(cfg_path='mmdistkd::tolerant/tolerant_deeplabv3_r101_cityscapes.py'),
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
