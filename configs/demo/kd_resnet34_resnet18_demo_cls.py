# Demo: KD (KL, tau 4) from the demo ResNet-34 teacher into the demo ResNet-18 student.
# `make demo TASK=cls` passes the teacher it trained.
_base_ = ['./resnet18_demo_cls_student.py', '../_base_/distill_runtime.py']

model = dict(
    _delete_=True,
    type='mmdistkd.SingleTeacherDistill',
    architecture=dict(cfg_path='mmdistkd::demo/resnet18_demo_cls_student.py'),
    # The demo's tolerant teacher, where `make demo TASK=cls` trains it (a missing file is an error naming
    # the command that trains it; benchmarks and tests pass model.teacher_ckpt=None for a random one).
    teacher=dict(cfg_path='mmdistkd::demo/tolerant_resnet34_demo_cls_teacher.py'),
    teacher_ckpt='work_dirs/demo/cls/teacher/iter_1500.pth',
    distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=dict(logits=dict(type='ModuleOutputs', source='head.fc')),
        teacher_recorders=dict(logits=dict(type='ModuleOutputs', source='head.fc')),
        distill_losses=dict(loss_kd=dict(type='KLDivergence', tau=4.0, loss_weight=1.0)),
        loss_forward_mappings=dict(loss_kd=dict(
            preds_S=dict(from_student=True, recorder='logits'),
            preds_T=dict(from_student=False, recorder='logits')))))
