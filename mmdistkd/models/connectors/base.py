"""The base class of mmdistkd's connectors: trainable modules of a distiller that turn a recorded feature into
what a distill loss compares (``connectors=dict(name=dict(type=...))`` in MMRazor's config keys)."""
from mmengine.model import BaseModule


class BaseConnector(BaseModule):
    """A connector's ``forward(feature)`` is its job; the distiller calls it on a recorded value and, given a
    ``connector_idx``, picks that element of the result (BYOT's and FBKD's connectors return tuples).

    Submodules keep MMRazor's names, so the connector parts of MMRazor checkpoints load.
    """

    def forward_train(self, feature):
        """MMRazor's name for the training forward, for code written against MMRazor's connectors."""
        return self(feature)

    def check_channels(self, feature, expected, arg_name):
        """Fails, saying which argument to change, unless ``feature`` has ``expected`` channels (dim 1)."""
        channels = feature.shape[1] if feature.dim() >= 2 else None
        if channels != expected:
            fix = f'set {arg_name}={channels} in its config' if channels else 'record a feature of shape (N, C, ...)'
            raise ValueError(f'{type(self).__name__} was built with {arg_name}={expected}, but got a feature of '
                             f'shape {tuple(feature.shape)} (channels in dim 1): {fix}, or record a feature with '
                             f'{expected} channels')
