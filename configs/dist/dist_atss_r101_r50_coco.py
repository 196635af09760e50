# DIST (Huang et al., NeurIPS 2022) on COCO for ATSS: ATSS R101-FPN teacher (mmdet model zoo: 41.5 box AP) ->
# ATSS R50-FPN (39.4 box AP), the student's upstream schedule (1x, the teacher's too). No published
# DIST number exists for ATSS: ours would be new.
# DIST on the classification branch (bbox_head.atss_cls, one conv shared by the 5 FPN levels, called once per
# level), every level, sigmoid; one anchor per location (ratios [1.0], one scale), so each location's 80
# scores are a sample ('sigmoid_anchor'). Weight 1, tau 1 as the RetinaNet config (untuned here).
_base_ = [
    'mmdet::atss/atss_r50_fpn_1x_coco.py', '../_base_/distill_runtime.py',
    '../_base_/recipes/dist_detection.py'
]

teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v2.0/atss/atss_r101_fpn_1x_coco/atss_r101_fpn_1x_20200825-dfcadd6f.pth'  # noqa: E501
model = dict(
    _delete_=True,
    type='mmdistkd.SingleTeacherDistill',
    architecture=dict(cfg_path='mmdet::atss/atss_r50_fpn_1x_coco.py'),
    teacher=dict(cfg_path='mmdet::atss/atss_r101_fpn_1x_coco.py'),
    teacher_ckpt=teacher_ckpt,
    distiller=dict(_base_.dist_sigmoid_anchor_distiller,
                   student_recorders=dict(cls=dict(type='ModuleOutputs', source='bbox_head.atss_cls')),
                   teacher_recorders=dict(cls=dict(type='ModuleOutputs', source='bbox_head.atss_cls'))))
