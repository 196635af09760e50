"""The CRD benchmark's CIFAR models (used by DIST's and DPK's CIFAR-100 tables) and MMRazor's CIFAR
WideResNet as mmpretrain backbones."""
from .cifar_mobilenet_v2 import CIFARMobileNetV2
from .cifar_resnet import CIFARResNet
from .cifar_shufflenet_v1 import CIFARShuffleNetV1
from .cifar_shufflenet_v2 import CIFARShuffleNetV2
from .cifar_stem_resnet import CIFARStemResNet
from .cifar_vgg import CIFARVGG
from .cifar_wrn import CIFARWideResNet
from .crd_archs import CRD_ARCHS, crd_classifier_cfg
from .crd_checkpoint import crd_model_state_dict, crd_to_mmpretrain
from .wide_resnet import WideResNet

__all__ = [
    'CIFARResNet', 'CIFARStemResNet', 'CIFARWideResNet', 'CIFARVGG', 'CIFARMobileNetV2', 'CIFARShuffleNetV1',
    'CIFARShuffleNetV2', 'CRD_ARCHS', 'crd_classifier_cfg', 'crd_model_state_dict', 'crd_to_mmpretrain', 'WideResNet'
]
