# Tolerant teacher on CIFAR-100 (generation 0 of "KD in Generations", methods.md section 3): ResNet-18
# (CIFAR stem) on mmpretrain's bases. mmpretrain ships no ResNet-18 CIFAR-100 config, so the recipe is its
# resnet50_8xb16_cifar100.py on the ResNet-18 model: 200 epochs, 8 GPUs x 16, lr 0.1, weight decay 5e-4,
# lr x0.2 at epochs 60 / 120 / 160. The one change beyond it: the cross-entropy is wrapped in
# mmdistkd.TolerantLoss, so mmpretrain's own tools/train.py trains it too.
_base_ = [
    'mmpretrain::_base_/models/resnet18_cifar.py',
    'mmpretrain::_base_/datasets/cifar100_bs16.py',
    'mmpretrain::_base_/schedules/cifar10_bs128.py',
    'mmpretrain::_base_/default_runtime.py',
]
custom_imports = dict(imports=['mmdistkd'], allow_failed_imports=False)

model = dict(head=dict(
    num_classes=100,
    loss=dict(
        _delete_=True,
        type='mmdistkd.TolerantLoss',  # eta and k: TolerantLoss's defaults (docs/tolerant.md)
        base_loss=dict(type='CrossEntropyLoss', loss_weight=1.0))))

optim_wrapper = dict(optimizer=dict(weight_decay=0.0005))
param_scheduler = dict(type='MultiStepLR', by_epoch=True, milestones=[60, 120, 160], gamma=0.2)
