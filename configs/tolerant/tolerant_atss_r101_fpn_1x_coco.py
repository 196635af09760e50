# Tolerant teacher on COCO: mmdet's atss_r101_fpn_1x_coco.py (ATSS R101-FPN, 1x; model zoo: 41.5 box AP as a strict
# teacher) with its focal loss wrapped in mmdistkd.TolerantLoss (TSD over the sigmoid class scores of positive
# anchors only, normalised like the focal loss; docs/tolerant.md). Trains with mmdet's own tools/train.py too.
_base_ = ['mmdet::atss/atss_r101_fpn_1x_coco.py', '../_base_/recipes/tolerant_losses.py']

model = dict(bbox_head=dict(loss_cls=dict(_base_.tolerant_focal_loss_args, _delete_=True,
                                          type='mmdistkd.TolerantLoss')))
