# DIST (sigmoid, per location) on the class scores of the 3 levels, demo RTMDet teacher
# (rtmdet_demo_det_teacher.py) -> RTMDet-tiny-like student (rtmdet_tiny_demo_det_student.py), as
# configs/dist/dist_rtmdet_l_s_coco.py does on COCO: the recorder hooks every per-level bbox_head.rtm_cls conv
# and gives the levels in order; weight 1, tau 1 (untuned). Run from the repo root (the cfg_paths are relative
# to it), after training the teacher:
#   python tools/train.py docs/experiments/dist_rtmdet_demo_det.py \
#       --cfg-options model.teacher_ckpt=<teacher work dir>/iter_800.pth randomness.seed=0
_base_ = ['./rtmdet_tiny_demo_det_student.py', '../../configs/_base_/distill_runtime.py']

model = dict(
    _delete_=True,
    type='mmdistkd.SingleTeacherDistill',
    architecture=dict(cfg_path='docs/experiments/rtmdet_tiny_demo_det_student.py'),
    teacher=dict(cfg_path='docs/experiments/rtmdet_demo_det_teacher.py'),
    teacher_ckpt=None,
    distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=dict(cls=dict(type='ModuleOutputs', source='bbox_head.rtm_cls')),
        teacher_recorders=dict(cls=dict(type='ModuleOutputs', source='bbox_head.rtm_cls')),
        distill_losses=dict(loss_dist=dict(type='DISTLoss', mode='sigmoid_anchor', num_classes=3, tau=1.0,
                                           loss_weight=1.0)),
        loss_forward_mappings=dict(loss_dist=dict(
            logits_S=dict(from_student=True, recorder='cls', record_idx='all'),
            logits_T=dict(from_student=False, recorder='cls', record_idx='all')))))
val_cfg = dict(_delete_=True, type='mmdistkd.SingleTeacherDistillValLoop')
