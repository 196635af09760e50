# CIFAR-100 as the CRD benchmark's training script feeds it (HobbitLong/RepDistiller, dataset/cifar100.py;
# the DIST authors' dist_cifar.yaml and the DPK authors' data/build.py use the same values): mmpretrain's
# CIFAR100 dataset and pipeline (random 32x32 crop of the 4-pixel zero-padded image, horizontal flip), normalised
# with the benchmark's mean (0.5071, 0.4867, 0.4408) and std (0.2675, 0.2565, 0.2761), here x255 as mmpretrain's
# preprocessor works on 0-255 pixels. mmpretrain's own cifar100_bs16.py rounds them differently
# (129.304 / 255 = 0.50707, 68.170 / 255 = 0.26733): the converted teachers were trained on the benchmark's.
# RGB order, as mmpretrain's CIFAR100 dataset yields its images (to_rgb=False).
_base_ = ['mmpretrain::_base_/datasets/cifar100_bs16.py']

data_preprocessor = dict(num_classes=100, mean=[129.3105, 124.1085, 112.404], std=[68.2125, 65.4075, 70.4055],
                         to_rgb=False)
train_dataloader = dict(batch_size=64)  # the benchmark's batch (1 GPU)
