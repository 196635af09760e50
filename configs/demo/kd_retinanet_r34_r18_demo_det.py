# Demo: KD (per-class binary KL on the classification logits of every FPN level) from the demo RetinaNet-R34
# teacher into the demo RetinaNet-R18 student. `make demo` passes the teacher it trained as
# model.teacher_ckpt.
_base_ = ['./retinanet_r18_demo_det_student.py', '../_base_/distill_runtime.py']

model = dict(
    _delete_=True,
    type='mmdistkd.SingleTeacherDistill',
    architecture=dict(cfg_path='mmdistkd::demo/retinanet_r18_demo_det_student.py'),
    # The demo's tolerant teacher, where `make demo` trains it (a missing file is an error naming
    # the command that trains it; benchmarks and tests pass model.teacher_ckpt=None for a random one).
    teacher=dict(cfg_path='mmdistkd::demo/tolerant_retinanet_r34_demo_det_teacher.py'),
    teacher_ckpt='work_dirs/demo/det/teacher/iter_1200.pth',
    distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=dict(cls=dict(type='ModuleOutputs', source='bbox_head.retina_cls')),
        teacher_recorders=dict(cls=dict(type='ModuleOutputs', source='bbox_head.retina_cls')),
        distill_losses=dict(loss_kd=dict(type='KLDivergence', sigmoid=True, tau=1.0, loss_weight=1.0)),
        loss_forward_mappings=dict(loss_kd=dict(
            preds_S=dict(from_student=True, recorder='cls', record_idx='all'),
            preds_T=dict(from_student=False, recorder='cls', record_idx='all')))))
