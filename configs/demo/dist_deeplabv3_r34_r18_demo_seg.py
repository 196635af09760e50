# Demo: DIST per pixel on the decode head (weight 1) and the auxiliary head (0.4), demo DeepLabV3-R34 teacher
# -> demo DeepLabV3-R18 student (the recipe of configs/dist/dist_deeplabv3_r101_r18_cityscapes.py).
_base_ = ['./kd_deeplabv3_r34_r18_demo_seg.py']

model = dict(distiller=dict(
    distill_losses=dict(_delete_=True,
                        loss_dist_decode=dict(type='DISTLoss', loss_weight=1.0),
                        loss_dist_aux=dict(type='DISTLoss', loss_weight=0.4)),
    loss_forward_mappings=dict(
        _delete_=True,
        loss_dist_decode=dict(logits_S=dict(from_student=True, recorder='decode'),
                              logits_T=dict(from_student=False, recorder='decode')),
        loss_dist_aux=dict(logits_S=dict(from_student=True, recorder='aux'),
                           logits_T=dict(from_student=False, recorder='aux')))))
