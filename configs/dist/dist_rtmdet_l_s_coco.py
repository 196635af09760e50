# DIST (Huang et al., NeurIPS 2022) on COCO for RTMDet: RTMDet-L teacher (mmdet model zoo: 51.3 box AP) ->
# RTMDet-S (44.5 box AP), the student's upstream recipe (8 GPUs x 32 images, 300 epochs, AdamW, EMA, the
# pipeline switch for the last 20 epochs). No published DIST number exists for RTMDet: ours would be new.
# -S rather than -tiny (40.9 AP): -S's upstream config differs from -L's only in depth, width and the resize
# range of its augmentation, -tiny's also in the mosaic cache, so only the model changes between teacher and
# student recipes.
# DIST on the class scores of the 3 levels. RTMDet keeps one classification conv per level (bbox_head.rtm_cls.0
# to .2, a ModuleList): the recorder hooks every one and gives the levels in order, as RetinaNet's shared conv.
# One prior per location, so each location's 80 sigmoid scores are a sample ('sigmoid_anchor'); weight 1, tau 1
# as the RetinaNet config (untuned here).
# Not inheriting configs/_base_/distill_runtime.py: RTMDet's config has custom_hooks of its own (mmengine
# refuses a key defined in two bases), so its lines are repeated below.
# mmengine's EMAHook keeps the EMA weights (those the model zoo evaluates) in the training checkpoints;
# student_final.pth, written by StudentExportHook at the end, holds the student's raw weights.
_base_ = ['mmdet::rtmdet/rtmdet_s_8xb32-300e_coco.py', '../_base_/recipes/dist_detection.py']
custom_imports = dict(imports=['mmdistkd'], allow_failed_imports=False)
custom_hooks = [*_base_.custom_hooks, dict(type='mmdistkd.NonFiniteLossHook'),
                dict(type='mmdistkd.StudentExportHook'),
                dict(type='mmdistkd.TeacherValHook')]

teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v3.0/rtmdet/rtmdet_l_8xb32-300e_coco/rtmdet_l_8xb32-300e_coco_20220719_112030-5a0be7c4.pth'  # noqa: E501
model = dict(
    _delete_=True,
    type='mmdistkd.SingleTeacherDistill',
    architecture=dict(cfg_path='mmdet::rtmdet/rtmdet_s_8xb32-300e_coco.py'),
    teacher=dict(cfg_path='mmdet::rtmdet/rtmdet_l_8xb32-300e_coco.py'),
    teacher_ckpt=teacher_ckpt,
    distiller=dict(_base_.dist_sigmoid_anchor_distiller,
                   student_recorders=dict(cls=dict(type='ModuleOutputs', source='bbox_head.rtm_cls')),
                   teacher_recorders=dict(cls=dict(type='ModuleOutputs', source='bbox_head.rtm_cls'))))
