# A CRD-benchmark CIFAR-100 model as mmpretrain sees it: the benchmark's network as backbone (each pair's config
# adds it), its classifier as a linear head after global average pooling. The DIST and DPK CIFAR-100 recipes start
# from `model`: this classifier as the student and as the teacher.
cifar100_classifier = dict(
    type='mmpretrain.ImageClassifier',
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=100, loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))
# Neither has a data_preprocessor: both get the config's top-level one (configs/_base_/datasets/cifar100_crd.py),
# the normalisation the benchmark's teachers were trained with; the teacher consumes the student's preprocessed
# batch, batch augments included.
model = dict(type='mmdistkd.SingleTeacherDistill', architecture=cifar100_classifier, teacher=cifar100_classifier)
