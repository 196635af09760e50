# Demo: DPK on the last two backbone stages from the demo DeepLabV3-R34 teacher into the demo DeepLabV3-R18
# student (layer3 64 -> 128 channels, layer4 128 -> 256), MSE weight 1 per stage, with the authors' classification
# recipe around it: the DPK modules on their own AdamW (configs/_base_/recipes/dpk_modules_adamw.py; warm-up over
# the first 20% of the iterations, then cosine) while the student keeps its SGD and poly schedule. pi from our
# token CKA, as in configs/dpk/dpk_deeplabv3_r101_r18_cityscapes.py. Scaled to the demo: DPK's light modules.
# Both stages are 16 x 32 on the 128 x 256 crops (output stride 8): patch 2 gives 128 tokens.
# `make demo TASK=seg` passes the teacher it trained as model.teacher_ckpt.
_base_ = [
    './deeplabv3_r18_demo_seg_student.py', '../_base_/distill_runtime.py', '../_base_/dpk_light.py',
    '../_base_/recipes/dpk_modules_adamw.py', '../_base_/recipes/dpk_resnet_stages.py'
]

dpk_shared = dict(type='DPKLoss', patch_size=2, loss_weight=1.0, **_base_.dpk_light)
model = dict(
    _delete_=True,
    type='mmdistkd.SingleTeacherDistill',
    architecture=dict(cfg_path='mmdistkd::demo/deeplabv3_r18_demo_seg_student.py'),
    # The demo's tolerant teacher, where `make demo TASK=seg` trains it (a missing file is an error naming
    # the command that trains it; benchmarks and tests pass model.teacher_ckpt=None for a random one).
    teacher=dict(cfg_path='mmdistkd::demo/tolerant_deeplabv3_r34_demo_seg_teacher.py'),
    teacher_ckpt='work_dirs/demo/seg/teacher/iter_500.pth',
    distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=_base_.resnet_stage_recorders,
        teacher_recorders=_base_.resnet_stage_recorders,
        distill_losses=dict(
            loss_dpk_layer3=dict(student_channels=64, teacher_channels=128, stage='layer3', **dpk_shared),
            loss_dpk_layer4=dict(student_channels=128, teacher_channels=256, stage='layer4', **dpk_shared)),
        loss_forward_mappings=_base_.dpk_resnet_stage_mappings))

optim_wrapper = dict(_base_.dpk_modules_beside_student, _delete_=True,
                     architecture=_base_.optim_wrapper)
param_scheduler = dict(_delete_=True, architecture=_base_.param_scheduler,
                       distiller=dict(_base_.dpk_modules_warmup_cosine, by_epoch=False, convert_to_iter_based=False))
