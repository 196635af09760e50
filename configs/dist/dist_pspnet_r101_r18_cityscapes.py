# DIST on Cityscapes: DeepLabV3-R101 teacher -> PSPNet-R18 (paper: 72.55 -> 76.31 mIoU), same recipe and teacher
# as dist_deeplabv3_r101_r18_cityscapes.py: pixels labelled 255 are left out of DIST (the authors correlate every
# pixel; exclude_ignored=False on both losses gives their behaviour, see that file). The student is mmseg's
# PSPNet ResNetV1c-18 (74.87 mIoU alone on mmseg's 80k schedule, stronger than the paper's 72.55).
_base_ = ['./dist_deeplabv3_r101_r18_cityscapes.py']

model = dict(architecture=dict(cfg_path='mmseg::pspnet/pspnet_r18-d8_4xb2-80k_cityscapes-512x1024.py'))
