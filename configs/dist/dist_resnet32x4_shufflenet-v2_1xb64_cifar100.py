# DIST on CIFAR-100: ResNet-32x4 teacher (79.42) -> ShuffleNetV2 (71.82 alone; paper: 77.35 +- 0.25
# top-1). lr 0.01, as the authors train MobileNetV2 and the ShuffleNets.
# The CRD benchmark's teacher, converted (from the repository root):
#   curl --create-dirs -o work_dirs/teachers/crd_resnet32x4.pth \
#       http://shape2prog.csail.mit.edu/repo/resnet32x4_vanilla/ckpt_epoch_240.pth
#   python tools/model_converters/crd_to_mmpretrain.py --arch resnet32x4 \
#       work_dirs/teachers/crd_resnet32x4.pth work_dirs/teachers/cifar100_resnet32x4.pth
_base_ = ['../_base_/recipes/dist_cifar100.py']

optim_wrapper = dict(optimizer=dict(lr=0.01))
model = dict(
    architecture=dict(backbone=dict(type='mmdistkd.CIFARShuffleNetV2'), head=dict(in_channels=1024)),
    teacher=dict(backbone=dict(type='mmdistkd.CIFARResNet', arch='resnet32x4'), head=dict(in_channels=256)),
    teacher_ckpt='work_dirs/teachers/cifar100_resnet32x4.pth')
