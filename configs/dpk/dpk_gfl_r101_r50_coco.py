# DPK (Qiu et al., ICLR 2023) on COCO for GFL: GFL R101-FPN teacher (mmdet model zoo: 44.7 box AP) ->
# GFL R50-FPN (42.9 box AP), the student's upstream multi-scale 2x schedule and optimizer. The DPK authors
# (zongdaoming/dpk) have no GFL config and no published DPK number exists for GFL: ours would be new.
# Their detection form as in dpk_retinanet_r101_r50_coco.py (the same 5-level FPN, P3-P7, 256 channels on both
# sides):
# - DPK on P4-P7 with the authors' RetinaNet modules (P4 patch 4, encoders 512 wide, decoder 1024; P5 patch 2,
#   256 / 512; P6 and P7 patch 1, 256 / 256; 4 encoder and 4 decoder blocks, 8 heads; at least 40 teacher
#   tokens), its generated map fed to FGD; plain FGD on P3. Each level has FGD modules of its own.
# - FGD weights from the FGD authors' GFL config (yzd-v/FGD, fgd_gfl_r101_distill_gfl_r50_fpn_1x_coco.py: the
#   same R101 multi-scale 2x teacher, their student GFL R50 1x): temp 0.5, alpha 1e-3, beta 5e-4, gamma 5e-4,
#   lambda 5e-6; untuned for DPK here.
# - The student's neck and head start from the teacher's (inheriting; the two FPNs and heads are built alike).
# - Not the authors' detection optimizer (one SGD for everything): the DPK and FGD modules train on their own
#   AdamW (configs/_base_/recipes/dpk_modules_adamw.py), warmed up over the first fifth of the epochs, then
#   cosine to the last; the student keeps its upstream optimizer and schedule, with the gradient clipping at
#   max_norm 35 that the authors added.
# pi from our token CKA (pi_from='tokens'): at 2 images per GPU the authors' batch CKA is undefined (docs/dpk.md).
_base_ = [
    'mmdet::gfl/gfl_r50_fpn_ms-2x_coco.py', '../_base_/distill_runtime.py',
    '../_base_/recipes/dpk_modules_adamw.py', '../_base_/recipes/dpk_fgd_fpn.py'
]

teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v2.0/gfl/gfl_r101_fpn_mstrain_2x_coco/gfl_r101_fpn_mstrain_2x_coco_20200629_200126-dd12f847.pth'  # noqa: E501
fgd = dict(type='FGDLoss', in_channels=256, temp=0.5, alpha_fgd=1e-3, beta_fgd=5e-4, gamma_fgd=5e-4, lambda_fgd=5e-6)
model = dict(
    _delete_=True,
    type='mmdistkd.SingleTeacherDistill',
    architecture=dict(cfg_path='mmdet::gfl/gfl_r50_fpn_ms-2x_coco.py'),
    teacher=dict(cfg_path='mmdet::gfl/gfl_r101_fpn_ms-2x_coco.py'),
    teacher_ckpt=teacher_ckpt,
    inherit_from_teacher=['neck', 'bbox_head'],
    # The neck's levels (configs/_base_/recipes/dpk_fgd_fpn.py); the losses carry this config's FGD weights.
    distiller=dict(_base_.dpk_fgd_distiller_p3_p7, distill_losses=dict(
        loss_fgd_p3=fgd,
        **{f'loss_dpk_{level}': dict(stage=level, feature_loss=fgd, **sizes, **_base_.dpk_fpn_shared)
           for level, sizes in _base_.dpk_fpn_levels_p4_p7.items()})))

optim_wrapper = dict(_base_.dpk_modules_beside_student, _delete_=True,
                     architecture=dict(_base_.optim_wrapper, clip_grad=dict(max_norm=35, norm_type=2)))
param_scheduler = dict(_delete_=True, architecture=_base_.param_scheduler,
                       distiller=_base_.dpk_modules_warmup_cosine)
