# Tolerant teacher on Cityscapes: mmseg's mask2former_swin-b-in22k-384x384-pre_8xb2-90k_cityscapes-512x1024.py
# (83.52 mIoU published, strict) with the query-class cross-entropy of its head (loss_cls) wrapped in
# mmdistkd.TolerantLoss. The head is mmdet's: it calls loss_cls as a detection head calls its classification
# loss, on (queries, 19 + 1) scores with "no object" (label 19) as background, so TolerantLoss serves it as
# 'det' (its task, read from the mmdet base loss): TSD over the 19 class probabilities of the queries matched
# to a ground-truth class only, in every decoder layer, as the cross-entropy is. The mask and dice losses are
# unchanged. No tolerant Mask2Former is published: this teacher is ours. Trains with mmseg's own tools/train.py
# too.
_base_ = ['mmseg::mask2former/mask2former_swin-b-in22k-384x384-pre_8xb2-90k_cityscapes-512x1024.py']
custom_imports = dict(imports=['mmdistkd'], allow_failed_imports=False)

num_classes = 19
# mmdet's Mask2Former head reads class_weight (and use_sigmoid) from its loss_cls config dict itself, so the
# wrapper dict repeats the base loss's; "no object" weighs 0.1 as upstream.
class_weight = [1.0] * num_classes + [0.1]
# eta and k: TolerantLoss's defaults (docs/tolerant.md); the TSD term takes its base loss's weight (2.0).
model = dict(
    decode_head=dict(loss_cls=dict(
        _delete_=True,
        type='mmdistkd.TolerantLoss',
        use_sigmoid=False,
        class_weight=class_weight,
        base_loss=dict(type='mmdet.CrossEntropyLoss', use_sigmoid=False, loss_weight=2.0, reduction='mean',
                       class_weight=class_weight))))
