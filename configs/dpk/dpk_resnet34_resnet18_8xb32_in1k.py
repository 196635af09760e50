# DPK (Qiu et al., ICLR 2023) on ImageNet: ResNet-34 teacher (73.31) -> ResNet-18, mmpretrain's 8x32 recipe.
# The authors' loss: 0.8 CE + 0.8 KD (tau 1) + 0.2 * MSE of each generated feature, on the last two stages
# (layer3: 256 x 14 x 14, layer4: 512 x 7 x 7 on both sides; patch 1, so 196 and 49 tokens), with the
# authors' module sizes (6 encoder blocks per side, 4 decoder blocks, 8 heads, tokens as wide as the stage).
# The prior ratio of each stage is logged as dpk_pi.layer3 / dpk_pi.layer4 (tools/analysis/plot_dpk_ratio.py).
_base_ = ['mmpretrain::resnet/resnet18_8xb32_in1k.py', '../_base_/distill_runtime.py']

teacher_ckpt = 'https://download.openmmlab.com/mmclassification/v0/resnet/resnet34_8xb32_in1k_20210831-f257d4e6.pth'  # noqa: E501
# What both stages' DPK modules share: the authors' module sizes and loss weight.
dpk_shared = dict(type='DPKLoss', patch_size=1, encoder_depth=6, decoder_depth=4, num_heads=8, loss_weight=0.2)
model = dict(
    _delete_=True,
    type='mmdistkd.SingleTeacherDistill',
    architecture=dict(cfg_path='mmpretrain::resnet/resnet18_8xb32_in1k.py'),
    teacher=dict(cfg_path='mmpretrain::resnet/resnet34_8xb32_in1k.py'),
    teacher_ckpt=teacher_ckpt,
    student_loss_weight=0.8,
    distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=dict(logits=dict(type='ModuleOutputs', source='head.fc'),
                               layer3=dict(type='ModuleOutputs', source='backbone.layer3'),
                               layer4=dict(type='ModuleOutputs', source='backbone.layer4')),
        teacher_recorders=dict(logits=dict(type='ModuleOutputs', source='head.fc'),
                               layer3=dict(type='ModuleOutputs', source='backbone.layer3'),
                               layer4=dict(type='ModuleOutputs', source='backbone.layer4')),
        distill_losses=dict(
            loss_kd=dict(type='KLDivergence', tau=1.0, loss_weight=0.8),
            loss_dpk_layer3=dict(student_channels=256, teacher_channels=256, embed_dims=256, stage='layer3',
                                 **dpk_shared),
            loss_dpk_layer4=dict(student_channels=512, teacher_channels=512, embed_dims=512, stage='layer4',
                                 **dpk_shared)),
        loss_forward_mappings=dict(
            loss_kd=dict(preds_S=dict(from_student=True, recorder='logits'),
                         preds_T=dict(from_student=False, recorder='logits')),
            loss_dpk_layer3=dict(preds_S=dict(from_student=True, recorder='layer3'),
                                 preds_T=dict(from_student=False, recorder='layer3')),
            loss_dpk_layer4=dict(preds_S=dict(from_student=True, recorder='layer4'),
                                 preds_T=dict(from_student=False, recorder='layer4')))))
val_cfg = dict(_delete_=True, type='mmdistkd.SingleTeacherDistillValLoop')

# The authors trained the DPK modules with their own AdamW (lr 1e-4). mmengine builds one optimizer per model
# (AdamW for them next to the student's SGD would need a custom optimizer constructor and a second optimizer),
# so they share the student's SGD (momentum 0.9, its schedule) in a parameter group of their own. Every DPK
# config puts them at SGD lr 0.01 whatever the student's rate, so the transformers train alike in every task.
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'distiller': dict(lr_mult=0.1)}))  # 0.1 x 0.1
