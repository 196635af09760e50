# A CRD-benchmark CIFAR-100 model as mmpretrain sees it: the benchmark's network as backbone (each pair's config
# adds it), its classifier as a linear head after global average pooling. The DIST and DPK CIFAR-100 recipes use
# it for both the student and the teacher.
cifar100_classifier = dict(
    type='mmpretrain.ImageClassifier',
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=100, loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))
