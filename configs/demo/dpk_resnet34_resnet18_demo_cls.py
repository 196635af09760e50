# Demo: DPK on the last two stages next to KD, from the demo ResNet-34 teacher into the demo ResNet-18
# student, with the authors' loss weights (0.8 CE + 0.8 KD at tau 1 + 0.2 MSE per stage; see
# configs/dpk/dpk_resnet34_resnet18_8xb32_in1k.py) and DPK's light module setting. layer3 is 8 x 8 and layer4
# 4 x 4 on the 32 x 32 images: patch 1 gives 64 and 16 tokens. `make demo TASK=cls` passes the teacher it
# trained as model.teacher_ckpt; the prior ratios are logged as dpk_pi.layer3 / dpk_pi.layer4.
_base_ = ['./kd_resnet34_resnet18_demo_cls.py', '../_base_/dpk_light.py']

dpk_shared = dict(type='DPKLoss', patch_size=1, loss_weight=0.2, **_base_.dpk_light)
model = dict(
    student_loss_weight=0.8,
    distiller=dict(
        student_recorders=dict(layer3=dict(type='ModuleOutputs', source='backbone.layer3'),
                               layer4=dict(type='ModuleOutputs', source='backbone.layer4')),
        teacher_recorders=dict(layer3=dict(type='ModuleOutputs', source='backbone.layer3'),
                               layer4=dict(type='ModuleOutputs', source='backbone.layer4')),
        distill_losses=dict(
            loss_kd=dict(tau=1.0, loss_weight=0.8),
            loss_dpk_layer3=dict(student_channels=64, teacher_channels=128, stage='layer3', **dpk_shared),
            loss_dpk_layer4=dict(student_channels=128, teacher_channels=256, stage='layer4', **dpk_shared)),
        loss_forward_mappings=dict(
            loss_dpk_layer3=dict(preds_S=dict(from_student=True, recorder='layer3'),
                                 preds_T=dict(from_student=False, recorder='layer3')),
            loss_dpk_layer4=dict(preds_S=dict(from_student=True, recorder='layer4'),
                                 preds_T=dict(from_student=False, recorder='layer4')))))
# The DPK modules at SGD lr 0.01 in a parameter group of their own (see
# configs/dpk/dpk_resnet34_resnet18_8xb32_in1k.py).
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'distiller': dict(lr_mult=0.1)}))  # 0.1 x 0.1
