# DPK on ImageNet: ResNet-50 teacher (76.16) -> ResNet-18, otherwise as dpk_resnet34_resnet18_8xb32_in1k.py.
# The teacher's last two stages are 4x wider (1024 and 2048 channels against 256 and 512). The tokens keep
# the student's stage width: tokens as wide as the teacher's stages would make the two DPK modules about
# 0.8 B parameters (16 transformer blocks of width 2048 alone hold 0.8 B).
_base_ = ['./dpk_resnet34_resnet18_8xb32_in1k.py']

teacher_ckpt = 'https://download.openmmlab.com/mmclassification/v0/resnet/resnet50_8xb32_in1k_20210831-ea4938fc.pth'  # noqa: E501
model = dict(
    teacher=dict(cfg_path='mmpretrain::resnet/resnet50_8xb32_in1k.py'),
    teacher_ckpt=teacher_ckpt,
    distiller=dict(distill_losses=dict(loss_dpk_layer3=dict(teacher_channels=1024),
                                       loss_dpk_layer4=dict(teacher_channels=2048))))
