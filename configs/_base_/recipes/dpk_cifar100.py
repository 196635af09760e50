# DPK on CIFAR-100 with the CRD benchmark's models (mmdistkd/models/backbones, docs/cifar100.md) and the DPK
# authors' CIFAR recipe (zongdaoming/dpk @7f66025: classification/mutil_cifar_kd.py, engine.py
# train_cifar_two_epoch, cifar_config.py):
#   loss = CE + KL * T^2 + 0.3 * (MSE_1 + 0.6 * MSE_2), T = 1 (cifar_config's default; the authors published no
#   CIFAR yaml that changes it), MSE_1 on the generated last stage, MSE_2 on the stage before (both 'last two
#   stages' of the authors' feature lists, patch 1);
#   student: SGD lr 0.05 (also for MobileNetV2 and the ShuffleNets), momentum 0.9, Nesterov, weight decay 5e-4;
#   240 epochs, lr x0.1 at epochs 150, 180 and 210;
#   DPK modules: their own AdamW (configs/_base_/recipes/dpk_modules_adamw.py), cosine to epoch 240;
#   pi by the authors' CIFAR rule (pi_from='authors_cifar': unbiased batch CKA, fallback 0.9, floor 0.15), at
#   least 2 teacher tokens; random 32x32 crop of the 4-pixel padded image, horizontal flip.
# Each pair's config adds the two backbones (with the stages DPK reads in out_indices), their head widths, the
# authors' module sizes of the pair and the teacher checkpoint (docs/dpk.md, docs/cifar100.md).
# Not the authors': 1 GPU x 64 images (the CRD benchmark's; the authors' CIFAR batch size is not published, their
# code's default is 256 per GPU with 2-step gradient accumulation); the CKA of each stage is taken on that stage
# (their code, with its default feat_index -1, takes the last stage's ratio from the pooled features and the
# one before's from the last stage); a 2-D sin-cos position embedding (theirs 1-D over the token index).
_base_ = [
    'mmpretrain::_base_/datasets/cifar100_bs16.py',
    'mmpretrain::_base_/default_runtime.py',
    '../distill_runtime.py',
    './dpk_modules_adamw.py',
    './cifar100_classifier.py',
]

train_dataloader = dict(batch_size=64, drop_last=True)  # the authors drop the last partial batch too
max_epochs = 240
optim_wrapper = dict(
    constructor='mmdistkd.SeparateDistillerOptimWrapperConstructor',
    architecture=dict(optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=5e-4, nesterov=True)),
    distiller=_base_.dpk_modules_optim_wrapper)
param_scheduler = dict(
    architecture=[dict(type='MultiStepLR', by_epoch=True, milestones=[150, 180, 210], gamma=0.1)],
    distiller=[_base_.dpk_modules_warmup, dict(**_base_.dpk_modules_cosine, end=max_epochs)])
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=1)
val_cfg = dict(type='mmdistkd.SingleTeacherDistillValLoop')
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=64)
# 240 epochs of a small model: a checkpoint every 10 epochs (and the last one), the latest two kept.
default_hooks = dict(checkpoint=dict(interval=10, max_keep_ckpts=2))

# What the two DPK modules share; each pair adds channels and widths (the authors' per pair).
dpk_cifar = dict(type='DPKLoss', patch_size=1, encoder_depth=6, num_heads=8, decoder_depth=4, pi_from='authors_cifar',
                 min_tokens=2)
# Both backbones return the two distilled stages first (out_indices, sorted) and, where the classifier reads a
# later one, that last: data_idx 0 is the stage before the last distilled one, 1 the last.
stages = dict(type='ModuleOutputs', source='backbone')
model = dict(
    type='mmdistkd.SingleTeacherDistill',
    architecture=_base_.cifar100_classifier,  # each pair adds the backbones and head widths
    teacher=_base_.cifar100_classifier,
    distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=dict(logits=dict(type='ModuleOutputs', source='head.fc'), stages=stages),
        teacher_recorders=dict(logits=dict(type='ModuleOutputs', source='head.fc'), stages=stages),
        distill_losses=dict(
            loss_kd=dict(type='KLDivergence', tau=1.0, loss_weight=1.0),
            loss_dpk_last=dict(stage='last', loss_weight=0.3, **dpk_cifar),
            loss_dpk_before_last=dict(stage='before_last', loss_weight=0.3 * 0.6, **dpk_cifar)),
        loss_forward_mappings=dict(
            loss_kd=dict(preds_S=dict(from_student=True, recorder='logits'),
                         preds_T=dict(from_student=False, recorder='logits')),
            loss_dpk_last=dict(preds_S=dict(from_student=True, recorder='stages', data_idx=1),
                               preds_T=dict(from_student=False, recorder='stages', data_idx=1)),
            loss_dpk_before_last=dict(preds_S=dict(from_student=True, recorder='stages', data_idx=0),
                                      preds_T=dict(from_student=False, recorder='stages', data_idx=0)))))
