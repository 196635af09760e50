# DIST on Cityscapes: Mask2Former Swin-B (ImageNet-22k pre-trained) teacher -> Mask2Former R50, mmseg's models and
# the student's own recipe (mask2former_r50_8xb2-90k_cityscapes-512x1024.py: crop 512x1024, 8 GPUs x 2 images,
# AdamW lr 1e-4, 90k iterations). Published by mmseg (single-scale mIoU): teacher Swin-B 83.52, student R50
# alone 80.44. No DIST number is published for Mask2Former: this pair is ours.
# Why Swin-B and not R101: mmseg's Mask2Former R101 (80.80) is only 0.36 mIoU above the R50 student; Swin-B is
# the strongest teacher mmseg publishes short of Swin-L (83.65), at about half of Swin-L's size.
# What DIST relates: Mask2Former has no per-pixel logits in training; QuerySegLogScores records, for teacher and
# student alike, the per-pixel class scores of the last decoder layer that mmseg's inference builds
# (softmax of the query classes without "no object" times the sigmoid of the query masks, summed over queries;
# 1/4 of the input for both) as their log, whose softmax is the scores normalised over the 19 classes. DIST per
# pixel on those, tau 1 and weight 1 as the paper's Cityscapes recipe (not tuned for Mask2Former). Pixels
# labelled 255 are left out (exclude_ignored=True).
_base_ = ['mmseg::mask2former/mask2former_r50_8xb2-90k_cityscapes-512x1024.py', '../_base_/distill_runtime.py']

teacher_ckpt = 'https://download.openmmlab.com/mmsegmentation/v0.5/mask2former/mask2former_swin-b-in22k-384x384-pre_8xb2-90k_cityscapes-512x1024/mask2former_swin-b-in22k-384x384-pre_8xb2-90k_cityscapes-512x1024_20221203_045030-9a86a225.pth'  # noqa: E501
model = dict(
    _delete_=True,
    type='mmdistkd.SingleTeacherDistill',
    architecture=dict(cfg_path='mmseg::mask2former/mask2former_r50_8xb2-90k_cityscapes-512x1024.py'),
    teacher=dict(cfg_path='mmseg::mask2former/mask2former_swin-b-in22k-384x384-pre_8xb2-90k_cityscapes-512x1024.py'),
    teacher_ckpt=teacher_ckpt,
    teacher_forward='seg_decode_aux',
    distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=dict(scores=dict(type='QuerySegLogScores', source='decode_head')),
        teacher_recorders=dict(scores=dict(type='QuerySegLogScores', source='decode_head')),
        distill_losses=dict(loss_dist_decode=dict(type='DISTLoss', tau=1.0, loss_weight=1.0, exclude_ignored=True)),
        loss_forward_mappings=dict(loss_dist_decode=dict(
            logits_S=dict(from_student=True, recorder='scores'),
            logits_T=dict(from_student=False, recorder='scores')))))
