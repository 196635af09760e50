"""Connectors that apply a ``torch.nn.functional`` function or a ``torch.nn`` layer chosen by name (MMRazor's
``TorchFunctionalConnector`` and ``TorchNNConnector``, with its lists of allowed names); no method of their own."""
import torch.nn.functional as F
from torch import nn

from mmdistkd.registry import MODELS

from .base import BaseConnector

FUNCTION_NAMES = ('adaptive_avg_pool2d', 'adaptive_max_pool2d', 'avg_pool2d', 'dropout', 'dropout2d', 'max_pool2d',
                  'normalize', 'relu', 'softmax', 'interpolate')
MODULE_NAMES = ('AdaptiveAvgPool2d', 'AdaptiveMaxPool2d', 'AvgPool2d', 'BatchNorm2d', 'Conv2d', 'Dropout',
                'Dropout2d', 'Linear', 'MaxPool2d', 'ReLU', 'Softmax')


def check_name(connector, arg_name, name, allowed):
    if name not in allowed:
        raise ValueError(f'{connector}: {arg_name}={name!r} is not one of the allowed names {allowed}')


@MODELS.register_module()
class TorchFunctionalConnector(BaseConnector):
    """``getattr(torch.nn.functional, function_name)(feature, **func_args)``.

    Config::

        s_pool=dict(type='TorchFunctionalConnector', function_name='avg_pool2d', func_args=dict(kernel_size=4))
    """

    def __init__(self, function_name=None, func_args=None, init_cfg=None):
        super().__init__(init_cfg)
        check_name('TorchFunctionalConnector', 'function_name', function_name, FUNCTION_NAMES)
        self.function_name = function_name
        self.func = getattr(F, function_name)
        self.func_args = dict(func_args or {})

    def forward(self, feature):
        return self.func(feature, **self.func_args)

    def extra_repr(self):
        return f'function_name={self.function_name!r}, func_args={self.func_args}'


@MODELS.register_module()
class TorchNNConnector(BaseConnector):
    """``getattr(torch.nn, module_name)(**module_args)`` applied to the feature; its parameters (``Conv2d``,
    ``Linear``, ``BatchNorm2d``) train with the distiller.

    Config::

        s_proj=dict(type='TorchNNConnector', module_name='Conv2d',
                    module_args=dict(in_channels=128, out_channels=256, kernel_size=1))
    """

    def __init__(self, module_name=None, module_args=None, init_cfg=None):
        super().__init__(init_cfg)
        check_name('TorchNNConnector', 'module_name', module_name, MODULE_NAMES)
        self.func = getattr(nn, module_name)(**(module_args or {}))

    def forward(self, feature):
        return self.func(feature)
