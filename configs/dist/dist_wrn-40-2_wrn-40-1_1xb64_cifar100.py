# DIST on CIFAR-100: WRN-40-2 teacher (75.61) -> WRN-40-1 (71.98 alone; paper: 74.43 +- 0.24 top-1).
# The CRD benchmark's teacher, converted (from the repository root):
#   curl --create-dirs -o work_dirs/teachers/crd_wrn_40_2.pth \
#       http://shape2prog.csail.mit.edu/repo/wrn_40_2_vanilla/ckpt_epoch_240.pth
#   python tools/model_converters/crd_to_mmpretrain.py --arch wrn_40_2 \
#       work_dirs/teachers/crd_wrn_40_2.pth work_dirs/teachers/cifar100_wrn_40_2.pth
_base_ = ['../_base_/recipes/dist_cifar100.py']

model = dict(
    architecture=dict(backbone=dict(type='mmdistkd.CIFARWideResNet', arch='wrn_40_1'), head=dict(in_channels=64)),
    teacher=dict(backbone=dict(type='mmdistkd.CIFARWideResNet', arch='wrn_40_2'), head=dict(in_channels=128)),
    teacher_ckpt='work_dirs/teachers/cifar100_wrn_40_2.pth')
