"""CRD-benchmark checkpoints (HobbitLong/RepDistiller's ``{'model': state_dict}``) as mmpretrain
``ImageClassifier`` state dicts of mmdistkd's CIFAR backbones: ``backbone.<key>`` and ``head.fc.*``."""
from collections import OrderedDict

from mmdistkd.registry import MODELS

from .crd_archs import CRD_ARCHS


def crd_model_state_dict(checkpoint):
    """The model's state dict in a loaded CRD checkpoint: its ``'model'`` entry (what RepDistiller saves),
    a ``'state_dict'`` entry (what the DIST authors' training code saves for the same models), or the
    checkpoint itself when it is a bare state dict."""
    for key in ('model', 'state_dict'):
        if isinstance(checkpoint, dict) and isinstance(checkpoint.get(key), dict):
            return checkpoint[key]
    return checkpoint


def crd_to_mmpretrain(state_dict, arch):
    """Maps a CRD model's state dict to an mmpretrain ``ImageClassifier`` of ``CRD_ARCHS[arch]``'s backbone:
    ``<key>`` -> ``backbone.<key>``, the classifier (``fc`` / ``linear`` / ``classifier``) -> ``head.fc``.
    Raises ``ValueError`` naming the missing, unexpected or mis-shaped keys when the state dict is not of
    that architecture."""
    if arch not in CRD_ARCHS:
        raise ValueError(f'unknown CRD model {arch!r}: pass one of {list(CRD_ARCHS)} as the architecture')
    backbone_cfg, in_channels, classifier = CRD_ARCHS[arch]
    classifier_keys = {f'{classifier}.weight': 'head.fc.weight', f'{classifier}.bias': 'head.fc.bias'}
    converted = OrderedDict((classifier_keys.get(key, f'backbone.{key}'), value)
                            for key, value in state_dict.items())

    expected = {f'backbone.{key}': tuple(value.shape)
                for key, value in MODELS.build(backbone_cfg).state_dict().items()}
    # The classifier's number of classes is the checkpoint's own (100 for CIFAR-100).
    weight = converted.get('head.fc.weight')
    num_classes = weight.shape[0] if weight is not None and weight.dim() == 2 else 'num_classes'
    expected.update({'head.fc.weight': (num_classes, in_channels), 'head.fc.bias': (num_classes, )})
    missing = sorted(set(expected) - set(converted))
    unexpected = sorted(set(converted) - set(expected))
    mis_shaped = sorted(f'{key} {tuple(converted[key].shape)} (expected {shape})'
                        for key, shape in expected.items()
                        if key in converted and tuple(converted[key].shape) != shape)
    if missing or unexpected or mis_shaped:
        problems = [f'{name} ({len(keys)}): {", ".join(keys[:8])}{", ..." if len(keys) > 8 else ""}'
                    for name, keys in (('missing', missing), ('unexpected', unexpected),
                                       ('shape mismatch', mis_shaped)) if keys]
        raise ValueError(f'the state dict is not a CRD {arch!r} model ({"; ".join(problems)}); pass the '
                         'architecture the checkpoint was trained as (its folder name, e.g. wrn_40_2_vanilla '
                         'is wrn_40_2)')
    return converted
