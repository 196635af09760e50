# DPK (Qiu et al., ICLR 2023) on ImageNet: ResNet-34 teacher (mmpretrain's, 73.62) -> ResNet-18, on mmpretrain's
# 8 x 32 student recipe (SGD lr 0.1, 100 epochs, x0.1 at 30 / 60 / 90) with the authors' data augmentation.
# The authors' loss: 0.8 CE + 0.8 KD (tau 1) + 0.2 * MSE of each generated feature, on the last two stages
# (layer3: 256 x 14 x 14, layer4: 512 x 7 x 7 on both sides; patch 1, so 196 and 49 tokens).
# The authors' modules for this pair (zongdaoming/dpk @7f66025, classification/modeling_pretrain.py: resnet34_18_2
# on layer3, resnet34_18_1 on layer4): encoders as wide as the stage (256, 512), 6 blocks; decoder as wide as the
# encoders, 4 blocks; 8 heads. pi by the authors' ImageNet rule over the 32 images of a GPU (pi_from=
# 'authors_imagenet': unbiased batch CKA, fallback 0.8, floor 0.1), at least 4 teacher tokens, logged as
# dpk_pi.layer3 / dpk_pi.layer4 (tools/analysis/plot_dpk_ratio.py).
# The DPK modules train on their own AdamW (configs/_base_/recipes/dpk_modules_adamw.py), the student on its SGD.
# Data: the authors' timm create_transform (classification/data/build.py with resnet_config.py's AUG and DATA:
# RandAugment rand-m9-mstd0.5-inc1, random erasing 0.25 in 'pixel' mode, bicubic random-resized crops; val: 256
# bicubic resize, 224 centre crop) is what mmpretrain's imagenet_bs64_swin_224.py builds (its 'timm_increasing'
# RandAugment and RandomErasing mode 'rand'); the teacher sees the same augmented images, as theirs.
# Not the authors' (docs/reproduction.md): they train 200 epochs at 256 images per process with 2-step gradient
# accumulation (GPU count not published), step the student's SGD by StepLR(25, 0.5) and start it from
# torchvision's trained ResNet-18; this config trains the student from scratch on mmpretrain's schedule, 8 x 32.
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py', 'mmpretrain::_base_/schedules/imagenet_bs256.py',
    'mmpretrain::_base_/default_runtime.py', '../_base_/distill_runtime.py', '../_base_/recipes/dpk_modules_adamw.py',
    '../_base_/recipes/dpk_resnet_stages.py'
]

train_dataloader = dict(batch_size=32)  # 8 GPUs x 32, mmpretrain's ResNet-18 recipe
val_dataloader = dict(batch_size=32)

teacher_ckpt = 'https://download.openmmlab.com/mmclassification/v0/resnet/resnet34_8xb32_in1k_20210831-f257d4e6.pth'  # noqa: E501
# What both stages' DPK modules share: depths, heads, the ratio rule and the loss weight.
dpk_shared = dict(type='DPKLoss', patch_size=1, encoder_depth=6, num_heads=8, decoder_depth=4,
                  pi_from='authors_imagenet', min_tokens=4, loss_weight=0.2,
                  norm_eps=1e-6)  # the authors' LayerNorm eps (classification/modeling_pretrain.py)
model = dict(
    type='mmdistkd.SingleTeacherDistill',
    architecture=dict(cfg_path='mmpretrain::resnet/resnet18_8xb32_in1k.py'),
    teacher=dict(cfg_path='mmpretrain::resnet/resnet34_8xb32_in1k.py'),
    teacher_ckpt=teacher_ckpt,
    student_loss_weight=0.8,
    distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=dict(logits=dict(type='ModuleOutputs', source='head.fc'), **_base_.resnet_stage_recorders),
        teacher_recorders=dict(logits=dict(type='ModuleOutputs', source='head.fc'), **_base_.resnet_stage_recorders),
        distill_losses=dict(
            loss_kd=dict(type='KLDivergence', tau=1.0, loss_weight=0.8),
            loss_dpk_layer3=dict(student_channels=256, teacher_channels=256, embed_dims=256, decoder_dims=256,
                                 stage='layer3', **dpk_shared),
            loss_dpk_layer4=dict(student_channels=512, teacher_channels=512, embed_dims=512, decoder_dims=512,
                                 stage='layer4', **dpk_shared)),
        loss_forward_mappings=dict(
            loss_kd=dict(preds_S=dict(from_student=True, recorder='logits'),
                         preds_T=dict(from_student=False, recorder='logits')),
            **_base_.dpk_resnet_stage_mappings)))

optim_wrapper = dict(_base_.dpk_modules_beside_student, _delete_=True,
                     architecture=dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=1e-4)))
param_scheduler = dict(
    _delete_=True,
    architecture=[dict(type='MultiStepLR', by_epoch=True, milestones=[30, 60, 90], gamma=0.1)],
    distiller=[_base_.dpk_modules_warmup, dict(**_base_.dpk_modules_cosine, end=100)])
