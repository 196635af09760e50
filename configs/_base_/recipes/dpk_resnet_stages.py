# DPK on a ResNet's last two stages (backbone.layer3 and backbone.layer4, the authors' "last two" feature maps of
# their ImageNet pairs): both recorded on each side, loss_dpk_layer3 / loss_dpk_layer4 reading their stage. A
# config adds its DPKLoss entries of those names (channels and the authors' module sizes per pair) and any other
# recorder and loss, e.g.
#   distiller=dict(type='ConfigurableDistiller', student_recorders=_base_.resnet_stage_recorders,
#                  teacher_recorders=_base_.resnet_stage_recorders, distill_losses=dict(loss_dpk_layer3=...,
#                  loss_dpk_layer4=...), loss_forward_mappings=_base_.dpk_resnet_stage_mappings)
__stages = ('layer3', 'layer4')
resnet_stage_recorders = {stage: dict(type='ModuleOutputs', source=f'backbone.{stage}') for stage in __stages}
dpk_resnet_stage_mappings = {
    f'loss_dpk_{stage}': dict(preds_S=dict(from_student=True, recorder=stage),
                              preds_T=dict(from_student=False, recorder=stage))
    for stage in __stages}
