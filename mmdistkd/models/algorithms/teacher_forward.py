"""How the teacher runs in a training step: only the forward the distillation losses need.

Each strategy is a small object named in configs by ``teacher_forward``:

- ``'tensor'``: ``teacher(inputs, data_samples, mode='tensor')`` (classifiers, one-stage detectors).
- ``'seg_decode_aux'``: mmseg segmentors: backbone/neck, then the decode head **and** every auxiliary head
  (mmseg's ``mode='tensor'`` runs only the decode head).
- ``'roi_on_student_rois'``: two-stage detectors: the teacher's RoI head scores the RoIs the student
  sampled in this step, so both predict classes for the same boxes (the student runs first).

A strategy says whether it needs the student's forward first (``runs_after_student``) and keeps what it takes
from the student in ``student_output`` until its own forward consumes it.
"""
import abc

import torch


class TeacherForward(abc.ABC):
    """The teacher's share of a training step. ``runs_after_student``: it uses what the student's forward
    computed, so the step runs the student first; ``student_output``: that, kept from the student's forward
    of the current step and cleared by the teacher's (None for strategies that run before the student)."""

    runs_after_student = False

    def __init__(self):
        self.student_output = None

    def prepare(self, student):
        """Hooks into the student, for strategies that use what its forward computed. Others need nothing."""

    @abc.abstractmethod
    def __call__(self, teacher, inputs, data_samples):
        """Runs ``teacher`` on its (already transformed) ``inputs``; the teacher's recorders see this."""


class TensorForward(TeacherForward):

    def __call__(self, teacher, inputs, data_samples):
        teacher(inputs, data_samples, mode='tensor')


class SegDecodeAuxForward(TeacherForward):

    def __call__(self, teacher, inputs, data_samples):
        features = teacher.extract_feat(inputs)
        teacher.decode_head.forward(features)
        auxiliary = getattr(teacher, 'auxiliary_head', None)
        heads = auxiliary if isinstance(auxiliary, torch.nn.ModuleList) else [auxiliary] if auxiliary else []
        for head in heads:
            head.forward(features)


class RoIOnStudentRoIsForward(TeacherForward):
    """``student_output``: the RoIs the student's ``roi_head.bbox_roi_extractor`` last received."""

    runs_after_student = True

    def prepare(self, student):
        student.roi_head.bbox_roi_extractor.register_forward_pre_hook(self.keep_student_rois)

    def keep_student_rois(self, module, inputs):
        self.student_output = inputs[1]

    def __call__(self, teacher, inputs, data_samples):
        # Taken before the forward, so a failed step leaves no RoIs behind for the next one.
        rois, self.student_output = self.student_output, None
        if rois is None:
            raise RuntimeError("teacher_forward='roi_on_student_rois' found no student RoIs: the student's "
                               'roi_head.bbox_roi_extractor did not run in this step')
        teacher.roi_head._bbox_forward(teacher.extract_feat(inputs), rois)


TEACHER_FORWARDS = {
    'tensor': TensorForward,
    'seg_decode_aux': SegDecodeAuxForward,
    'roi_on_student_rois': RoIOnStudentRoIsForward,
}


def build_teacher_forward(name):
    """The strategy a config names by ``teacher_forward``."""
    if name not in TEACHER_FORWARDS:
        raise ValueError(f'teacher_forward={name!r}; choose one of {sorted(TEACHER_FORWARDS)}')
    return TEACHER_FORWARDS[name]()
