# DIST on COCO, the paper's two-stage pair: Cascade Mask R-CNN X101-64x4d-FPN 20e teacher (45.6 box AP) ->
# Faster R-CNN R50-FPN, 2x schedule (paper: 38.4 -> 40.4 AP). The teacher is the checkpoint the authors loaded
# (hunto/MasKD, mmrazor/configs/distill/dist/dist_cascade_mask_rcnn_x101-fpn_x50_coco.py): mmdet's 20e model.
# As the authors: the cascade's stage 0 scores the RoIs the student sampled in the same step, and DIST (softmax
# over the 80 classes + background, no temperature, inter = intra weight 1, loss weight 1) compares its class
# logits with the student's RoI head's; the student's own recipe is mmdet's 2x (SGD 0.02, 16 images).
# Deviation, same numbers: the authors built the teacher with its stage 0 only and no mask branch, and ran its
# whole training forward with the student's RoIs swapped in at the stage-0 RoI extractor; we build the whole
# model (so the checkpoint loads strictly) and run only backbone, FPN and the stage-0 box head (later stages
# and the mask branch never run).
_base_ = ['./dist_faster-rcnn_r101_r50_coco.py']

teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v2.0/cascade_rcnn/cascade_mask_rcnn_x101_64x4d_fpn_20e_coco/cascade_mask_rcnn_x101_64x4d_fpn_20e_coco_20200512_161033-bdb5126a.pth'  # noqa: E501
model = dict(
    teacher=dict(cfg_path='mmdet::cascade_rcnn/cascade-mask-rcnn_x101-64x4d_fpn_20e_coco.py'),
    teacher_ckpt=teacher_ckpt,
    teacher_forward=dict(_delete_=True, type='roi_on_student_rois', stage=0),
    distiller=dict(teacher_recorders=dict(cls=dict(source='roi_head.bbox_head.0.fc_cls'))))
