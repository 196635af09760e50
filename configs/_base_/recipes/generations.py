# Distillation in generations (docs/tolerant.md): every generation has the teacher's architecture and recipe
# (only the first teacher is tolerant) and learns from the previous one,
#     L = lambda * task losses + (1 - lambda) * KL, temperature 1.
# tools/generations.py passes the previous generation's checkpoint as model.teacher_ckpt. A config names its
# student and teacher and takes the distiller of its head, e.g.
#   model = dict(_base_.generation_model, _delete_=True, architecture=dict(cfg_path=...),
#                teacher=dict(cfg_path=...), distiller=_base_.generation_classifier_distiller)
student_loss_weight = 0.5  # lambda, for every generation config; change it here: the KL weights 1 - lambda follow
generation_model = dict(type='mmdistkd.SingleTeacherDistill', teacher_ckpt=None,
                        student_loss_weight=student_loss_weight)
# Classifiers: the KL of the softmax over the logits.
generation_classifier_distiller = dict(
    type='ConfigurableDistiller',
    student_recorders=dict(logits=dict(type='ModuleOutputs', source='head.fc')),
    teacher_recorders=dict(logits=dict(type='ModuleOutputs', source='head.fc')),
    distill_losses=dict(loss_kd=dict(type='KLDivergence', tau=1.0, loss_weight=1 - student_loss_weight)),
    loss_forward_mappings=dict(loss_kd=dict(
        preds_S=dict(from_student=True, recorder='logits'),
        preds_T=dict(from_student=False, recorder='logits'))))
# RetinaNet: a per-class binary KL (sigmoid) on the classification logits of every anchor of every FPN level.
generation_retinanet_distiller = dict(
    type='ConfigurableDistiller',
    student_recorders=dict(cls=dict(type='ModuleOutputs', source='bbox_head.retina_cls')),
    teacher_recorders=dict(cls=dict(type='ModuleOutputs', source='bbox_head.retina_cls')),
    distill_losses=dict(loss_kd=dict(type='KLDivergence', sigmoid=True, tau=1.0,
                                     loss_weight=1 - student_loss_weight)),
    loss_forward_mappings=dict(loss_kd=dict(
        preds_S=dict(from_student=True, recorder='cls', record_idx='all'),
        preds_T=dict(from_student=False, recorder='cls', record_idx='all'))))
# Segmentors with an auxiliary head (DeepLabV3): the KL per pixel on both heads, the auxiliary one weighted 0.4
# as its cross-entropy. The model's teacher_forward='seg_decode_aux' runs both of the teacher's heads. (A name
# with two leading underscores stays out of the resolved config.)
__seg_heads = dict(decode=dict(type='ModuleOutputs', source='decode_head.conv_seg'),
                   aux=dict(type='ModuleOutputs', source='auxiliary_head.conv_seg'))
generation_decode_aux_distiller = dict(
    type='ConfigurableDistiller',
    student_recorders=__seg_heads,
    teacher_recorders=__seg_heads,
    distill_losses=dict(
        loss_kd_decode=dict(type='KLDivergence', tau=1.0, loss_weight=1 - student_loss_weight),
        loss_kd_aux=dict(type='KLDivergence', tau=1.0, loss_weight=0.4 * (1 - student_loss_weight))),
    loss_forward_mappings=dict(
        loss_kd_decode=dict(preds_S=dict(from_student=True, recorder='decode'),
                            preds_T=dict(from_student=False, recorder='decode')),
        loss_kd_aux=dict(preds_S=dict(from_student=True, recorder='aux'),
                         preds_T=dict(from_student=False, recorder='aux'))))
