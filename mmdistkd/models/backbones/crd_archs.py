"""The CRD benchmark's CIFAR model names (HobbitLong/RepDistiller ``models/__init__.py``: ``model_dict``)
mapped to mmdistkd backbones: what the checkpoint converter's ``--arch`` and the CIFAR-100 configs name."""

# name: (backbone config, channels into the classifier, name of the benchmark's classifier module)
CRD_ARCHS = {
    **{name: (dict(type='mmdistkd.CIFARResNet', arch=name), 64, 'fc')
       for name in ('resnet8', 'resnet14', 'resnet20', 'resnet32', 'resnet44', 'resnet56', 'resnet110')},
    'resnet8x4': (dict(type='mmdistkd.CIFARResNet', arch='resnet8x4'), 256, 'fc'),
    'resnet32x4': (dict(type='mmdistkd.CIFARResNet', arch='resnet32x4'), 256, 'fc'),
    'ResNet50': (dict(type='mmdistkd.CIFARStemResNet', arch='resnet50'), 2048, 'linear'),
    'wrn_16_1': (dict(type='mmdistkd.CIFARWideResNet', arch='wrn_16_1'), 64, 'fc'),
    'wrn_16_2': (dict(type='mmdistkd.CIFARWideResNet', arch='wrn_16_2'), 128, 'fc'),
    'wrn_40_1': (dict(type='mmdistkd.CIFARWideResNet', arch='wrn_40_1'), 64, 'fc'),
    'wrn_40_2': (dict(type='mmdistkd.CIFARWideResNet', arch='wrn_40_2'), 128, 'fc'),
    **{name: (dict(type='mmdistkd.CIFARVGG', arch=name), 512, 'classifier')
       for name in ('vgg8', 'vgg11', 'vgg13', 'vgg16', 'vgg19')},
    'MobileNetV2': (dict(type='mmdistkd.CIFARMobileNetV2'), 1280, 'classifier.0'),
    'ShuffleV1': (dict(type='mmdistkd.CIFARShuffleNetV1'), 960, 'linear'),
    'ShuffleV2': (dict(type='mmdistkd.CIFARShuffleNetV2'), 1024, 'linear'),
}


def crd_classifier_cfg(arch, num_classes=100):
    """mmpretrain ``ImageClassifier`` config of a CRD model: its backbone, global average pooling and a
    linear head (the benchmark's classifier), e.g. ``crd_classifier_cfg('wrn_40_2')``."""
    if arch not in CRD_ARCHS:
        raise ValueError(f'unknown CRD model {arch!r}; use one of {list(CRD_ARCHS)}')
    backbone, in_channels, _ = CRD_ARCHS[arch]
    return dict(
        type='mmpretrain.ImageClassifier',
        backbone=dict(backbone),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=num_classes, in_channels=in_channels,
                  loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))
