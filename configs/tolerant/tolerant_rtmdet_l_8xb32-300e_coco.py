# Tolerant teacher on COCO: mmdet's rtmdet_l_8xb32-300e_coco.py (RTMDet-L, 300 epochs; model zoo: 51.3 box AP as a
# strict teacher) with its quality focal loss wrapped in mmdistkd.TolerantLoss (TSD over the sigmoid class scores of
# positive points only (the labels of its (label, IoU score) target mark them), normalised like the quality focal
# loss; docs/tolerant.md). Trains with mmdet's own tools/train.py too.
_base_ = ['mmdet::rtmdet/rtmdet_l_8xb32-300e_coco.py', '../_base_/recipes/tolerant_losses.py']

model = dict(bbox_head=dict(loss_cls=dict(_base_.tolerant_quality_focal_loss_args, _delete_=True,
                                          type='mmdistkd.TolerantLoss')))
