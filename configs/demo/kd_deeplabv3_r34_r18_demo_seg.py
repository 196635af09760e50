# Demo: per-pixel KD on the decode head (weight 1) and the auxiliary head (0.4) from the demo DeepLabV3-R34
# teacher into the demo DeepLabV3-R18 student. `make demo TASK=seg` passes the teacher it trained.
_base_ = ['./deeplabv3_r18_demo_seg_student.py', '../_base_/distill_runtime.py']

model = dict(
    _delete_=True,
    type='mmdistkd.SingleTeacherDistill',
    architecture=dict(cfg_path='mmdistkd::demo/deeplabv3_r18_demo_seg_student.py'),
    # The demo's tolerant teacher, where `make demo TASK=seg` trains it (a missing file is an error naming
    # the command that trains it; benchmarks and tests pass model.teacher_ckpt=None for a random one).
    teacher=dict(cfg_path='mmdistkd::demo/tolerant_deeplabv3_r34_demo_seg_teacher.py'),
    teacher_ckpt='work_dirs/demo/seg/teacher/iter_500.pth',
    teacher_forward='seg_decode_aux',
    distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=dict(decode=dict(type='ModuleOutputs', source='decode_head.conv_seg'),
                               aux=dict(type='ModuleOutputs', source='auxiliary_head.conv_seg')),
        teacher_recorders=dict(decode=dict(type='ModuleOutputs', source='decode_head.conv_seg'),
                               aux=dict(type='ModuleOutputs', source='auxiliary_head.conv_seg')),
        distill_losses=dict(loss_kd_decode=dict(type='KLDivergence', tau=1.0, loss_weight=1.0),
                            loss_kd_aux=dict(type='KLDivergence', tau=1.0, loss_weight=0.4)),
        loss_forward_mappings=dict(
            loss_kd_decode=dict(preds_S=dict(from_student=True, recorder='decode'),
                                preds_T=dict(from_student=False, recorder='decode')),
            loss_kd_aux=dict(preds_S=dict(from_student=True, recorder='aux'),
                             preds_T=dict(from_student=False, recorder='aux')))))
