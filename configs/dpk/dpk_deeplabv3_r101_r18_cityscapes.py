# DPK on Cityscapes (ours: the authors did no segmentation): DeepLabV3-R101 teacher -> DeepLabV3-R18, on the
# last two backbone stages, with the authors' classification recipe around it. Both backbones are dilated (output
# stride 8), so layer3 and layer4 are 64 x 128 at the 512 x 1024 crop; patch 4 gives 16 x 32 = 512 tokens per
# stage. The stage widths are those of the authors' ImageNet ResNet-50 -> ResNet-18 pair (teacher 1024 and 2048
# against 256 and 512), so the modules are that pair's (dpk_resnet50_resnet18_8xb32_in1k.py): layer3 encoders 512
# wide, 4 blocks, decoder 1024 wide, 4 blocks, 16 heads; layer4 encoders 640 wide, 6 blocks, decoder 1024 wide,
# 4 blocks; 8 heads elsewhere. MSE per stage, weight 1 (untuned). pi from our token CKA: at 2 images per GPU the
# authors' batch CKA is undefined (docs/dpk.md).
# The DPK modules train on their own AdamW (configs/_base_/recipes/dpk_modules_adamw.py), warmed up over the
# first 20% of the schedule (the authors' 20 of 100 ImageNet epochs), then cosine; the student keeps the DIST
# configs' segmentation recipe: 8 GPUs x 2 images, 40k iterations, SGD lr 0.02, poly decay.
_base_ = [
    'mmseg::deeplabv3/deeplabv3_r18-d8_4xb2-80k_cityscapes-512x1024.py', '../_base_/distill_runtime.py',
    '../_base_/recipes/dpk_modules_adamw.py', '../_base_/recipes/dpk_resnet_stages.py'
]

teacher_ckpt = 'https://download.openmmlab.com/mmsegmentation/v0.5/deeplabv3/deeplabv3_r101-d8_512x1024_80k_cityscapes/deeplabv3_r101-d8_512x1024_80k_cityscapes_20200606_113503-9e428899.pth'  # noqa: E501
dpk_shared = dict(type='DPKLoss', patch_size=4, num_heads=8, decoder_depth=4, decoder_dims=1024, loss_weight=1.0)
model = dict(
    _delete_=True,
    type='mmdistkd.SingleTeacherDistill',
    architecture=dict(cfg_path='mmseg::deeplabv3/deeplabv3_r18-d8_4xb2-80k_cityscapes-512x1024.py'),
    teacher=dict(cfg_path='mmseg::deeplabv3/deeplabv3_r101-d8_4xb2-80k_cityscapes-512x1024.py'),
    teacher_ckpt=teacher_ckpt,
    # Only the teacher's backbone is needed; mode 'tensor' also runs its decode head.
    teacher_forward='tensor',
    distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=_base_.resnet_stage_recorders,
        teacher_recorders=_base_.resnet_stage_recorders,
        distill_losses=dict(
            loss_dpk_layer3=dict(student_channels=256, teacher_channels=1024, embed_dims=512, encoder_depth=4,
                                 decoder_heads=16, stage='layer3', **dpk_shared),
            loss_dpk_layer4=dict(student_channels=512, teacher_channels=2048, embed_dims=640, encoder_depth=6,
                                 stage='layer4', **dpk_shared)),
        loss_forward_mappings=_base_.dpk_resnet_stage_mappings))

train_dataloader = dict(batch_size=2)
max_iters = 40000
train_cfg = dict(max_iters=max_iters, val_interval=4000)
default_hooks = dict(checkpoint=dict(interval=4000))
optim_wrapper = dict(_base_.dpk_modules_beside_student, _delete_=True,
                     architecture=dict(optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=5e-4)))
param_scheduler = dict(
    _delete_=True,
    architecture=[dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=max_iters, by_epoch=False)],
    distiller=dict(_base_.dpk_modules_warmup_cosine, by_epoch=False, convert_to_iter_based=False))
