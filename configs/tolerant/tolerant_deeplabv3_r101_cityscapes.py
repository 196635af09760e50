# Tolerant teacher on Cityscapes: mmseg's deeplabv3_r101-d8_4xb2-80k_cityscapes-512x1024.py with the
# cross-entropy of the decode head and of the auxiliary head (weight 0.4) wrapped in mmdistkd.TolerantLoss
# (TSD per pixel over pixels with a valid label; docs/tolerant.md). Trains with mmseg's own
# tools/train.py too.
_base_ = ['mmseg::deeplabv3/deeplabv3_r101-d8_4xb2-80k_cityscapes-512x1024.py', '../_base_/recipes/tolerant_losses.py']

model = dict(
    decode_head=dict(loss_decode=dict(_base_.tolerant_seg_cross_entropy_args, _delete_=True,
                                      type='mmdistkd.TolerantLoss')),
    auxiliary_head=dict(loss_decode=dict(
        _delete_=True, type='mmdistkd.TolerantLoss',
        base_loss=dict(_base_.tolerant_seg_cross_entropy_args.base_loss, loss_weight=0.4))))
