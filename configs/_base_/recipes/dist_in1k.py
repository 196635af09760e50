# DIST on ImageNet, the authors' baseline recipe (hunto/DIST_KD: classification/configs/strategies/distill/
# resnet_dist.yaml and the training code of hunto/image_classification_sota), for the ResNet-34 -> ResNet-18 and
# ResNet-50 -> MobileNet rows:
#   loss = CE + 2 * DIST on the logits, DIST with beta = gamma = 1, tau = 1;
#   8 GPUs x 32 images, SGD lr 0.1, momentum 0.9, Nesterov, weight decay 1e-4 on weights only (none on the
#   norm layers' parameters and the biases); 100 epochs, lr x0.1 every 30 epochs, no warm-up, no label smoothing;
#   random-resized 224 crop and horizontal flip, 256 resize + 224 centre crop for val, with PIL's bilinear resize
#   (mmpretrain's imagenet_bs32_pil_resize.py).
# Each pair's config adds the student (`architecture`), the teacher and its checkpoint.
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs32_pil_resize.py',
    'mmpretrain::_base_/default_runtime.py',
    '../distill_runtime.py',
]

optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=1e-4, nesterov=True),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))
param_scheduler = dict(type='MultiStepLR', by_epoch=True, milestones=[30, 60, 90], gamma=0.1)
train_cfg = dict(by_epoch=True, max_epochs=100, val_interval=1)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=256)

model = dict(
    type='mmdistkd.SingleTeacherDistill',
    distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=dict(logits=dict(type='ModuleOutputs', source='head.fc')),
        teacher_recorders=dict(logits=dict(type='ModuleOutputs', source='head.fc')),
        distill_losses=dict(loss_dist=dict(type='DISTLoss', tau=1.0, loss_weight=2.0)),
        loss_forward_mappings=dict(loss_dist=dict(
            logits_S=dict(from_student=True, recorder='logits'),
            logits_T=dict(from_student=False, recorder='logits')))))
