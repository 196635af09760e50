# The DIST authors' Cityscapes training augmentation (hunto/DIST_KD, segmentation/dataset/datasets.py,
# CSTrainValSet): scale the whole image by a random factor from 0.5 to 2.0 in steps of 0.1 (0.5 + randint(0, 15)
# / 10; bilinear for the image, nearest for the labels), pad to the crop (the data preprocessor pads, with 0
# after normalisation as theirs and the ignore index for the labels; never needed on 2048x1024 images), a random
# 512x1024 crop and a horizontal flip with probability 0.5. Nothing else: no photometric distortion and no limit
# on one class's share of the crop (mmseg's cityscapes.py has both). A config uses it as its training pipeline:
#   train_dataloader = dict(dataset=dict(pipeline=_base_.dist_kd_cityscapes_train_pipeline))
# (a name of its own: mmseg's dataset config, inherited with the student's, already defines train_pipeline).
dist_kd_cityscapes_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomChoiceResize', scales=[(2048 * step // 10, 1024 * step // 10) for step in range(5, 21)],
         keep_ratio=True),
    dict(type='RandomCrop', crop_size=(512, 1024)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
