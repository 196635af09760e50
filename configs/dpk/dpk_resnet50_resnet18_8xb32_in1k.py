# DPK on ImageNet: ResNet-50 teacher (mmpretrain's, 76.55) -> ResNet-18, otherwise as
# dpk_resnet34_resnet18_8xb32_in1k.py. The teacher's last two stages are 4x wider (1024 and 2048 channels
# against 256 and 512). The authors' modules for this pair (zongdaoming/dpk, classification/modeling_pretrain.py,
# as their configs/2022_03_17/2022_03_17_resnet50_last_two_cka.yaml picks them):
#   layer4 (7 x 7, resnet50_18_1): patch 1, encoders 640 wide, 6 blocks, 8 heads; decoder 1024 wide, 4 blocks, 8 heads;
#   layer3 (14 x 14, resnet50_18_2): patch 2 (49 tokens), encoders 512 wide, 4 blocks, 8 heads; decoder 1024 wide,
#   4 blocks, 16 heads.
# Each module's two encoders share one width (the authors' projection to the decoder is shared by both sides).
_base_ = ['./dpk_resnet34_resnet18_8xb32_in1k.py']

teacher_ckpt = 'https://download.openmmlab.com/mmclassification/v0/resnet/resnet50_8xb32_in1k_20210831-ea4938fc.pth'  # noqa: E501
model = dict(
    teacher=dict(cfg_path='mmpretrain::resnet/resnet50_8xb32_in1k.py'),
    teacher_ckpt=teacher_ckpt,
    distiller=dict(distill_losses=dict(
        loss_dpk_layer3=dict(teacher_channels=1024, patch_size=2, embed_dims=512, encoder_depth=4, decoder_dims=1024,
                             decoder_heads=16),
        loss_dpk_layer4=dict(teacher_channels=2048, embed_dims=640, decoder_dims=1024))))
