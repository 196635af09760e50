"""WSLD, "Rethinking Soft Labels for Knowledge Distillation: A Bias-Variance Tradeoff Perspective"
(Zhou et al., ICLR 2021, arXiv 2102.00650).

Each sample's distillation term is weighted by how much worse the student fits its label than the teacher:
samples the teacher already explains better than the student get most of the weight.
"""
import torch

from mmdistkd.registry import MODELS

from .base import DistillLoss, check_same_shape
from .dkd import class_targets


@MODELS.register_module()
class WSLD(DistillLoss):
    """``loss_weight * tau^2 * mean_i(w_i * CE(softmax(teacher_i / tau), softmax(student_i / tau)))`` on
    ``(N, C)`` logits, with the sample weight ``w_i = 1 - exp(-max(CE_S,i / (CE_T,i + 1e-7), 0))`` from the
    cross entropies of the untempered student and teacher with the ground truth (no gradient through ``w``).

    ``gt_labels``: class indices, class scores (mixup / cutmix: the cross entropies ``CE_S``, ``CE_T`` are then
    taken with these soft targets) or a list of data samples, see ``dkd.class_targets``. ``num_classes`` must be
    the logits' number of classes (MMRazor one-hot encodes the labels with it).

    Config (MMRazor's ``wsld_logits_resnet34_resnet18_8xb32_in1k``)::

        loss_wsld=dict(type='WSLD', tau=2, loss_weight=2.5)
        # mapping: student / teacher <- head.fc outputs; gt_labels <- ModuleInputs of head.loss_module, data_idx=1
    """

    teacher_inputs = ('teacher',)
    compares_class_scores = True

    def __init__(self, tau=1.0, loss_weight=1.0, num_classes=1000, teacher_detach=True):
        super().__init__(teacher_detach)
        self.tau = tau
        self.loss_weight = loss_weight
        self.num_classes = num_classes

    def forward(self, student, teacher, gt_labels):
        check_same_shape(student, teacher)
        if student.dim() != 2:
            raise ValueError(f'WSLD takes (N, C) classification logits, got shape {tuple(student.shape)}')
        if student.shape[1] != self.num_classes:
            raise ValueError(f'WSLD(num_classes={self.num_classes}) got logits of {student.shape[1]} classes '
                             f'(shape {tuple(student.shape)}): set num_classes={student.shape[1]}')
        targets = class_targets(gt_labels, *student.shape)
        soft_ce = -(teacher.div(self.tau).softmax(1) * student.div(self.tau).log_softmax(1)).sum(1)
        with torch.no_grad():
            ce_S = -(targets * student.log_softmax(1)).sum(1)
            ce_T = -(targets * teacher.log_softmax(1)).sum(1)
            weight = 1 - torch.exp(-(ce_S / (ce_T + 1e-7)).clamp(min=0))
        return self.loss_weight * self.tau**2 * (weight * soft_ce).sum() / max(len(student), 1)
