# DIST on CIFAR-100: ResNet-50 teacher (79.34) -> MobileNetV2 (the benchmark's, width 0.5; 64.60 alone;
# paper: 68.66 +- 0.23 top-1). lr 0.01, as the authors train MobileNetV2 and the ShuffleNets.
# The CRD benchmark's teacher, converted (from the repository root):
#   curl --create-dirs -o work_dirs/teachers/crd_ResNet50.pth \
#       http://shape2prog.csail.mit.edu/repo/ResNet50_vanilla/ckpt_epoch_240.pth
#   python tools/model_converters/crd_to_mmpretrain.py --arch ResNet50 \
#       work_dirs/teachers/crd_ResNet50.pth work_dirs/teachers/cifar100_resnet50.pth
_base_ = ['../_base_/recipes/dist_cifar100.py']

optim_wrapper = dict(optimizer=dict(lr=0.01))
model = dict(
    architecture=dict(backbone=dict(type='mmdistkd.CIFARMobileNetV2'), head=dict(in_channels=1280)),
    teacher=dict(backbone=dict(type='mmdistkd.CIFARStemResNet', arch='resnet50'), head=dict(in_channels=2048)),
    teacher_ckpt='work_dirs/teachers/cifar100_resnet50.pth')
