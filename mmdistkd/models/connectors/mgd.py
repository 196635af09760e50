"""The student generator of "Masked Generative Distillation" (Yang et al., ECCV 2022, arXiv 2205.01529): the
student feature, aligned to the teacher's channels, is randomly masked and a small conv block regenerates the
teacher feature from it (``MGDLoss`` compares the two)."""
import torch
from torch import nn

from mmdistkd.registry import MODELS

from .base import BaseConnector


@MODELS.register_module()
class MGDConnector(BaseConnector):
    """``generation(align(S) * M)``: ``align`` a 1x1 conv to ``teacher_channels`` (none when the channels agree),
    ``M`` a random 0/1 mask that zeroes each position (or, with ``mask_on_channel``, each channel) of each image
    with probability ``lambda_mgd``, ``generation`` conv3x3 - ReLU - conv3x3.

    The mask is redrawn at every call, in training and evaluation alike, as in MMRazor; it is drawn on the
    feature's device from the global generator (MMRazor draws it on the CPU and copies it over).

    Config (MMRazor's MGD student connector)::

        s_fpn0_connector=dict(type='MGDConnector', student_channels=256, teacher_channels=256, lambda_mgd=0.65)
    """

    def __init__(self, student_channels, teacher_channels, lambda_mgd=0.65, mask_on_channel=False, init_cfg=None):
        super().__init__(init_cfg)
        self.student_channels = student_channels
        self.lambda_mgd = lambda_mgd
        self.mask_on_channel = mask_on_channel
        self.align = (nn.Conv2d(student_channels, teacher_channels, kernel_size=1)
                      if student_channels != teacher_channels else None)
        self.generation = nn.Sequential(
            nn.Conv2d(teacher_channels, teacher_channels, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(teacher_channels, teacher_channels, kernel_size=3, padding=1))

    def forward(self, feature):
        self.check_channels(feature, self.student_channels, 'student_channels')
        if self.align is not None:
            feature = self.align(feature)
        n, c, h, w = feature.shape
        mask_shape = (n, c, 1, 1) if self.mask_on_channel else (n, 1, h, w)
        # MMRazor's rule (masked where a uniform draw exceeds 1 - lambda), so a seeded draw masks the same cells.
        keep = torch.rand(mask_shape, device=feature.device) <= 1 - self.lambda_mgd
        return self.generation(feature * keep)
