# DIST on COCO, the paper's pair: RetinaNet X101-64x4d-FPN teacher (41.0 AP) -> RetinaNet R50-FPN, 2x schedule
# (paper: 37.4 -> 39.8 AP).
_base_ = ['./dist_retinanet_r101_r50_coco.py']

teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v2.0/retinanet/retinanet_x101_64x4d_fpn_2x_coco/retinanet_x101_64x4d_fpn_2x_coco_20200131-bca068ab.pth'  # noqa: E501
model = dict(
    teacher=dict(cfg_path='mmdet::retinanet/retinanet_x101-64x4d_fpn_2x_coco.py'),
    teacher_ckpt=teacher_ckpt)
