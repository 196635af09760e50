# DPK on CIFAR-100 with the CRD benchmark's models (mmdistkd/models/backbones, docs/cifar100.md) and the DPK
# authors' CIFAR recipe (zongdaoming/dpk @7f66025: classification/mutil_cifar_kd.py, engine.py
# train_cifar_two_epoch, cifar_config.py, data/build.py build_cifar, and the yaml their README runs for CIFAR-100,
# configs/2022_03_24/2022_03_24_resnet50_mobilenetv2_last_two.yaml):
#   loss = 0.8 CE + 0.8 KL * T^2 + 0.2 * (MSE_1 + 0.6 * MSE_2), T = 1 (the yaml's gamma, alpha, beta and kd_T;
#   cifar_config's defaults 1, 1, 0.3 are what the yaml overrides), MSE_1 on the generated last stage, MSE_2 on
#   the stage before (both 'last two stages' of the authors' feature lists, patch 1);
#   the CE on soft targets: every batch goes through timm's Mixup as the authors build it (mixup alpha 0.2, cutmix
#   alpha 1.0, prob 0.5, switch_prob 0.0, label smoothing 0.1), i.e. mixup on half the batches and never cutmix
#   (switch_prob 0 never switches), and label smoothing 0.1 on every target; the teacher, KD and DPK see the same
#   mixed images. Here: mmpretrain's Mixup with probability 0.5 on the data preprocessor (the teacher consumes
#   the student's preprocessed batch) and LabelSmoothLoss, which smooths the mixed soft targets exactly as
#   timm's mixup_target does: (1 - 0.1) * mix + 0.1 / 100;
#   student: SGD lr 0.05 (also for MobileNetV2 and the ShuffleNets), momentum 0.9, Nesterov, weight decay 5e-4,
#   gradient norm clipped at 1.0 (cifar_config's CLIP_GRAD); 240 epochs, lr x0.1 at epochs 150, 180 and 210;
#   DPK modules: their own AdamW (configs/_base_/recipes/dpk_modules_adamw.py), cosine to epoch 240;
#   pi by the authors' CIFAR rule (pi_from='authors_cifar': unbiased batch CKA, fallback 0.9, floor 0.15; the
#   yaml's `cka` prior), at least 2 teacher tokens; random 32x32 crop of the 4-pixel padded image, horizontal flip,
#   the benchmark's mean / std (configs/_base_/datasets/cifar100_crd.py, as the authors' build_cifar).
# Each pair's config adds the two backbones (with the stages DPK reads in out_indices), their head widths, the
# authors' module sizes of the pair and the teacher checkpoint (docs/dpk.md, docs/cifar100.md).
# Not the authors' (docs/reproduction.md): 1 GPU x 64 images (the CRD benchmark's; the authors' CIFAR batch size
# is not published, their code's default and the yaml's is 256 per GPU with 2-step gradient accumulation, GPU
# count not given); the CKA of each stage is taken on that stage (their code, with its default feat_index -1,
# takes the last stage's ratio from the pooled features and the one before's from the last stage); a 2-D sin-cos
# position embedding (theirs 1-D over the token index); no clipping of the DPK modules' gradients (the authors
# clip the last stage's module at 1.0 on its own and not the other one; ours share one optimizer wrapper).
_base_ = [
    '../datasets/cifar100_crd.py',
    'mmpretrain::_base_/default_runtime.py',
    '../distill_runtime.py',
    './dpk_modules_adamw.py',
    './cifar100_classifier.py',
]

train_dataloader = dict(drop_last=True)  # the authors drop the last partial batch too
# timm's Mixup at prob 0.5 with switch_prob 0: mixup (alpha 0.2) on half the batches, the others unmixed. (probs as
# a float: mmpretrain's RandomBatchAugment appends to a probs list in place, which would alter the config that the
# teacher's preprocessor is copied from.)
data_preprocessor = dict(batch_augments=dict(augments=[dict(type='Mixup', alpha=0.2)], probs=0.5))
max_epochs = 240
optim_wrapper = dict(
    constructor='mmdistkd.SeparateDistillerOptimWrapperConstructor',
    architecture=dict(optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=5e-4, nesterov=True),
                      clip_grad=dict(max_norm=1.0)),
    distiller=_base_.dpk_modules_optim_wrapper)
param_scheduler = dict(
    architecture=[dict(type='MultiStepLR', by_epoch=True, milestones=[150, 180, 210], gamma=0.1)],
    distiller=[_base_.dpk_modules_warmup, dict(**_base_.dpk_modules_cosine, end=max_epochs)])
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=1)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=64)
# 240 epochs of a small model: a checkpoint every 10 epochs (and the last one), the latest two kept, and the best
# by top-1 (the authors keep theirs next to the last; which one they published is not said).
default_hooks = dict(checkpoint=dict(interval=10, max_keep_ckpts=2, save_best='accuracy/top1', rule='greater'))

# What the two DPK modules share; each pair adds channels and widths (the authors' per pair).
# The authors' classification modules: LayerNorm eps 1e-6; their CIFAR loops resize the student's map with
# align_corners=True (zongdaoming/dpk @7f66025: classification/modeling_pretrain.py, engine.py).
dpk_cifar = dict(type='DPKLoss', patch_size=1, encoder_depth=6, num_heads=8, decoder_depth=4, pi_from='authors_cifar',
                 min_tokens=2, norm_eps=1e-6, align_corners=True)
# Both backbones return the two distilled stages first (out_indices, sorted) and, where the classifier reads a
# later one, that last: data_idx 0 is the stage before the last distilled one, 1 the last.
stages = dict(type='ModuleOutputs', source='backbone')
soft_target_loss = dict(_delete_=True, type='LabelSmoothLoss', label_smooth_val=0.1, mode='original', loss_weight=1.0)
# The student and the teacher come from cifar100_classifier.py; each pair adds the backbones and head widths.
model = dict(
    student_loss_weight=0.8,  # gamma
    # timm's SoftTargetCrossEntropy on its smoothed (and mixed) targets. The teacher's head loss trains nothing
    # (the teacher is frozen); it is the first step's teacher check, which needs a loss that takes these targets.
    architecture=dict(head=dict(loss=soft_target_loss)),
    teacher=dict(head=dict(loss=soft_target_loss)),
    distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=dict(logits=dict(type='ModuleOutputs', source='head.fc'), stages=stages),
        teacher_recorders=dict(logits=dict(type='ModuleOutputs', source='head.fc'), stages=stages),
        distill_losses=dict(
            loss_kd=dict(type='KLDivergence', tau=1.0, loss_weight=0.8),  # alpha
            loss_dpk_last=dict(stage='last', loss_weight=0.2, **dpk_cifar),  # beta
            loss_dpk_before_last=dict(stage='before_last', loss_weight=0.2 * 0.6, **dpk_cifar)),
        loss_forward_mappings=dict(
            loss_kd=dict(preds_S=dict(from_student=True, recorder='logits'),
                         preds_T=dict(from_student=False, recorder='logits')),
            loss_dpk_last=dict(preds_S=dict(from_student=True, recorder='stages', data_idx=1),
                               preds_T=dict(from_student=False, recorder='stages', data_idx=1)),
            loss_dpk_before_last=dict(preds_S=dict(from_student=True, recorder='stages', data_idx=0),
                                      preds_T=dict(from_student=False, recorder='stages', data_idx=0)))))
