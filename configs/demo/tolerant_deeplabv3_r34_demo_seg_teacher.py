# Tolerant teacher (generation 0 of distillation in generations) for the demo segmentation data: the plain
# demo teacher with the cross-entropy of both heads wrapped in mmdistkd.TolerantLoss (TSD per valid pixel).
# Nothing else is added, so it trains with mmseg's own tools/train.py as well as with ours.
_base_ = ['./deeplabv3_r34_demo_seg_teacher.py', '../_base_/recipes/tolerant_losses.py']

model = dict(
    decode_head=dict(loss_decode=dict(_base_.tolerant_seg_cross_entropy_args, _delete_=True,
                                      type='mmdistkd.TolerantLoss')),
    auxiliary_head=dict(loss_decode=dict(
        _delete_=True, type='mmdistkd.TolerantLoss',
        base_loss=dict(_base_.tolerant_seg_cross_entropy_args.base_loss, loss_weight=0.4))))
