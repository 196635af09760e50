# DIST on CIFAR-100: ResNet-56 teacher (72.34) -> ResNet-20 (69.06 alone; paper: 71.75 +- 0.30 top-1).
# The CRD benchmark's teacher, converted (from the repository root):
#   curl --create-dirs -o work_dirs/teachers/crd_resnet56.pth \
#       http://shape2prog.csail.mit.edu/repo/resnet56_vanilla/ckpt_epoch_240.pth
#   python tools/model_converters/crd_to_mmpretrain.py --arch resnet56 \
#       work_dirs/teachers/crd_resnet56.pth work_dirs/teachers/cifar100_resnet56.pth
_base_ = ['../_base_/recipes/dist_cifar100.py']

model = dict(
    architecture=dict(backbone=dict(type='mmdistkd.CIFARResNet', arch='resnet20'), head=dict(in_channels=64)),
    teacher=dict(backbone=dict(type='mmdistkd.CIFARResNet', arch='resnet56'), head=dict(in_channels=64)),
    teacher_ckpt='work_dirs/teachers/cifar100_resnet56.pth')
