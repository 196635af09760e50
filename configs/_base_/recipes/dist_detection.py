# DIST (Huang et al., NeurIPS 2022) on a detector's class scores, weight 1, tau 1.
# Dense heads: the classification conv
# (one shared by the FPN levels, or one per level) recorded on every call, i.e. every level (record_idx='all'),
# sigmoid (untuned beyond the paper's RetinaNet). A config names its head's conv, e.g.
#   distiller=dict(_base_.dist_sigmoid_anchor_distiller,
#                  student_recorders=dict(cls=dict(type='ModuleOutputs', source='bbox_head.atss_cls')),
#                  teacher_recorders=dict(cls=dict(type='ModuleOutputs', source='bbox_head.atss_cls')))
# (A name with two leading underscores stays out of the resolved config.)
__cls_score_mappings = dict(loss_dist=dict(
    logits_S=dict(from_student=True, recorder='cls', record_idx='all'),
    logits_T=dict(from_student=False, recorder='cls', record_idx='all')))
# One anchor (or point) per location: each location's 80 scores are a sample.
dist_sigmoid_anchor_distiller = dict(
    type='ConfigurableDistiller',
    distill_losses=dict(loss_dist=dict(type='DISTLoss', mode='sigmoid_anchor', num_classes=80, tau=1.0,
                                       loss_weight=1.0)),
    loss_forward_mappings=__cls_score_mappings)
# The authors' variant for several anchors per location: the whole anchors x classes vector is the "class" axis.
dist_sigmoid_flat_distiller = dict(
    type='ConfigurableDistiller',
    distill_losses=dict(loss_dist=dict(type='DISTLoss', mode='sigmoid_flat', tau=1.0, loss_weight=1.0)),
    loss_forward_mappings=__cls_score_mappings)
# Two-stage detectors: softmax over the 80 classes + background on the RoI head's class logits. With the model's
# teacher_forward='roi_on_student_rois' the teacher's RoI head scores the RoIs the student sampled in the same
# step, so both predict for the same boxes.
__roi_cls_logits = dict(cls=dict(type='ModuleOutputs', source='roi_head.bbox_head.fc_cls'))
dist_roi_head_distiller = dict(
    type='ConfigurableDistiller',
    student_recorders=__roi_cls_logits,
    teacher_recorders=__roi_cls_logits,
    distill_losses=dict(loss_dist=dict(type='DISTLoss', tau=1.0, loss_weight=1.0)),
    loss_forward_mappings=dict(loss_dist=dict(
        logits_S=dict(from_student=True, recorder='cls'),
        logits_T=dict(from_student=False, recorder='cls'))))
