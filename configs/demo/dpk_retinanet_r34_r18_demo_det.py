# Demo: DPK on FPN levels from the demo RetinaNet-R34 teacher into the demo RetinaNet-R18 student (both FPNs
# 64 channels wide), MSE weight 1 per level, DPK's light module setting. The 128 x 128 images make P7 a single
# position, so the demo takes P3-P5 (16 x 16, 8 x 8, 4 x 4) with patch sizes 2, 1, 1: 64, 64 and 16 tokens,
# the token grids P4-P7 give at COCO scale in configs/dpk/dpk_retinanet_r101_r50_coco.py.
# `make demo` passes the teacher it trained as model.teacher_ckpt.
_base_ = ['./retinanet_r18_demo_det_student.py', '../_base_/distill_runtime.py', '../_base_/dpk_light.py']

dpk_shared = dict(type='DPKLoss', student_channels=64, teacher_channels=64, loss_weight=1.0, **_base_.dpk_light)
model = dict(
    _delete_=True,
    type='mmdistkd.SingleTeacherDistill',
    architecture=dict(cfg_path='mmdistkd::demo/retinanet_r18_demo_det_student.py'),
    teacher=dict(cfg_path='mmdistkd::demo/retinanet_r34_demo_det_teacher.py'),
    teacher_ckpt=None,
    distiller=dict(
        type='ConfigurableDistiller',
        # The neck returns the tuple of levels P3-P7 once per step; data_idx picks one (P3 is 0).
        student_recorders=dict(fpn=dict(type='ModuleOutputs', source='neck')),
        teacher_recorders=dict(fpn=dict(type='ModuleOutputs', source='neck')),
        distill_losses=dict(
            loss_dpk_p3=dict(patch_size=2, stage='p3', **dpk_shared),
            loss_dpk_p4=dict(patch_size=1, stage='p4', **dpk_shared),
            loss_dpk_p5=dict(patch_size=1, stage='p5', **dpk_shared)),
        loss_forward_mappings={
            f'loss_dpk_p{level}': dict(preds_S=dict(from_student=True, recorder='fpn', data_idx=level - 3),
                                       preds_T=dict(from_student=False, recorder='fpn', data_idx=level - 3))
            for level in (3, 4, 5)
        }))
val_cfg = dict(_delete_=True, type='mmdistkd.SingleTeacherDistillValLoop')
# The DPK modules at SGD lr 0.01 in a parameter group of their own (see
# configs/dpk/dpk_resnet34_resnet18_8xb32_in1k.py).
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'distiller': dict(lr_mult=0.5)}))  # 0.5 x 0.02
