# DIST on Cityscapes: DeepLabV3-R101 teacher -> PSPNet-R18 (paper: 72.55 -> 76.31 mIoU), same recipe as
# dist_deeplabv3_r101_r18_cityscapes.py.
_base_ = ['./dist_deeplabv3_r101_r18_cityscapes.py']

model = dict(architecture=dict(cfg_path='mmseg::pspnet/pspnet_r18-d8_4xb2-80k_cityscapes-512x1024.py'))
