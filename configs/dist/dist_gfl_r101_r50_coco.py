# DIST (Huang et al., NeurIPS 2022) on COCO for GFL: GFL R101-FPN teacher (mmdet model zoo: 44.7 box AP) ->
# GFL R50-FPN (42.9 box AP), the student's upstream schedule (multi-scale 2x, the teacher's too). No published
# DIST number exists for GFL: ours would be new.
# DIST on the classification branch (bbox_head.gfl_cls, one conv shared by the 5 FPN levels, called once per
# level), every level, sigmoid; one anchor per location (ratios [1.0], one scale), so each location's 80
# scores are a sample ('sigmoid_anchor'). Weight 1, tau 1 as the RetinaNet config (untuned here).
_base_ = [
    'mmdet::gfl/gfl_r50_fpn_ms-2x_coco.py', '../_base_/distill_runtime.py',
    '../_base_/recipes/dist_detection.py'
]

teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v2.0/gfl/gfl_r101_fpn_mstrain_2x_coco/gfl_r101_fpn_mstrain_2x_coco_20200629_200126-dd12f847.pth'  # noqa: E501
model = dict(
    _delete_=True,
    type='mmdistkd.SingleTeacherDistill',
    architecture=dict(cfg_path='mmdet::gfl/gfl_r50_fpn_ms-2x_coco.py'),
    teacher=dict(cfg_path='mmdet::gfl/gfl_r101_fpn_ms-2x_coco.py'),
    teacher_ckpt=teacher_ckpt,
    distiller=dict(_base_.dist_sigmoid_anchor_distiller,
                   student_recorders=dict(cls=dict(type='ModuleOutputs', source='bbox_head.gfl_cls')),
                   teacher_recorders=dict(cls=dict(type='ModuleOutputs', source='bbox_head.gfl_cls'))))
