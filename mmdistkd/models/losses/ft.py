"""Factor transfer, "Paraphrasing Complex Network: Network Compression via Factor Transfer" (Kim et al.,
NeurIPS 2018, arXiv 1802.04977).

A paraphraser (an autoencoder trained first to reconstruct the teacher's feature) gives the teacher's "factor",
its encoding; a translator on the student is trained, with the student, to produce the same factor. The two
phases are MMRazor's factor-transfer configs: ``..._pretrain`` trains the Paraphraser with ``L2Loss`` (see
``feature_distance.L2Loss``), ``..._train`` the student and its Translator with ``FTLoss``.
"""
import torch.nn.functional as F

from mmdistkd.registry import MODELS

from .base import DistillLoss, check_same_shape
from .feature_distance import unit_vectors


@MODELS.register_module()
class FTLoss(DistillLoss):
    """``loss_weight * mean|F_S / ||F_S||_2 - F_T / ||F_T||_2|`` with each ``(N, ...)`` factor flattened and
    normalised per sample: the paper's loss with ``p = 1``, averaged over elements as MMRazor's ``FTLoss`` (same
    arguments) and the authors' code do.

    Config (in a distiller's ``distill_losses``)::

        loss_s4=dict(type='FTLoss', loss_weight=1.0)
    """

    teacher_inputs = ('t_feature', )

    def __init__(self, loss_weight=1.0, teacher_detach=True):
        super().__init__(teacher_detach)
        self.loss_weight = loss_weight

    def forward(self, s_feature, t_feature):
        check_same_shape(s_feature, t_feature)
        factor_S, factor_T = (unit_vectors(f.reshape(f.shape[0], -1)) for f in (s_feature, t_feature))
        return self.loss_weight * F.l1_loss(factor_S, factor_T)
