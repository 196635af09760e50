# Tolerant teacher on Cityscapes: mmseg's segformer_mit-b5_8xb1-160k_cityscapes-1024x1024.py (82.25 mIoU
# published, strict) with the cross-entropy of its decode head wrapped in mmdistkd.TolerantLoss (TSD per pixel
# over pixels with a valid label; docs/tolerant.md). SegFormer has no auxiliary head. No tolerant SegFormer
# is published: this teacher is ours. Trains with mmseg's own tools/train.py too.
_base_ = ['mmseg::segformer/segformer_mit-b5_8xb1-160k_cityscapes-1024x1024.py', '../_base_/recipes/tolerant_losses.py']

model = dict(decode_head=dict(loss_decode=dict(_base_.tolerant_seg_cross_entropy_args, _delete_=True,
                                               type='mmdistkd.TolerantLoss')))
