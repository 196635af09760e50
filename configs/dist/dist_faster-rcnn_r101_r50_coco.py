# DIST on COCO for a two-stage detector: Faster R-CNN R101-FPN teacher -> Faster R-CNN R50-FPN, 2x schedule.
# DIST (softmax over the 80 classes + background) on the RoI head's class logits; the teacher's RoI head
# scores the RoIs the student sampled in the same step, so both predict for the same boxes.
# The paper's teacher is Cascade Mask R-CNN X101 (45.6 AP; 38.4 -> 40.4 AP): this teacher differs.
_base_ = ['mmdet::faster_rcnn/faster-rcnn_r50_fpn_2x_coco.py', '../_base_/distill_runtime.py',
          '../_base_/recipes/dist_detection.py']

teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v2.0/faster_rcnn/faster_rcnn_r101_fpn_2x_coco/faster_rcnn_r101_fpn_2x_coco_bbox_mAP-0.398_20200504_210455-1d2dac9c.pth'  # noqa: E501
model = dict(
    _delete_=True,
    type='mmdistkd.SingleTeacherDistill',
    architecture=dict(cfg_path='mmdet::faster_rcnn/faster-rcnn_r50_fpn_2x_coco.py'),
    teacher=dict(cfg_path='mmdet::faster_rcnn/faster-rcnn_r101_fpn_2x_coco.py'),
    teacher_ckpt=teacher_ckpt,
    teacher_forward='roi_on_student_rois',
    distiller=_base_.dist_roi_head_distiller)
