# Tolerant teacher (generation 0 of distillation in generations) for the demo classification data: the plain
# demo teacher with its cross-entropy wrapped in mmdistkd.TolerantLoss. Nothing else is added, so it trains
# with mmpretrain's own tools/train.py as well as with ours.
_base_ = ['./resnet34_demo_cls_teacher.py']
custom_imports = dict(imports=['mmdistkd'], allow_failed_imports=False)

model = dict(head=dict(loss=dict(
    _delete_=True,
    type='mmdistkd.TolerantLoss',  # eta and k: TolerantLoss's defaults (docs/tolerant.md)
    base_loss=dict(type='CrossEntropyLoss', loss_weight=1.0))))
