# Tolerant teacher on COCO: mmdet's fcos_r101-caffe_fpn_gn-head-1x_coco.py (FCOS R101-caffe-FPN with GN head, 1x;
# model zoo: 39.1 box AP as a strict teacher) with its focal loss wrapped in mmdistkd.TolerantLoss (TSD over the
# sigmoid class scores of positive points only, normalised like the focal loss; docs/tolerant.md). Trains with
# mmdet's own tools/train.py too.
_base_ = ['mmdet::fcos/fcos_r101-caffe_fpn_gn-head-1x_coco.py', '../_base_/recipes/tolerant_losses.py']

model = dict(bbox_head=dict(loss_cls=dict(_base_.tolerant_focal_loss_args, _delete_=True,
                                          type='mmdistkd.TolerantLoss')))
