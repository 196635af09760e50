# DIST on COCO, the paper's pair: RetinaNet X101-64x4d-FPN 1x teacher (41.0 AP) -> RetinaNet R50-FPN, 2x schedule
# (paper: 37.4 -> 39.8 AP). The teacher is the checkpoint the authors loaded (hunto/MasKD,
# dist_retinanet_x101-retinanet-r50_coco.py): mmdet's 1x model. mmdet's 2x X101-64x4d is weaker (40.8 AP).
# DIST as in dist_retinanet_r101_r50_coco.py, the cheaper pair (R101 teacher, 38.9 AP).
_base_ = ['./dist_retinanet_r101_r50_coco.py']

teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v2.0/retinanet/retinanet_x101_64x4d_fpn_1x_coco/retinanet_x101_64x4d_fpn_1x_coco_20200130-366f5af1.pth'  # noqa: E501
model = dict(
    teacher=dict(cfg_path='mmdet::retinanet/retinanet_x101-64x4d_fpn_1x_coco.py'),
    teacher_ckpt=teacher_ckpt)
