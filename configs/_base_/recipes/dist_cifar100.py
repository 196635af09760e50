# DIST on CIFAR-100 with the CRD benchmark's models (mmdistkd/models/backbones), the authors' recipe
# (hunto/DIST_KD: classification/configs/strategies/distill/dist_cifar.yaml and its training code):
#   loss = CE + 2 * DIST on the logits, DIST with beta = gamma = 1, tau = 4 and the tau^2 factor;
#   1 GPU x 64 images, SGD lr 0.05 (0.01 for MobileNetV2 and the ShuffleNets), momentum 0.9, no Nesterov,
#   weight decay 5e-4 on every parameter; 240 epochs, lr x0.1 at epochs 150, 180 and 210;
#   random 32x32 crop of the 4-pixel padded image, horizontal flip, the yaml's CIFAR-100 mean / std (the CRD
#   benchmark's: configs/_base_/datasets/cifar100_crd.py), for the student and the teacher alike.
# Each pair's config adds the student's and the teacher's backbone, their head widths and the teacher
# checkpoint (docs/cifar100.md).
_base_ = [
    '../datasets/cifar100_crd.py',
    'mmpretrain::_base_/default_runtime.py',
    '../distill_runtime.py',
    './cifar100_classifier.py',
]

train_dataloader = dict(drop_last=True)  # the authors drop the last partial batch too
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=5e-4, nesterov=False))
param_scheduler = dict(type='MultiStepLR', by_epoch=True, milestones=[150, 180, 210], gamma=0.1)
train_cfg = dict(by_epoch=True, max_epochs=240, val_interval=1)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=64)

# The student and the teacher come from cifar100_classifier.py; each pair adds the backbones and head widths.
model = dict(
    distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=dict(logits=dict(type='ModuleOutputs', source='head.fc')),
        teacher_recorders=dict(logits=dict(type='ModuleOutputs', source='head.fc')),
        distill_losses=dict(loss_dist=dict(type='DISTLoss', tau=4.0, tau_square=True, loss_weight=2.0)),
        loss_forward_mappings=dict(loss_dist=dict(
            logits_S=dict(from_student=True, recorder='logits'),
            logits_T=dict(from_student=False, recorder='logits')))))
