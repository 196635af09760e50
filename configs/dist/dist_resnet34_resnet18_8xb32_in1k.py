# DIST on ImageNet: ResNet-34 teacher (73.31) -> ResNet-18 (paper: 69.76 -> 72.07 top-1), mmpretrain's
# 8x32 recipe. Loss: CE + 2 * DIST (beta = gamma = 1, tau 1) on the logits.
_base_ = ['mmpretrain::resnet/resnet18_8xb32_in1k.py', '../_base_/distill_runtime.py']

teacher_ckpt = 'https://download.openmmlab.com/mmclassification/v0/resnet/resnet34_8xb32_in1k_20210831-f257d4e6.pth'  # noqa: E501
model = dict(
    _delete_=True,
    type='mmdistkd.SingleTeacherDistill',
    architecture=dict(cfg_path='mmpretrain::resnet/resnet18_8xb32_in1k.py'),
    teacher=dict(cfg_path='mmpretrain::resnet/resnet34_8xb32_in1k.py'),
    teacher_ckpt=teacher_ckpt,
    distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=dict(logits=dict(type='ModuleOutputs', source='head.fc')),
        teacher_recorders=dict(logits=dict(type='ModuleOutputs', source='head.fc')),
        distill_losses=dict(loss_dist=dict(type='DISTLoss', tau=1.0, loss_weight=2.0)),
        loss_forward_mappings=dict(loss_dist=dict(
            logits_S=dict(from_student=True, recorder='logits'),
            logits_T=dict(from_student=False, recorder='logits')))))
val_cfg = dict(_delete_=True, type='mmdistkd.SingleTeacherDistillValLoop')
