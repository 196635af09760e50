# DPK (Qiu et al., ICLR 2023) on COCO for Mask R-CNN: Mask R-CNN R101-FPN teacher (mmdet model zoo: 40.8 box AP,
# 36.6 mask AP) -> Mask R-CNN R50-FPN (39.2 box AP, 35.4 mask AP), both mmdet's 2x schedule. The DPK authors
# (zongdaoming/dpk) have no Mask R-CNN config and no published DPK number exists for Mask R-CNN: ours would be new.
# Their two-stage detection form as in dpk_faster-rcnn_r101_r50_coco.py (the same FPN, P2-P6, 256 channels):
# - DPK on P4-P5 with the authors' Faster R-CNN modules (P4 patch 4, encoders 512 wide, decoder 1024; P5 patch 2,
#   256 / 512; 4 encoder and 4 decoder blocks, 8 heads; at least 40 teacher tokens), its generated map fed to
#   FGD; plain FGD on P2 and P3. Each level has FGD modules of its own.
# - FGD weights from the FGD authors' Mask R-CNN config for this very pair (yzd-v/FGD,
#   fgd_mask_rcnn_r101_fpn_distill_mask_rcnn_r50_fpn_2x_coco.py; FGD on P2-P5): temp 0.5, alpha 5e-5,
#   beta 2.5e-5, gamma 5e-5, lambda 5e-7; untuned for DPK here.
# - The student's neck, RPN head and RoI head (box and mask branches) start from the teacher's (inheriting).
# - Not the authors' detection optimizer (one SGD for everything): the DPK and FGD modules train on their own
#   AdamW (configs/_base_/recipes/dpk_modules_adamw.py), warmed up over the first fifth of the epochs, then
#   cosine to the last; the student keeps mmdet's SGD (lr 0.02) and 2x schedule, with the gradient clipping at
#   max_norm 35 that the authors added.
# pi from our token CKA (pi_from='tokens'): at 2 images per GPU the authors' batch CKA is undefined (docs/dpk.md).
_base_ = [
    'mmdet::mask_rcnn/mask-rcnn_r50_fpn_2x_coco.py', '../_base_/distill_runtime.py',
    '../_base_/recipes/dpk_modules_adamw.py', '../_base_/recipes/dpk_fgd_fpn.py'
]

teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v2.0/mask_rcnn/mask_rcnn_r101_fpn_2x_coco/mask_rcnn_r101_fpn_2x_coco_bbox_mAP-0.408__segm_mAP-0.366_20200505_071027-14b391c7.pth'  # noqa: E501
fgd = dict(type='FGDLoss', in_channels=256, temp=0.5, alpha_fgd=5e-5, beta_fgd=2.5e-5, gamma_fgd=5e-5,
           lambda_fgd=5e-7)
model = dict(
    _delete_=True,
    type='mmdistkd.SingleTeacherDistill',
    architecture=dict(cfg_path='mmdet::mask_rcnn/mask-rcnn_r50_fpn_2x_coco.py'),
    teacher=dict(cfg_path='mmdet::mask_rcnn/mask-rcnn_r101_fpn_2x_coco.py'),
    teacher_ckpt=teacher_ckpt,
    inherit_from_teacher=['neck', 'rpn_head', 'roi_head'],
    # Only the teacher's FPN is needed; mode 'tensor' also runs its RPN and RoI head.
    teacher_forward='tensor',
    # The neck's levels (configs/_base_/recipes/dpk_fgd_fpn.py); the losses carry this config's FGD weights.
    distiller=dict(_base_.dpk_fgd_distiller_p2_p6, distill_losses=dict(
        loss_fgd_p2=fgd,
        loss_fgd_p3=fgd,
        **{f'loss_dpk_{level}': dict(stage=level, feature_loss=fgd, **sizes, **_base_.dpk_fpn_shared)
           for level, sizes in _base_.dpk_fpn_levels_p4_p5.items()})))

optim_wrapper = dict(_base_.dpk_modules_beside_student, _delete_=True,
                     architecture=dict(_base_.optim_wrapper, clip_grad=dict(max_norm=35, norm_type=2)))
param_scheduler = dict(_delete_=True, architecture=_base_.param_scheduler,
                       distiller=_base_.dpk_modules_warmup_cosine)
