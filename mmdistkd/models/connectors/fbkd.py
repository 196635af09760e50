"""The student and teacher connectors of "Improve Object Detection with Feature-based Knowledge Distillation:
Towards Accurate and Efficient Detectors" (Zhang and Ma, ICLR 2021, https://openreview.net/forum?id=uKhGRvM8QNH):
spatial and channel attention masks, pooled features and a non-local relation of one feature level, in the tuple
layouts ``FBKDLoss`` takes."""
from mmcv.cnn import NonLocal2d
from torch import nn

from mmdistkd.registry import MODELS

from .base import BaseConnector


class NonLocal2dMaxpoolNstride(NonLocal2d):
    """mmcv's ``NonLocal2d`` whose ``sub_sample`` pooling of ``g`` and ``phi`` is followed by a further
    ``MaxPool2d(maxpool_stride)``, so keys and values come from a grid ``2 * maxpool_stride`` times coarser, as
    in MMRazor (in ``gaussian`` mode, where MMRazor pools ``g`` and ``phi`` differently and fails, both are pooled
    alike here)."""

    def __init__(self, in_channels, reduction=2, conv_cfg=dict(type='Conv2d'), norm_cfg=dict(type='BN'),
                 mode='embedded_gaussian', sub_sample=False, maxpool_stride=2, zeros_init=True, **kwargs):
        super().__init__(in_channels, sub_sample=sub_sample, conv_cfg=conv_cfg, norm_cfg=norm_cfg,
                         reduction=reduction, mode=mode, zeros_init=zeros_init, **kwargs)
        if sub_sample:
            extra_pool = nn.MaxPool2d(maxpool_stride)
            self.g = nn.Sequential(self.g, extra_pool)
            self.phi = nn.Sequential(self.phi, extra_pool)


class FBKDConnector(BaseConnector):
    """The parts the two connectors share: arguments, the non-local block (named ``non_local_name``) and the
    attention masks and spatial pooling of a feature."""

    non_local_name = None

    def __init__(self, in_channels, reduction=2, conv_cfg=dict(type='Conv2d'), norm_cfg=dict(type='BN'),
                 mode='dot_product', sub_sample=False, maxpool_stride=2, zeros_init=True, spatial_T=0.5,
                 channel_T=0.5, init_cfg=None, **kwargs):
        super().__init__(init_cfg)
        self.in_channels = in_channels
        self.spatial_T = spatial_T
        self.channel_T = channel_T
        self.add_module(self.non_local_name, NonLocal2dMaxpoolNstride(
            in_channels, reduction=reduction, conv_cfg=conv_cfg, norm_cfg=norm_cfg, mode=mode,
            sub_sample=sub_sample, maxpool_stride=maxpool_stride, zeros_init=zeros_init, **kwargs))

    def relation(self, feature):
        return getattr(self, self.non_local_name)(feature)

    def masks_and_spatial_pool(self, feature):
        """``(spatial_mask (N, 1, H, W), channel_mask (N, C, 1, 1), spatial_pool (N, 1, H, W))``: the masks are
        ``H * W * softmax_HW(mean_C|x| / spatial_T)`` and ``C * softmax_C(mean_HW|x| / channel_T)`` (each
        averages 1), the pool ``mean_C(x)``."""
        self.check_channels(feature, self.in_channels, 'in_channels')
        n, c, h, w = feature.shape
        magnitude = feature.abs()
        spatial = magnitude.mean(1).flatten(1)
        spatial_mask = (spatial / self.spatial_T).softmax(1).view(n, 1, h, w) * (h * w)
        channel = magnitude.mean((2, 3))
        channel_mask = (channel / self.channel_T).softmax(1).view(n, c, 1, 1) * c
        return spatial_mask, channel_mask, feature.mean(1, keepdim=True)


@MODELS.register_module()
class FBKDStudentConnector(FBKDConnector):
    """``(spatial_mask, channel_mask, channel_pool_adapt, spatial_pool_adapt, relation_adapt, feat_adapt)`` of the
    student feature ``S`` (MMRazor's layout):

    - ``channel_pool_adapt = Linear(C, C)(mean_HW(S))``;
    - ``spatial_pool_adapt = Conv3x3(1, 1)(mean_C(S))``;
    - ``relation_adapt = Conv1x1(C, C)(non_local(S))``;
    - ``feat_adapt = Conv1x1(C, C)(S)``.

    The arguments are mmcv ``NonLocal2d``'s (``reduction``, ``conv_cfg``, ``norm_cfg`` for its output conv,
    ``mode``, ``sub_sample``, ``zeros_init``) plus ``maxpool_stride`` (see ``NonLocal2dMaxpoolNstride``) and the
    mask temperatures.

    Config (MMRazor's FBKD config, with the teacher connector of the same arguments)::

        loss_s0_sfeat=dict(type='FBKDStudentConnector', in_channels=256, reduction=4, mode='dot_product',
                           sub_sample=True, maxpool_stride=8)
    """

    non_local_name = 'student_non_local'

    def __init__(self, in_channels, *args, **kwargs):
        super().__init__(in_channels, *args, **kwargs)
        self.channel_wise_adaptation = nn.Linear(in_channels, in_channels)
        self.spatial_wise_adaptation = nn.Conv2d(1, 1, kernel_size=3, padding=1)
        self.adaptation_layers = nn.Conv2d(in_channels, in_channels, kernel_size=1)
        self.non_local_adaptation = nn.Conv2d(in_channels, in_channels, kernel_size=1)

    def forward(self, feature):
        spatial_mask, channel_mask, spatial_pool = self.masks_and_spatial_pool(feature)
        return (spatial_mask, channel_mask, self.channel_wise_adaptation(feature.mean((2, 3))),
                self.spatial_wise_adaptation(spatial_pool), self.non_local_adaptation(self.relation(feature)),
                self.adaptation_layers(feature))


@MODELS.register_module()
class FBKDTeacherConnector(FBKDConnector):
    """``(spatial_mask, channel_mask, spatial_pool, relation, feat)`` of the teacher feature ``T`` (MMRazor's
    layout): ``spatial_pool = mean_C(T)``, ``relation = non_local(T)`` (its non-local block trains through
    ``FBKDLoss``), ``feat = T``. Arguments as ``FBKDStudentConnector``'s."""

    non_local_name = 'teacher_non_local'

    def forward(self, feature):
        return (*self.masks_and_spatial_pool(feature), self.relation(feature), feature)
