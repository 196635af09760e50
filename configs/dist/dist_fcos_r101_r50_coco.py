# DIST (Huang et al., NeurIPS 2022) on COCO for FCOS: FCOS R101-caffe-FPN with GN head teacher (mmdet model
# zoo: 39.1 box AP) -> FCOS R50-caffe-FPN with GN head (36.6 box AP), the student's upstream schedule (1x, the
# teacher's too). No published DIST number exists for FCOS: ours would be new.
# DIST on the classification branch (bbox_head.conv_cls, one conv shared by the 5 FPN levels, called once per
# level), every level, sigmoid; anchor-free, one point per location, so each location's 80 scores are a sample
# ('sigmoid_anchor'). Weight 1, tau 1 as the RetinaNet config (untuned here).
_base_ = [
    'mmdet::fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py', '../_base_/distill_runtime.py',
    '../_base_/recipes/dist_detection.py'
]

teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v2.0/fcos/fcos_r101_caffe_fpn_gn-head_1x_coco/fcos_r101_caffe_fpn_gn-head_1x_coco-0e37b982.pth'  # noqa: E501
model = dict(
    _delete_=True,
    type='mmdistkd.SingleTeacherDistill',
    architecture=dict(cfg_path='mmdet::fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py'),
    teacher=dict(cfg_path='mmdet::fcos/fcos_r101-caffe_fpn_gn-head-1x_coco.py'),
    teacher_ckpt=teacher_ckpt,
    distiller=dict(_base_.dist_sigmoid_anchor_distiller,
                   student_recorders=dict(cls=dict(type='ModuleOutputs', source='bbox_head.conv_cls')),
                   teacher_recorders=dict(cls=dict(type='ModuleOutputs', source='bbox_head.conv_cls'))))
