# DIST on COCO for Mask R-CNN: Mask R-CNN R101-FPN teacher (mmdet model zoo: 40.8 box AP, 36.6 mask AP) ->
# Mask R-CNN R50-FPN (39.2 box AP, 35.4 mask AP), both mmdet's 2x schedule. No published DIST number exists for
# Mask R-CNN: ours would be new.
# As dist_faster-rcnn_r101_r50_coco.py: DIST (softmax over the 80 classes + background) on the RoI head's class
# logits, the teacher's RoI box head scoring the RoIs the student sampled in the same step. The mask branch is
# untouched: the student trains it on its own mask loss, the teacher's mask head does not run.
_base_ = ['mmdet::mask_rcnn/mask-rcnn_r50_fpn_2x_coco.py', '../_base_/distill_runtime.py',
          '../_base_/recipes/dist_detection.py']

teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v2.0/mask_rcnn/mask_rcnn_r101_fpn_2x_coco/mask_rcnn_r101_fpn_2x_coco_bbox_mAP-0.408__segm_mAP-0.366_20200505_071027-14b391c7.pth'  # noqa: E501
model = dict(
    _delete_=True,
    type='mmdistkd.SingleTeacherDistill',
    architecture=dict(cfg_path='mmdet::mask_rcnn/mask-rcnn_r50_fpn_2x_coco.py'),
    teacher=dict(cfg_path='mmdet::mask_rcnn/mask-rcnn_r101_fpn_2x_coco.py'),
    teacher_ckpt=teacher_ckpt,
    teacher_forward='roi_on_student_rois',
    distiller=_base_.dist_roi_head_distiller)
