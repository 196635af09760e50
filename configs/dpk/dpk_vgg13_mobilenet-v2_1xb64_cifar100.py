# DPK on CIFAR-100: VGG-13 teacher (74.64) -> MobileNetV2 (64.60 alone; paper: 68.63 top-1), the authors' CIFAR recipe
# (configs/_base_/recipes/dpk_cifar100.py). The authors' modules for this pair (zongdaoming/dpk,
# classification/modeling_pretrain.py), patch 1:
#   last stage, vgg13_mobile_1: encoders 320 wide, 6 blocks; decoder 512 wide, 4 blocks; 8 heads;
#   the stage before, vgg13_mobile_2: encoders 128 wide, 6 blocks; decoder 256 wide, 4 blocks; 4 heads.
# The student's maps are half the teacher's size and are resized to it (bilinear), as the authors'.
# The CRD benchmark's teacher, converted (from the repository root):
#   curl --create-dirs -o work_dirs/teachers/crd_vgg13.pth \
#       http://shape2prog.csail.mit.edu/repo/vgg13_vanilla/ckpt_epoch_240.pth
#   python tools/model_converters/crd_to_mmpretrain.py --arch vgg13 \
#       work_dirs/teachers/crd_vgg13.pth work_dirs/teachers/cifar100_vgg13.pth
_base_ = ['../_base_/recipes/dpk_cifar100.py']

model = dict(
    architecture=dict(backbone=dict(type='mmdistkd.CIFARMobileNetV2', out_indices=(4, 6, 7)),
                      head=dict(in_channels=1280)),
    teacher=dict(backbone=dict(type='mmdistkd.CIFARVGG', arch='vgg13', out_indices=(2, 4)),
                 head=dict(in_channels=512)),
    teacher_ckpt='work_dirs/teachers/cifar100_vgg13.pth',
    distiller=dict(distill_losses=dict(
        loss_dpk_last=dict(student_channels=160, teacher_channels=512, embed_dims=320, decoder_dims=512),
        loss_dpk_before_last=dict(student_channels=48, teacher_channels=256, embed_dims=128, decoder_dims=256,
                                  num_heads=4))))
