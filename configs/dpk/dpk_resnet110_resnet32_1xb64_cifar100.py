# DPK on CIFAR-100: ResNet-110 teacher (74.31) -> ResNet-32 (71.14 alone; paper: 74.89 top-1), the authors' CIFAR
# recipe (configs/_base_/recipes/dpk_cifar100.py). The authors' modules for this pair (zongdaoming/dpk,
# classification/modeling_pretrain.py), patch 1:
#   last stage, resnet110_32_1: encoders 128 wide, 6 blocks; decoder 128 wide, 4 blocks; 8 heads;
#   the stage before, resnet110_32_2: encoders 64 wide, 6 blocks; decoder 64 wide, 6 blocks; 8 heads.
# The CRD benchmark's teacher, converted (from the repository root):
#   curl --create-dirs -o work_dirs/teachers/crd_resnet110.pth \
#       http://shape2prog.csail.mit.edu/repo/resnet110_vanilla/ckpt_epoch_240.pth
#   python tools/model_converters/crd_to_mmpretrain.py --arch resnet110 \
#       work_dirs/teachers/crd_resnet110.pth work_dirs/teachers/cifar100_resnet110.pth
_base_ = ['../_base_/recipes/dpk_cifar100.py']

model = dict(
    architecture=dict(backbone=dict(type='mmdistkd.CIFARResNet', arch='resnet32', out_indices=(1, 2)),
                      head=dict(in_channels=64)),
    teacher=dict(backbone=dict(type='mmdistkd.CIFARResNet', arch='resnet110', out_indices=(1, 2)),
                 head=dict(in_channels=64)),
    teacher_ckpt='work_dirs/teachers/cifar100_resnet110.pth',
    distiller=dict(distill_losses=dict(
        loss_dpk_last=dict(student_channels=64, teacher_channels=64, embed_dims=128, decoder_dims=128),
        loss_dpk_before_last=dict(student_channels=32, teacher_channels=32, embed_dims=64, decoder_dims=64,
                                  decoder_depth=6))))
