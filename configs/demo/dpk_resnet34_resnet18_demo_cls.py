# Demo: DPK on the last two stages next to KD, from the demo ResNet-34 teacher into the demo ResNet-18 student,
# on the authors' classification recipe (configs/dpk/dpk_resnet34_resnet18_8xb32_in1k.py): 0.8 CE + 0.8 KD at
# tau 1 + 0.2 MSE per stage, pi by the authors' ImageNet rule over the 16 images of a batch, the DPK modules on
# their own AdamW (configs/_base_/recipes/dpk_modules_adamw.py; warm-up over the first 20% of the iterations, as
# the authors' 20 of 100 ImageNet epochs, then cosine) while the student keeps its SGD and schedule. Scaled to the
# demo: DPK's light modules (one block each, 128-wide tokens, 4 heads). layer3 is 8 x 8 and layer4 4 x 4 on the
# 32 x 32 images: patch 1 gives 64 and 16 tokens. `make demo TASK=cls` passes the teacher it trained as
# model.teacher_ckpt; the prior ratios are logged as dpk_pi.layer3 / dpk_pi.layer4.
_base_ = [
    './kd_resnet34_resnet18_demo_cls.py', '../_base_/dpk_light.py', '../_base_/recipes/dpk_modules_adamw.py',
    '../_base_/recipes/dpk_resnet_stages.py'
]

dpk_shared = dict(type='DPKLoss', patch_size=1, pi_from='authors_imagenet', loss_weight=0.2, **_base_.dpk_light)
model = dict(
    student_loss_weight=0.8,
    distiller=dict(
        student_recorders=_base_.resnet_stage_recorders,
        teacher_recorders=_base_.resnet_stage_recorders,
        distill_losses=dict(
            loss_kd=dict(tau=1.0, loss_weight=0.8),
            loss_dpk_layer3=dict(student_channels=64, teacher_channels=128, stage='layer3', **dpk_shared),
            loss_dpk_layer4=dict(student_channels=128, teacher_channels=256, stage='layer4', **dpk_shared)),
        loss_forward_mappings=_base_.dpk_resnet_stage_mappings))

optim_wrapper = dict(_base_.dpk_modules_beside_student, _delete_=True,
                     architecture=_base_.optim_wrapper)
param_scheduler = dict(_delete_=True, architecture=_base_.param_scheduler,
                       distiller=dict(_base_.dpk_modules_warmup_cosine, by_epoch=False, convert_to_iter_based=False))
