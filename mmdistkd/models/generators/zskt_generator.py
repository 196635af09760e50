"""ZSKT's generator: "Zero-shot Knowledge Transfer via Adversarial Belief Matching" (Micaelli and Storkey,
NeurIPS 2019, arXiv 1905.09768), as the authors' code and MMRazor's ``ZSKTGenerator`` build it."""
from torch import nn

from mmdistkd.registry import MODELS

from .base_generator import BaseGenerator, conv_bn_leaky_relu


@MODELS.register_module()
class ZSKTGenerator(BaseGenerator):
    """Linear -> BN -> upsample -> conv-BN-LeakyReLU -> upsample -> conv-BN-LeakyReLU -> conv -> BN with affine
    parameters (no tanh: the images are normalised per channel, then scaled and shifted by learnt values).

    Args:
        img_size (int): side of the square images, a multiple of ``scale_factor**2``.
        latent_dim (int): dimension of the latent codes.
        hidden_channels (int): channels of the first feature map (halved before the last convolution).
        scale_factor (int): each of the two upsamplings (nearest neighbour).
        leaky_slope (float): negative slope of the leaky ReLUs.
        init_cfg (dict, optional): mmengine initialisation config.
    """

    def __init__(self, img_size, latent_dim, hidden_channels, scale_factor=2, leaky_slope=0.2, init_cfg=None):
        super().__init__(img_size, latent_dim, hidden_channels, init_cfg=init_cfg)
        self.scale_factor = scale_factor
        self.init_size = self.initial_size(scale_factor)
        # One sequence with MMRazor's layer indices, so that its generator checkpoints load.
        self.layers = nn.Sequential(
            nn.Linear(latent_dim, hidden_channels * self.init_size**2),
            nn.Unflatten(1, (hidden_channels, self.init_size, self.init_size)),
            nn.BatchNorm2d(hidden_channels),
            nn.Upsample(scale_factor=scale_factor),
            *conv_bn_leaky_relu(hidden_channels, hidden_channels, leaky_slope=leaky_slope),
            nn.Upsample(scale_factor=scale_factor),
            *conv_bn_leaky_relu(hidden_channels, hidden_channels // 2, leaky_slope=leaky_slope),
            nn.Conv2d(hidden_channels // 2, 3, 3, stride=1, padding=1),
            nn.BatchNorm2d(3, affine=True))

    def forward(self, data=None, batch_size=1):
        """Images ``(N, 3, img_size, img_size)`` from the latent codes ``data`` ``(N, latent_dim)``, or from
        ``batch_size`` codes drawn from the global random state when ``data`` is None."""
        return self.layers(self.process_latent(data, batch_size))
