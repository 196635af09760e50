# Distillation in generations (docs/tolerant.md) on COCO: every generation is mmdet's RetinaNet
# R101-FPN 2x (plain focal loss: only the first teacher is tolerant), distilled from the previous one:
#     L = lambda * (focal + box losses) + (1 - lambda) * KL,
# the KL a per-class binary KL (sigmoid, temperature 1) on the classification logits of every anchor of
# every FPN level. Run the chain with tools/generations.py, which passes each previous generation's
# checkpoint as model.teacher_ckpt:
#   python tools/generations.py configs/tolerant/tolerant_retinanet_r101_fpn_2x_coco.py \
#       configs/tolerant/gen_retinanet_r101_fpn_2x_coco.py --generations 2 --work-dir work_dirs/gen_retinanet
_base_ = ['mmdet::retinanet/retinanet_r101_fpn_2x_coco.py', '../_base_/distill_runtime.py']
student_loss_weight = 0.5  # lambda; change it here: the KL's weight 1 - lambda follows

model = dict(
    _delete_=True,
    type='mmdistkd.SingleTeacherDistill',
    architecture=dict(cfg_path='mmdet::retinanet/retinanet_r101_fpn_2x_coco.py'),
    teacher=dict(cfg_path='mmdistkd::tolerant/tolerant_retinanet_r101_fpn_2x_coco.py'),
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
