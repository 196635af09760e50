# Tolerant teacher (generation 0 of distillation in generations) for the demo segmentation data: the plain
# demo teacher with the cross-entropy of both heads wrapped in mmdistkd.TolerantLoss (TSD per valid pixel).
# Nothing else is added, so it trains with mmseg's own tools/train.py as well as with ours.
_base_ = ['./deeplabv3_r34_demo_seg_teacher.py']
custom_imports = dict(imports=['mmdistkd'], allow_failed_imports=False)

# eta and k: TolerantLoss's defaults (docs/tolerant.md); the TSD term takes its base loss's weight.
model = dict(
    decode_head=dict(loss_decode=dict(
        _delete_=True,
        type='mmdistkd.TolerantLoss',
        base_loss=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0))),
    auxiliary_head=dict(loss_decode=dict(
        _delete_=True,
        type='mmdistkd.TolerantLoss',
        base_loss=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.4))))
