"""The paraphraser (teacher) and translator (student) of "Paraphrasing Complex Network: Network Compression via
Factor Transfer" (Kim, Park and Kwak, NeurIPS 2018, arXiv 1802.04977): conv encoders to a common "factor"
space; the paraphraser is first trained alone as an auto-encoder of the teacher feature."""
import torch
from torch import nn

from mmdistkd.registry import MODELS

from .base import BaseConnector

PHASES = ('pretrain', 'train')


def conv_stages(conv_type, channels, use_bn):
    """``conv3x3 - [BN] - LeakyReLU(0.1)`` between each pair of ``channels``; without BN an empty slot keeps the
    layer indices (and so the state-dict keys) of MMRazor's layout."""
    layers = []
    for in_channels, out_channels in zip(channels, channels[1:]):
        layers += [conv_type(in_channels, out_channels, 3, 1, 1),
                   nn.BatchNorm2d(out_channels) if use_bn else nn.Identity(),
                   nn.LeakyReLU(0.1, inplace=True)]
    return nn.Sequential(*layers)


@MODELS.register_module()
class Paraphraser(BaseConnector):
    """The teacher's paraphraser: ``encoder`` (``in_channel -> in_channel -> out_channel -> out_channel``) and,
    for pre-training, ``decoder`` (transposed convs back to ``in_channel``).

    - ``phase='pretrain'``: returns the reconstruction ``decoder(encoder(T))`` (compared with ``T``, e.g. by
      ``L2Loss``); every parameter trains.
    - ``phase='train'``: returns the teacher factor ``encoder(T)`` under ``no_grad``, the fixed target of
      ``FTLoss``. Its parameters are frozen (``requires_grad=False``) so that DDP does not wait for their
      gradients (MMRazor leaves them trainable, without gradients, and sets ``find_unused_parameters=True``).

    Config (MMRazor's FT configs; the train config loads the pre-trained paraphraser)::

        loss_s4_tfeat=dict(type='Paraphraser', phase='pretrain', in_channel=2048, out_channel=1024)
    """

    def __init__(self, in_channel, out_channel, phase='pretrain', use_bn=False, init_cfg=None):
        super().__init__(init_cfg)
        if phase not in PHASES:
            raise ValueError(f'Paraphraser: phase={phase!r}; use "pretrain" (train it as an auto-encoder of the '
                             'teacher feature) or "train" (its factor is the target of the student\'s translator)')
        self.in_channel = in_channel
        self.phase = phase
        self.encoder = conv_stages(nn.Conv2d, (in_channel, in_channel, out_channel, out_channel), use_bn)
        self.decoder = conv_stages(nn.ConvTranspose2d, (out_channel, out_channel, in_channel, in_channel), use_bn)
        if phase == 'train':
            self.requires_grad_(False)

    def forward(self, feature):
        self.check_channels(feature, self.in_channel, 'in_channel')
        return self.forward_pretrain(feature) if self.phase == 'pretrain' else self.forward_train(feature)

    def forward_train(self, feature):
        """The factor of the teacher feature, a constant target."""
        with torch.no_grad():
            return self.encoder(feature)

    def forward_pretrain(self, feature):
        """The reconstruction of the teacher feature."""
        return self.decoder(self.encoder(feature))


@MODELS.register_module()
class Translator(BaseConnector):
    """The student's translator: ``encoder`` (``in_channel -> in_channel -> out_channel -> out_channel``), the
    paraphraser's encoder layout, with BN by default.

    Config::

        loss_s4_sfeat=dict(type='Translator', in_channel=512, out_channel=1024)
    """

    def __init__(self, in_channel, out_channel, use_bn=True, init_cfg=None):
        super().__init__(init_cfg)
        self.in_channel = in_channel
        self.encoder = conv_stages(nn.Conv2d, (in_channel, in_channel, out_channel, out_channel), use_bn)

    def forward(self, feature):
        self.check_channels(feature, self.in_channel, 'in_channel')
        return self.encoder(feature)
