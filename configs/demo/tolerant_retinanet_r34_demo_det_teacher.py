# Tolerant teacher (generation 0 of distillation in generations) for the demo detection data: the plain
# demo teacher with its focal loss wrapped in mmdistkd.TolerantLoss (TSD on positive anchors only). Nothing
# else is added, so it trains with mmdet's own tools/train.py as well as with ours.
_base_ = ['./retinanet_r34_demo_det_teacher.py', '../_base_/recipes/tolerant_losses.py']

model = dict(bbox_head=dict(loss_cls=dict(_base_.tolerant_focal_loss_args, _delete_=True,
                                          type='mmdistkd.TolerantLoss')))
