# DPK on COCO for a two-stage detector, as the authors trained it (zongdaoming/dpk @7f66025, detection/configs/
# distillers/dpk/dpk_faster_rcnn_r101_fpn_2x_distill_faster_rcnn_r50_fpn_2x_coco.py and dpk_faster_cfg.py):
# Faster R-CNN R101-FPN teacher -> Faster R-CNN R50-FPN, mmdet's 2x schedule at 2 images per GPU on 8 GPUs.
# - DPK on P4-P5 (indices 2-3 of the neck's P2-P6 outputs, 256 channels on both sides), its generated map fed to
#   FGD instead of MSE; plain FGD on P2 and P3. Each level has FGD modules of its own.
# - The authors' modules (encoders 4 blocks, decoder 4 blocks, 8 heads): P4 patch 4, encoders 512 wide, decoder
#   1024; P5 patch 2, encoders 256, decoder 512. At least 40 teacher tokens.
# - The authors' FGD weights for this pair: temp 0.5, alpha 5e-5, beta 2.5e-5, gamma 5e-5, lambda 5e-7 (their
#   R101 -> R18 config has alpha 2e-5, gamma 2e-5, lambda 2e-7).
# - The student's neck, RPN head and RoI head start from the teacher's (the authors copy every teacher weight
#   outside the backbone).
# - One SGD for the student, the DPK and the FGD modules at the authors' lr 0.01 (mmdet's 2x Faster R-CNN: 0.02),
#   momentum 0.9, weight decay 1e-4 on every parameter, gradient clipping at max_norm 35.
# Not the authors': pi from our token CKA (see dpk_retinanet_r101_r50_coco.py).
_base_ = [
    'mmdet::faster_rcnn/faster-rcnn_r50_fpn_2x_coco.py', '../_base_/distill_runtime.py',
    '../_base_/recipes/dpk_fgd_fpn.py'
]

teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v2.0/faster_rcnn/faster_rcnn_r101_fpn_2x_coco/faster_rcnn_r101_fpn_2x_coco_bbox_mAP-0.398_20200504_210455-1d2dac9c.pth'  # noqa: E501
fgd = dict(type='FGDLoss', in_channels=256, temp=0.5, alpha_fgd=5e-5, beta_fgd=2.5e-5, gamma_fgd=5e-5,
           lambda_fgd=5e-7)
model = dict(
    _delete_=True,
    type='mmdistkd.SingleTeacherDistill',
    architecture=dict(cfg_path='mmdet::faster_rcnn/faster-rcnn_r50_fpn_2x_coco.py'),
    teacher=dict(cfg_path='mmdet::faster_rcnn/faster-rcnn_r101_fpn_2x_coco.py'),
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

optim_wrapper = dict(optimizer=dict(lr=0.01), clip_grad=dict(max_norm=35, norm_type=2))
