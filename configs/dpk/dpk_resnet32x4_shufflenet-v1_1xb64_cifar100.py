# DPK on CIFAR-100: ResNet-32x4 teacher (79.42) -> ShuffleNetV1 (70.50 alone; paper: 76.00 top-1), the authors' CIFAR
# recipe (configs/_base_/recipes/dpk_cifar100.py). The authors' modules for this pair (zongdaoming/dpk,
# classification/modeling_pretrain.py), patch 1:
#   last stage, resnet32_shufflev1_1: encoders 512 wide, 6 blocks; decoder 256 wide, 4 blocks; 8 heads;
#   the stage before, resnet32_shufflev1_2: encoders 256 wide, 6 blocks; decoder 128 wide, 4 blocks; 8 heads.
# The student's maps are half the teacher's size and are resized to it (bilinear), as the authors'.
# The CRD benchmark's teacher, converted (from the repository root):
#   curl --create-dirs -o work_dirs/teachers/crd_resnet32x4.pth \
#       http://shape2prog.csail.mit.edu/repo/resnet32x4_vanilla/ckpt_epoch_240.pth
#   python tools/model_converters/crd_to_mmpretrain.py --arch resnet32x4 \
#       work_dirs/teachers/crd_resnet32x4.pth work_dirs/teachers/cifar100_resnet32x4.pth
_base_ = ['../_base_/recipes/dpk_cifar100.py']

model = dict(
    architecture=dict(backbone=dict(type='mmdistkd.CIFARShuffleNetV1', out_indices=(1, 2)),
                      head=dict(in_channels=960)),
    teacher=dict(backbone=dict(type='mmdistkd.CIFARResNet', arch='resnet32x4', out_indices=(1, 2)),
                 head=dict(in_channels=256)),
    teacher_ckpt='work_dirs/teachers/cifar100_resnet32x4.pth',
    distiller=dict(distill_losses=dict(
        loss_dpk_last=dict(student_channels=960, teacher_channels=256, embed_dims=512, decoder_dims=256),
        loss_dpk_before_last=dict(student_channels=480, teacher_channels=128, embed_dims=256, decoder_dims=128))))
