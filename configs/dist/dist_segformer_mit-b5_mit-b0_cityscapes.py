# DIST on Cityscapes: SegFormer MiT-B5 teacher -> SegFormer MiT-B0, mmseg's models and the student's own recipe
# (segformer_mit-b0_8xb1-160k_cityscapes-1024x1024.py: crop 1024x1024, 8 GPUs x 1 image, AdamW lr 6e-5, 160k
# iterations). Published by mmseg (single-scale mIoU): teacher MiT-B5 82.25, student MiT-B0 alone 76.54.
# No DIST number is published for SegFormer: this pair is ours.
# DIST per pixel (softmax over the 19 classes, tau 1, weight 1), as the paper's Cityscapes recipe does on
# DeepLabV3, on the decode head's logits (decode_head.conv_seg, 1/4 of the input for both models, so no
# resizing); SegFormer has no auxiliary head. Pixels labelled 255 are left out (exclude_ignored=True; see
# dist_deeplabv3_r101_r18_cityscapes.py for the authors' choice).
_base_ = ['mmseg::segformer/segformer_mit-b0_8xb1-160k_cityscapes-1024x1024.py', '../_base_/distill_runtime.py']

teacher_ckpt = 'https://download.openmmlab.com/mmsegmentation/v0.5/segformer/segformer_mit-b5_8x1_1024x1024_160k_cityscapes/segformer_mit-b5_8x1_1024x1024_160k_cityscapes_20211206_072934-87a052ec.pth'  # noqa: E501
model = dict(
    _delete_=True,
    type='mmdistkd.SingleTeacherDistill',
    architecture=dict(cfg_path='mmseg::segformer/segformer_mit-b0_8xb1-160k_cityscapes-1024x1024.py'),
    teacher=dict(cfg_path='mmseg::segformer/segformer_mit-b5_8xb1-160k_cityscapes-1024x1024.py'),
    teacher_ckpt=teacher_ckpt,
    teacher_forward='seg_decode_aux',
    distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=dict(decode=dict(type='ModuleOutputs', source='decode_head.conv_seg')),
        teacher_recorders=dict(decode=dict(type='ModuleOutputs', source='decode_head.conv_seg')),
        distill_losses=dict(loss_dist_decode=dict(type='DISTLoss', tau=1.0, loss_weight=1.0, exclude_ignored=True)),
        loss_forward_mappings=dict(loss_dist_decode=dict(
            logits_S=dict(from_student=True, recorder='decode'),
            logits_T=dict(from_student=False, recorder='decode')))))
