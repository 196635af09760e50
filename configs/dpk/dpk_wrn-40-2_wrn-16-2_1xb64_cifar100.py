# DPK on CIFAR-100: WRN-40-2 teacher (75.61) -> WRN-16-2 (73.26 alone; paper: 76.42 top-1), the authors' CIFAR recipe
# (configs/_base_/recipes/dpk_cifar100.py). The authors' modules for this pair (zongdaoming/dpk,
# classification/modeling_pretrain.py), patch 1:
#   last stage, wrn40_16_1: encoders 256 wide, 6 blocks; decoder 256 wide, 4 blocks; 8 heads;
#   the stage before, wrn40_16_2: encoders 128 wide, 6 blocks; decoder 128 wide, 4 blocks; 8 heads.
# The CRD benchmark's teacher, converted (from the repository root):
#   curl --create-dirs -o work_dirs/teachers/crd_wrn_40_2.pth \
#       http://shape2prog.csail.mit.edu/repo/wrn_40_2_vanilla/ckpt_epoch_240.pth
#   python tools/model_converters/crd_to_mmpretrain.py --arch wrn_40_2 \
#       work_dirs/teachers/crd_wrn_40_2.pth work_dirs/teachers/cifar100_wrn_40_2.pth
_base_ = ['../_base_/recipes/dpk_cifar100.py']

model = dict(
    architecture=dict(backbone=dict(type='mmdistkd.CIFARWideResNet', arch='wrn_16_2', out_indices=(1, 2)),
                      head=dict(in_channels=128)),
    teacher=dict(backbone=dict(type='mmdistkd.CIFARWideResNet', arch='wrn_40_2', out_indices=(1, 2)),
                 head=dict(in_channels=128)),
    teacher_ckpt='work_dirs/teachers/cifar100_wrn_40_2.pth',
    distiller=dict(distill_losses=dict(
        loss_dpk_last=dict(student_channels=128, teacher_channels=128, embed_dims=256, decoder_dims=256),
        loss_dpk_before_last=dict(student_channels=64, teacher_channels=64, embed_dims=128, decoder_dims=128))))
