"""The image generators of data-free distillation (MMRazor's ``DAFLGenerator`` and ``ZSKTGenerator``): a latent
code ``(N, latent_dim)`` in, a batch of 3-channel ``img_size x img_size`` images out, in the space of the student's
preprocessed inputs (each generator ends with a batch normalisation)."""
import torch
from mmengine.model import BaseModule
from torch import nn


class BaseGenerator(BaseModule):
    """A generator of ``img_size x img_size`` images from ``latent_dim``-dimensional codes, built from
    ``hidden_channels`` wide layers; ``forward(data=None, batch_size=1)`` takes codes, or draws ``batch_size``
    of them."""

    def __init__(self, img_size, latent_dim, hidden_channels, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.img_size = img_size
        self.latent_dim = latent_dim
        self.hidden_channels = hidden_channels

    def initial_size(self, scale_factor):
        """The side of the first feature map, which two upsamplings by ``scale_factor`` take to ``img_size``."""
        if self.img_size % scale_factor**2:
            raise ValueError(f'{type(self).__name__}: img_size={self.img_size} is not a multiple of '
                             f'scale_factor**2={scale_factor**2} (the images are upsampled twice by scale_factor); '
                             'choose an img_size that is')
        return self.img_size // scale_factor**2

    def process_latent(self, latent_data=None, batch_size=1):
        """The latent codes ``(N, latent_dim)`` on the generator's device and in its dtype: ``latent_data``, or
        ``batch_size`` codes drawn from a standard normal with torch's global (CPU) random state, so a seeded
        run draws the same codes on any device."""
        if latent_data is None:
            if batch_size < 1:
                raise ValueError(f'{type(self).__name__}: batch_size={batch_size}; give a positive batch_size '
                                 'or the latent codes')
            latent_data = torch.randn(batch_size, self.latent_dim)
        elif latent_data.dim() != 2 or latent_data.shape[1] != self.latent_dim:
            raise ValueError(f'{type(self).__name__}: latent codes of shape {tuple(latent_data.shape)}; give '
                             f'(N, latent_dim) = (N, {self.latent_dim})')
        weight = next(self.parameters())
        return latent_data.to(device=weight.device, dtype=weight.dtype)

    def forward(self, data=None, batch_size=1):
        raise NotImplementedError


def conv_bn_leaky_relu(in_channels, out_channels, bn_eps=1e-5, leaky_slope=0.2):
    """A 3x3 convolution keeping the size, batch normalisation (torch's default ``eps`` unless given) and leaky
    ReLU: the body of both generators."""
    return [nn.Conv2d(in_channels, out_channels, 3, stride=1, padding=1),
            nn.BatchNorm2d(out_channels, eps=bn_eps),
            nn.LeakyReLU(leaky_slope, inplace=True)]
