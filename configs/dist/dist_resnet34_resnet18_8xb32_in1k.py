# DIST on ImageNet: ResNet-34 teacher -> ResNet-18 (paper: 69.76 -> 72.07 top-1, with torchvision's ResNet-34,
# 73.31), the authors' baseline recipe (configs/_base_/recipes/dist_in1k.py): CE + 2 * DIST (beta = gamma = 1,
# tau 1) on the logits, 100 epochs. The teacher is mmpretrain's ResNet-34 (73.62 top-1), the same architecture
# trained by mmpretrain, slightly stronger than the paper's.
_base_ = ['../_base_/recipes/dist_in1k.py']

teacher_ckpt = 'https://download.openmmlab.com/mmclassification/v0/resnet/resnet34_8xb32_in1k_20210831-f257d4e6.pth'  # noqa: E501
model = dict(
    architecture=dict(cfg_path='mmpretrain::resnet/resnet18_8xb32_in1k.py'),
    teacher=dict(cfg_path='mmpretrain::resnet/resnet34_8xb32_in1k.py'),
    teacher_ckpt=teacher_ckpt)
