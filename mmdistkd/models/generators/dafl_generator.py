"""DAFL's generator: "Data-Free Learning of Student Networks" (Chen et al., ICCV 2019, arXiv 1904.01186), as the
authors' code and MMRazor's ``DAFLGenerator`` build it (MMRazor's DFAD config uses it too, with ``bn_eps=1e-5``)."""
from torch import nn

from mmdistkd.registry import MODELS

from .base_generator import BaseGenerator, conv_bn_leaky_relu


@MODELS.register_module()
class DAFLGenerator(BaseGenerator):
    """Linear -> BN -> upsample -> conv-BN-LeakyReLU -> upsample -> conv-BN-LeakyReLU -> conv -> tanh -> BN
    without affine parameters: every batch of images comes out normalised per channel (zero mean, unit variance
    over the batch in training).

    Args:
        img_size (int): side of the square images, a multiple of ``scale_factor**2``.
        latent_dim (int): dimension of the latent codes.
        hidden_channels (int): channels of the first feature map (halved before the last convolution).
        scale_factor (int): each of the two upsamplings (nearest neighbour).
        bn_eps (float): ``eps`` of the two inner batch normalisations; 0.8 is the DAFL authors' value (their
            ``BatchNorm2d(128, 0.8)``, which sets ``eps``).
        leaky_slope (float): negative slope of the leaky ReLUs.
        init_cfg (dict, optional): mmengine initialisation config.
    """

    def __init__(self, img_size, latent_dim, hidden_channels, scale_factor=2, bn_eps=0.8, leaky_slope=0.2,
                 init_cfg=None):
        super().__init__(img_size, latent_dim, hidden_channels, init_cfg=init_cfg)
        self.scale_factor = scale_factor
        self.init_size = self.initial_size(scale_factor)
        # MMRazor's module names, so that its generator checkpoints load.
        self.linear = nn.Linear(latent_dim, hidden_channels * self.init_size**2)
        self.bn1 = nn.BatchNorm2d(hidden_channels)
        self.upsample = nn.Upsample(scale_factor=scale_factor)
        self.conv_blocks1 = nn.Sequential(*conv_bn_leaky_relu(hidden_channels, hidden_channels, bn_eps, leaky_slope))
        self.conv_blocks2 = nn.Sequential(
            *conv_bn_leaky_relu(hidden_channels, hidden_channels // 2, bn_eps, leaky_slope),
            nn.Conv2d(hidden_channels // 2, 3, 3, stride=1, padding=1), nn.Tanh(), nn.BatchNorm2d(3, affine=False))

    def forward(self, data=None, batch_size=1):
        """Images ``(N, 3, img_size, img_size)`` from the latent codes ``data`` ``(N, latent_dim)``, or from
        ``batch_size`` codes drawn from the global random state when ``data`` is None."""
        features = self.linear(self.process_latent(data, batch_size))
        features = self.bn1(features.view(-1, self.hidden_channels, self.init_size, self.init_size))
        features = self.conv_blocks1(self.upsample(features))
        return self.conv_blocks2(self.upsample(features))
