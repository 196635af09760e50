"""How the teacher runs in a training step: only the forward the distillation losses need.

Each strategy is a small object named in configs by ``teacher_forward``:

- ``'tensor'``: ``teacher(inputs, data_samples, mode='tensor')`` (classifiers, one-stage detectors).
- ``'extract_feat'``: only ``teacher.extract_feat(inputs)`` (backbone and neck), for losses on features
  (MMRazor's ``FpnTeacherDistill``).
- ``'seg_decode_aux'``: mmseg segmentors: backbone/neck, then the decode head **and** every auxiliary head
  (mmseg's ``mode='tensor'`` runs only the decode head). A head whose forward takes the batch's data samples
  (mmseg's ``Mask2FormerHead``) gets them; heads are called as modules, so recorders on a whole head see it.
- ``'roi_on_student_rois'``: two-stage detectors: the teacher's RoI head scores the RoIs the student
  sampled in this step, so both predict classes for the same boxes (the student runs first). A cascade teacher
  scores them with one stage, 0 unless the config says ``dict(type='roi_on_student_rois', stage=s)``.

A config gives a strategy by name, or as a dict of its name (``type``) and options. A strategy says whether it
needs the student's forward first (``runs_after_student``) and keeps what it takes from the student in
``student_output`` until its own forward consumes it. Strategies live in ``mmdistkd.registry.TEACHER_FORWARDS``;
a new one is a ``TeacherForward`` subclass registered there with ``@TEACHER_FORWARDS.register_module(name=...)``.
"""
import abc
import inspect

import torch

from mmdistkd.registry import TEACHER_FORWARDS


class TeacherForward(abc.ABC):
    """The teacher's share of a training step. ``runs_after_student``: it uses what the student's forward
    computed, so the step runs the student first; ``student_output``: that, kept from the student's forward
    of the current step and cleared by the teacher's (None for strategies that run before the student)."""

    runs_after_student = False

    def __init__(self):
        self.student_output = None

    def prepare(self, student, teacher):
        """Checks the models and hooks into the student, for strategies that use what its forward computed.
        Others need nothing."""

    @abc.abstractmethod
    def __call__(self, teacher, inputs, data_samples):
        """Runs ``teacher`` on its (already transformed) ``inputs``; the teacher's recorders see this."""


@TEACHER_FORWARDS.register_module(name='tensor')
class TensorForward(TeacherForward):

    def __call__(self, teacher, inputs, data_samples):
        teacher(inputs, data_samples, mode='tensor')


@TEACHER_FORWARDS.register_module(name='extract_feat')
class ExtractFeatForward(TeacherForward):

    def prepare(self, student, teacher):
        if not callable(getattr(teacher, 'extract_feat', None)):
            raise ValueError(f"teacher_forward='extract_feat' needs a teacher with extract_feat (mmdet, mmseg and "
                             f'mmpretrain models have it), but the teacher is a {type(teacher).__name__}; choose '
                             'another teacher_forward')

    def __call__(self, teacher, inputs, data_samples):
        teacher.extract_feat(inputs)


@TEACHER_FORWARDS.register_module(name='seg_decode_aux')
class SegDecodeAuxForward(TeacherForward):

    def __call__(self, teacher, inputs, data_samples):
        features = teacher.extract_feat(inputs)
        auxiliary = getattr(teacher, 'auxiliary_head', None)
        heads = auxiliary if isinstance(auxiliary, torch.nn.ModuleList) else [auxiliary] if auxiliary else []
        for head in [teacher.decode_head, *heads]:
            if 'batch_data_samples' in inspect.signature(head.forward).parameters:
                head(features, data_samples)
            else:
                head(features)


