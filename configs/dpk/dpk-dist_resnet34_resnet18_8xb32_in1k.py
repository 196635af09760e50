# DPK with DIST as the logit loss: ResNet-34 -> ResNet-18 on ImageNet, as dpk_resnet34_resnet18_8xb32_in1k.py
# with KD replaced by DIST (beta = gamma = 1, tau 1). Loss: 0.8 CE + 1.6 DIST + 0.2 * MSE per stage, i.e.
# DIST keeps its own weight relative to CE (CE + 2 DIST) and DPK's 0.8 scales both.
_base_ = ['./dpk_resnet34_resnet18_8xb32_in1k.py']

# The DPK entries are taken over from the base; only the logit loss changes.
dpk_distiller = _base_.model.distiller
model = dict(
    distiller=dict(
        distill_losses=dict(
            _delete_=True,
            loss_dist=dict(type='DISTLoss', tau=1.0, loss_weight=1.6),
            loss_dpk_layer3=dpk_distiller.distill_losses.loss_dpk_layer3,
            loss_dpk_layer4=dpk_distiller.distill_losses.loss_dpk_layer4),
        loss_forward_mappings=dict(
            _delete_=True,
            loss_dist=dict(logits_S=dict(from_student=True, recorder='logits'),
                           logits_T=dict(from_student=False, recorder='logits')),
            loss_dpk_layer3=dpk_distiller.loss_forward_mappings.loss_dpk_layer3,
            loss_dpk_layer4=dpk_distiller.loss_forward_mappings.loss_dpk_layer4)))
del dpk_distiller  # a helper of this file, not a config key
