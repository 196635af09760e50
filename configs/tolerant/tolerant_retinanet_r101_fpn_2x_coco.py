# Tolerant teacher on COCO: mmdet's retinanet_r101_fpn_2x_coco.py with its focal loss wrapped in
# mmdistkd.TolerantLoss (TSD over the sigmoid class scores of positive anchors only, normalised like the
# focal loss; docs/tolerant.md). Trains with mmdet's own tools/train.py too.
_base_ = ['mmdet::retinanet/retinanet_r101_fpn_2x_coco.py']
custom_imports = dict(imports=['mmdistkd'], allow_failed_imports=False)

model = dict(bbox_head=dict(loss_cls=dict(
    _delete_=True,
    type='mmdistkd.TolerantLoss',
    # Not the default 0.9: on sigmoid scores TSD raises the other classes' scores at every object, i.e. false
    # positives. On the demo detection data eta 0.9 cut the teacher's mAP from 0.201 to 0.073, eta 0.97 to
    # 0.169 (docs/tolerant.md). Sweep it on COCO.
    eta=0.97,
    # RetinaHead reads use_sigmoid from this dict to size its classifier: without it, it would silently
    # predict num_classes + 1 softmax outputs
    use_sigmoid=True,
    base_loss=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0))))
