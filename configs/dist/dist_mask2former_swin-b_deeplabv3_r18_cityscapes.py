# DIST across model families on Cityscapes: Mask2Former Swin-B (ImageNet-22k pre-trained) teacher -> DeepLabV3
# R18-D8 (ResNetV1c-18), with the student recipe of dist_deeplabv3_r101_r18_cityscapes.py (the paper's: crop
# 512x1024, 16 images in total (8 GPUs x 2), lr 0.02, 40k iterations, the DIST authors' augmentation). Published
# by mmseg (single-scale mIoU): teacher Mask2Former Swin-B 83.52 (90k), student DeepLabV3 R18-D8 alone 76.70
# (80k). No DIST number is published for this pair: it is ours.
# What DIST relates: the teacher's per-pixel class scores, as its inference builds them (QuerySegLogScores on
# its decode head: the log of softmax(query classes without "no object") times sigmoid(query masks) summed over
# queries, last decoder layer; its softmax is the scores normalised over the 19 classes), and the student's
# decode logits (decode_head.conv_seg). The teacher's scores are at 1/4 of the input, the student's logits at
# 1/8: resize_teacher=True resizes the teacher's (bilinear) to the student's size. tau 1, weight 1, pixels
# labelled 255 left out, as dist_deeplabv3_r101_r18_cityscapes.py. The student's auxiliary head keeps its
# cross-entropy only: the teacher has no auxiliary head.
_base_ = [
    'mmseg::deeplabv3/deeplabv3_r18-d8_4xb2-80k_cityscapes-512x1024.py', '../_base_/distill_runtime.py',
    '../_base_/datasets/cityscapes_dist_kd.py'
]

teacher_ckpt = 'https://download.openmmlab.com/mmsegmentation/v0.5/mask2former/mask2former_swin-b-in22k-384x384-pre_8xb2-90k_cityscapes-512x1024/mask2former_swin-b-in22k-384x384-pre_8xb2-90k_cityscapes-512x1024_20221203_045030-9a86a225.pth'  # noqa: E501
model = dict(
    _delete_=True,
    type='mmdistkd.SingleTeacherDistill',
    architecture=dict(cfg_path='mmseg::deeplabv3/deeplabv3_r18-d8_4xb2-80k_cityscapes-512x1024.py'),
    teacher=dict(cfg_path='mmseg::mask2former/mask2former_swin-b-in22k-384x384-pre_8xb2-90k_cityscapes-512x1024.py'),
    teacher_ckpt=teacher_ckpt,
    teacher_forward='seg_decode_aux',
    distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=dict(decode=dict(type='ModuleOutputs', source='decode_head.conv_seg')),
        teacher_recorders=dict(scores=dict(type='QuerySegLogScores', source='decode_head')),
        distill_losses=dict(loss_dist_decode=dict(
            type='DISTLoss', tau=1.0, loss_weight=1.0, exclude_ignored=True, resize_teacher=True)),
        loss_forward_mappings=dict(loss_dist_decode=dict(
            logits_S=dict(from_student=True, recorder='decode'),
            logits_T=dict(from_student=False, recorder='scores')))))

# The paper's DeepLabV3 schedule and augmentation: 8 GPUs x 2 images, 40k iterations, lr 0.02.
train_dataloader = dict(batch_size=2, dataset=dict(pipeline=_base_.dist_kd_cityscapes_train_pipeline))
optim_wrapper = dict(optimizer=dict(lr=0.02))
max_iters = 40000
train_cfg = dict(max_iters=max_iters, val_interval=4000)
param_scheduler = [dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=max_iters, by_epoch=False)]
default_hooks = dict(checkpoint=dict(interval=4000, save_best='mIoU', rule='greater'))
