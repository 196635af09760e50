# Training one CIFAR-100 model of the CRD benchmark (mmdistkd/models/backbones, docs/cifar100.md) on the benchmark's
# recipe (HobbitLong/RepDistiller, train_teacher.py), with mmpretrain's CIFAR100 dataset in data/cifar100:
#   1 GPU x 64 images, SGD lr 0.05 (0.01 for MobileNetV2 and the ShuffleNets), momentum 0.9, no Nesterov, weight
#   decay 5e-4 on every parameter; 240 epochs, lr x0.1 at epochs 150, 180 and 210;
#   random 32x32 crop of the 4-pixel zero-padded image, horizontal flip, the benchmark's CIFAR-100 mean / std
#   (configs/_base_/datasets/cifar100_crd.py).
# The model (an ImageClassifier) is the inheriting config's.
_base_ = [
    '../datasets/cifar100_crd.py',
    'mmpretrain::_base_/default_runtime.py',
]

optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=5e-4, nesterov=False))
param_scheduler = dict(type='MultiStepLR', by_epoch=True, milestones=[150, 180, 210], gamma=0.1)
train_cfg = dict(by_epoch=True, max_epochs=240, val_interval=1)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=64)
# 240 epochs of a small model: a checkpoint every 10 epochs (and the last one), the latest two kept.
default_hooks = dict(checkpoint=dict(interval=10, max_keep_ckpts=2))
