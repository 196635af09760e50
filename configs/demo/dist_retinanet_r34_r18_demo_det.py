# Demo: DIST (sigmoid, per anchor) on the classification logits of every FPN level, demo RetinaNet-R34
# teacher -> demo RetinaNet-R18 student.
_base_ = ['./kd_retinanet_r34_r18_demo_det.py']

model = dict(distiller=dict(
    distill_losses=dict(_delete_=True, loss_dist=dict(type='DISTLoss', mode='sigmoid_anchor', num_classes=3)),
    loss_forward_mappings=dict(_delete_=True, loss_dist=dict(
        logits_S=dict(from_student=True, recorder='cls', record_idx='all'),
        logits_T=dict(from_student=False, recorder='cls', record_idx='all')))))
