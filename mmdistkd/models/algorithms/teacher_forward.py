"""How the teacher runs in a training step: only the forward the distillation losses need.

- ``'tensor'``: ``teacher(inputs, data_samples, mode='tensor')`` (classifiers, one-stage detectors).
- ``'seg_decode_aux'``: mmseg segmentors: backbone/neck, then the decode head **and** every auxiliary head
  (mmseg's ``mode='tensor'`` runs only the decode head).
- ``'roi_on_student_rois'``: two-stage detectors: the teacher's RoI head scores the RoIs the student
  sampled in this step, so both predict classes for the same boxes (the student runs first).
"""
import torch


def forward_tensor(teacher, inputs, data_samples, student_rois):
    teacher(inputs, data_samples, mode='tensor')


def forward_seg_decode_aux(teacher, inputs, data_samples, student_rois):
    features = teacher.extract_feat(inputs)
    teacher.decode_head.forward(features)
    auxiliary = getattr(teacher, 'auxiliary_head', None)
    for head in (auxiliary if isinstance(auxiliary, torch.nn.ModuleList) else [auxiliary] if auxiliary else []):
        head.forward(features)


def forward_roi_on_student_rois(teacher, inputs, data_samples, student_rois):
    if student_rois is None:
        raise RuntimeError("teacher_forward='roi_on_student_rois' found no student RoIs: the student's "
                           'roi_head.bbox_roi_extractor did not run in this step')
    teacher.roi_head._bbox_forward(teacher.extract_feat(inputs), student_rois)


TEACHER_FORWARDS = {
    'tensor': forward_tensor,
    'seg_decode_aux': forward_seg_decode_aux,
    'roi_on_student_rois': forward_roi_on_student_rois,
}
