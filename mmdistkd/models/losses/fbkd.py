"""FBKD, "Improve Object Detection with Feature-based Knowledge Distillation: Towards Accurate and Efficient
Detectors" (Zhang and Ma, ICLR 2021, https://openreview.net/forum?id=uKhGRvM8QNH).

The loss takes the tuples that ``FBKDStudentConnector`` and ``FBKDTeacherConnector`` make of one feature level
(MMRazor's layout)::

    student: (spatial_mask, channel_mask, channel_pool_adapt, spatial_pool_adapt, relation_adapt, feat_adapt)
    teacher: (spatial_mask, channel_mask, spatial_pool, relation, feat)
"""
import torch

from mmdistkd.registry import MODELS

from .base import DistillLoss

STUDENT_LAYOUT = ('spatial_mask', 'channel_mask', 'channel_pool_adapt', 'spatial_pool_adapt', 'relation_adapt',
                  'feat_adapt')
TEACHER_LAYOUT = ('spatial_mask', 'channel_mask', 'spatial_pool', 'relation', 'feat')


def unpack(side, value, layout):
    """``value`` as a dict by ``layout``'s names; an error naming the layout when it is not such a tuple."""
    if not isinstance(value, (list, tuple)) or len(value) != len(layout):
        got = f'{type(value).__name__} of {len(value)}' if isinstance(value, (list, tuple)) else type(value).__name__
        raise ValueError(f'FBKDLoss takes the {side} connector\'s tuple ({", ".join(layout)}), got a {got}: map '
                         f'{"s_input" if side == "student" else "t_input"} through an FBKD{side.title()}Connector')
    return dict(zip(layout, value))


def check_pair(name_S, tensor_S, name_T, tensor_T):
    if tensor_S.shape != tensor_T.shape:
        raise ValueError(f'FBKDLoss: student {name_S} of shape {tuple(tensor_S.shape)} and teacher {name_T} of '
                         f'shape {tuple(tensor_T.shape)} differ; both connectors need the same in_channels and '
                         'the features the same size')


@MODELS.register_module()
class FBKDLoss(DistillLoss):
    """``loss_weight * (mask_l2_weight * feat + channel_weight * channel + spatial_weight * spatial
    + nonloacl_weight * nonlocal)`` on one level, with (``||.||`` the L2 norm over the whole batch)

    - ``feat = ||(T - adapt(S)) * sqrt(M)||``, ``M = (M_s^S + M_s^T) / 2`` the mean of the two spatial attention
      masks (detached, as a weight); the channel masks are unused, as in the authors' code;
    - ``channel = ||mean_HW(T) - channel_pool_adapt(S)||``;
    - ``spatial = ||spatial_pool(T) - spatial_pool_adapt(S)||``;
    - ``nonlocal = ||relation(T) - relation_adapt(S)||``.

    MMRazor's ``FBKDLoss`` (same arguments, including the spelling ``nonloacl_weight``, same maths; the
    defaults are the authors', whose released code, ArchipLab-LinfengZhang/Object-Detection-Knowledge-
    Distillation-ICLR2021, MMRazor follows, e.g. in taking the norms unsquared). The teacher tuple is not
    detached: its relation comes from the teacher connector's non-local block, which this loss trains, as in
    MMRazor.

    Config (in a distiller's ``distill_losses``, with ``s_input`` / ``t_input`` mapped through
    ``FBKDStudentConnector`` / ``FBKDTeacherConnector``)::

        loss_s0=dict(type='FBKDLoss')
    """

    def __init__(self, mask_l2_weight=7e-5, channel_weight=4e-3, spatial_weight=4e-3, nonloacl_weight=7e-5,
                 loss_weight=1.0):
        super().__init__()
        self.mask_l2_weight = mask_l2_weight
        self.channel_weight = channel_weight
        self.spatial_weight = spatial_weight
        self.nonloacl_weight = nonloacl_weight
        self.loss_weight = loss_weight

    def forward(self, s_input, t_input):
        student, teacher = unpack('student', s_input, STUDENT_LAYOUT), unpack('teacher', t_input, TEACHER_LAYOUT)
        feat_T = teacher['feat']
        check_pair('feat_adapt', student['feat_adapt'], 'feat', feat_T)
        check_pair('spatial_mask', student['spatial_mask'], 'spatial_mask', teacher['spatial_mask'])
        check_pair('spatial_pool_adapt', student['spatial_pool_adapt'], 'spatial_pool', teacher['spatial_pool'])
        check_pair('relation_adapt', student['relation_adapt'], 'relation', teacher['relation'])
        channel_pool_T = feat_T.mean(dim=(2, 3))
        check_pair('channel_pool_adapt', student['channel_pool_adapt'], 'feat averaged over H, W', channel_pool_T)

        # vector_norm rather than sqrt(sum(...)): its gradient is 0, not NaN, where student and teacher agree.
        spatial_mask = ((student['spatial_mask'] + teacher['spatial_mask']) / 2).detach()
        feat = torch.linalg.vector_norm((feat_T - student['feat_adapt']) * spatial_mask.sqrt())
        channel = torch.linalg.vector_norm(channel_pool_T - student['channel_pool_adapt'])
        spatial = torch.linalg.vector_norm(teacher['spatial_pool'] - student['spatial_pool_adapt'])
        nonlocal_ = torch.linalg.vector_norm(teacher['relation'] - student['relation_adapt'])
        return self.loss_weight * (self.mask_l2_weight * feat + self.channel_weight * channel +
                                   self.spatial_weight * spatial + self.nonloacl_weight * nonlocal_)
