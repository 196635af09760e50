# Demo: DIST (tau 1, weight 2, as on ImageNet) from the demo ResNet-34 teacher into the demo ResNet-18 student.
_base_ = ['./kd_resnet34_resnet18_demo_cls.py']

model = dict(distiller=dict(
    distill_losses=dict(_delete_=True, loss_dist=dict(type='DISTLoss', tau=1.0, loss_weight=2.0)),
    loss_forward_mappings=dict(_delete_=True, loss_dist=dict(
        logits_S=dict(from_student=True, recorder='logits'),
        logits_T=dict(from_student=False, recorder='logits')))))