@TEACHER_FORWARDS.register_module(name='roi_on_student_rois')
class RoIOnStudentRoIsForward(TeacherForward):
    """``stage``: the stage of a cascade teacher (mmdet's ``CascadeRoIHead``) whose box head scores the RoIs
    (the DIST authors used stage 0); only that stage runs. A single-stage RoI head has only stage 0.
    ``student_output``: the RoIs the student's RoI extractor last received; for a cascade student, its stage-0
    extractor's (the RoIs its first sampler drew, which its stage-0 head scores)."""

    runs_after_student = True

    def __init__(self, stage=0):
        super().__init__()
        if isinstance(stage, bool) or not isinstance(stage, int) or stage < 0:
            raise ValueError(f"teacher_forward=dict(type='roi_on_student_rois', stage={stage!r}): give the "
                             "stage of the teacher's cascade as an int from 0")
        self.stage = stage

    def prepare(self, student, teacher):
        student_head, teacher_head = roi_head_of(student, 'student'), roi_head_of(teacher, 'teacher')
        num_stages = teacher_head.num_stages if is_cascade(teacher_head) else 1
        if self.stage >= num_stages:
            stages = 'only stage 0' if num_stages == 1 else f'stages 0 to {num_stages - 1} (num_stages={num_stages})'
            raise ValueError(f"teacher_forward=dict(type='roi_on_student_rois', stage={self.stage}): the teacher's "
                             f'{type(teacher_head).__name__} has {stages}; choose one of them')
        extractor = student_head.bbox_roi_extractor
        if is_cascade(student_head):
            extractor = extractor[0]  # one extractor per stage
        extractor.register_forward_pre_hook(self.keep_student_rois)

    def keep_student_rois(self, module, inputs):
        self.student_output = inputs[1]

    def __call__(self, teacher, inputs, data_samples):
        # Taken before the forward, so a failed step leaves no RoIs behind for the next one.
        rois, self.student_output = self.student_output, None
        if rois is None:
            raise RuntimeError("teacher_forward='roi_on_student_rois' found no student RoIs: the student's "
                               'roi_head.bbox_roi_extractor did not run in this step')
        features = teacher.extract_feat(inputs)
        if is_cascade(teacher.roi_head):
            teacher.roi_head._bbox_forward(self.stage, features, rois)
        else:
            teacher.roi_head._bbox_forward(features, rois)


def roi_head_of(detector, role):
    """The RoI head of the ``role`` ('student' or 'teacher') detector, which the RoI strategy needs."""
    roi_head = getattr(detector, 'roi_head', None)
    if not hasattr(roi_head, 'bbox_roi_extractor'):
        raise ValueError(f"teacher_forward='roi_on_student_rois' needs two-stage detectors, but the {role} "
                         f'({type(detector).__name__}) has no roi_head.bbox_roi_extractor; choose another '
                         'teacher_forward for other models')
    return roi_head


def is_cascade(roi_head):
    """Whether ``roi_head`` is mmdet's ``CascadeRoIHead`` (one box head per stage)."""
    # Imported here: mmdet.models imports every mmdet model, which classification and segmentation runs do not need.
    from mmdet.models.roi_heads import CascadeRoIHead
    return isinstance(roi_head, CascadeRoIHead)


def build_teacher_forward(spec):
    """The strategy a config gives as ``teacher_forward``: its name in ``TEACHER_FORWARDS``, or a dict of its name
    (``type``) and its options (e.g. ``dict(type='roi_on_student_rois', stage=0)``)."""
    options = dict(spec) if isinstance(spec, dict) else dict(type=spec)
    name = options.pop('type', None)
    strategies = TEACHER_FORWARDS.module_dict
    if not isinstance(name, str) or name not in strategies:
        raise ValueError(f'teacher_forward={spec!r}; choose one of {sorted(strategies)}')
    strategy = strategies[name]
    accepted = set(inspect.signature(strategy).parameters)
    unknown = set(options) - accepted
    if unknown:
        raise ValueError(f'teacher_forward={spec!r}: {name!r} has no option(s) {sorted(unknown)}; '
                         f'its options: {sorted(accepted) or "none"}')
    return strategy(**options)
