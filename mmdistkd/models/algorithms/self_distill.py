"""SelfDistill (MMRazor's name): distillation without a separate teacher, as in "Be Your Own Teacher: Improve the
Performance of Convolutional Neural Networks via Self Distillation" (Zhang et al., arXiv 1905.08094).

The distiller's teacher recorders hook the student itself (e.g. its deepest features and logits, the labels its
loss receives), and one forward of the student fills both sets of recorders; a ``BYOTDistiller`` detaches what
the teacher side records. The model is the student plus the distiller's modules (e.g. the shallow classifiers of
its connectors): its checkpoints, ``tools/extract_student.py`` and ``StudentExportHook`` work as for
``SingleTeacherDistill``.
"""
from mmengine.model import BaseModel

from mmdistkd.registry import MODELS, build_in_mmdistkd_scope
from mmdistkd.utils.student import accept_plain_student_checkpoint

from .builders import build_student
from .single_teacher_distill import weighted_student_losses


@MODELS.register_module()
class SelfDistill(BaseModel):
    """The student's training step with its own recorded outputs as the teacher's.

    Args:
        architecture (dict | BaseModel): the student, as in ``SingleTeacherDistill`` (``cfg_path``, overrides,
            ``pretrained``).
        distiller (dict): the distiller (e.g. ``BYOTDistiller``); its teacher recorders name modules of the
            student.
        student_trainable (bool): False freezes the student (only the distiller's modules train).
        calculate_student_loss (bool): add the student's own task losses (``student.<name>``).
        data_preprocessor (dict | nn.Module, optional): as in ``SingleTeacherDistill`` (``build_student``).
    """

    def __init__(self, architecture, distiller, student_trainable=True, calculate_student_loss=True,
                 data_preprocessor=None, init_cfg=None):
        student, _ = build_student(architecture, data_preprocessor)
        super().__init__(data_preprocessor=student.data_preprocessor, init_cfg=init_cfg)
        self.architecture = student
        if not student_trainable:
            student.requires_grad_(False)
        self.calculate_student_loss = calculate_student_loss
        self.distiller = build_in_mmdistkd_scope(distiller)
        self.distiller.prepare(student, student)  # the student is its own teacher
        self._register_load_state_dict_pre_hook(accept_plain_student_checkpoint)

    @property
    def student(self):
        return self.architecture

    def forward(self, inputs, data_samples=None, mode='tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        return self.student(inputs, data_samples, mode=mode)

    def loss(self, inputs, data_samples):
        # One forward records both sides.
        with self.distiller.student_recorders, self.distiller.teacher_recorders:
            student_losses = self.student(inputs, data_samples, mode='loss')
        losses = weighted_student_losses(student_losses, 1.0) if self.calculate_student_loss else {}
        losses.update(self.distiller.compute_distill_losses(data_samples))
        return losses
