"""Per-pixel class scores of a mask-classification segmentation head (mmseg's ``Mask2FormerHead``), as a recorder.

Mask2Former has no per-pixel logits in training: its head predicts, per decoder layer, class scores of
queries ``(N, Q, C + 1)`` (the last class is "no object") and mask logits of queries ``(N, Q, h, w)`` (1/4 of
the input). Its semantic map at inference (``Mask2FormerHead.predict``) is

    scores[n, c, y, x] = sum_q softmax(cls[n, q])[c] * sigmoid(mask[n, q, y, x])      (c < C)

from the last decoder layer; ``QuerySegLogScores`` records that map (before ``predict``'s upsampling), computed
from the head's forward output, so the same recorder serves a teacher (whose head the ``'seg_decode_aux'``
teacher forward runs) and a student (whose head runs inside its ``loss``).
"""
import contextlib

import torch

from mmdistkd.registry import MODELS

from .recorders import ModuleRecorder


def query_seg_scores(cls_scores, mask_preds):
    """``(N, C, h, w)`` per-pixel class scores from one decoder layer's query class logits ``(N, Q, C + 1)``
    and mask logits ``(N, Q, h, w)``, in float32 (mmseg's ``predict`` without its upsampling)."""
    device_type = cls_scores.device.type
    # A device type without autocast (e.g. meta) has no autocast region to leave; entering one would raise.
    precision = torch.autocast(device_type=device_type, enabled=False) \
        if torch.amp.is_autocast_available(device_type) else contextlib.nullcontext()
    with precision:
        class_probs = cls_scores.float().softmax(dim=-1)[..., :-1]
        return torch.einsum('nqc,nqhw->nchw', class_probs, mask_preds.float().sigmoid())


@MODELS.register_module()
class QuerySegLogScores(ModuleRecorder):
    """Records ``log(max(scores, min_score))`` of the per-pixel class scores (module docstring) of the last
    decoder layer, one ``(N, C, h, w)`` float32 record per forward of the head ``source``.

    Why the log: DIST (and KD) turn what they are given into class distributions with
    ``softmax(x / tau)``. The scores are no logits: they are non-negative and do not sum to 1 over classes
    (their sum is the pixel's total foreground mask mass). Their log is a logit whose softmax is the scores
    normalised over classes, ``scores^(1/tau) / sum_c scores^(1/tau)``: the class distribution of the
    inference path at ``tau = 1``, with the per-pixel argmax of mmseg's prediction at this resolution. The same tensor
    can face a student's ordinary per-pixel logits (e.g. a DeepLabV3 decode head's ``conv_seg``).

    Why ``min_score``: a score can be 0 (sigmoid underflows in float32 below about -88), and ``log(0)``
    would give ``-inf`` (then NaN in the relations). Scores are clamped to ``min_score`` first; the default
    1e-6 changes a normalised distribution by at most ``C * 1e-6`` relative to the pixel's total score, and
    bounds the gradient of the log at 1e6.

    Args:
        source: the name of the head module, ``'decode_head'`` in mmseg segmentors. Its forward must return
            ``(cls_scores_per_layer, mask_preds_per_layer)`` as mmseg's / mmdet's ``Mask2FormerHead`` does.
        min_score: the floor of the scores before the log (positive).
    """

    def __init__(self, source='decode_head', min_score=1e-6):
        super().__init__(source)
        if not min_score > 0:
            raise ValueError(f'min_score must be positive (it is the floor before a log), got {min_score!r}')
        self.min_score = min_score

    def _select(self, inputs, outputs):
        per_layer = isinstance(outputs, (tuple, list)) and len(outputs) == 2 and \
            all(isinstance(layers, (tuple, list)) and layers for layers in outputs)
        if not per_layer:
            raise TypeError(f'QuerySegLogScores records a Mask2Former-like head, whose forward returns '
                            f'(cls_scores_per_layer, mask_preds_per_layer); {self.source!r} returned a '
                            f'{type(outputs).__name__}. Record its logits with ModuleOutputs instead.')
        cls_scores, mask_preds = outputs[0][-1], outputs[1][-1]
        return query_seg_scores(cls_scores, mask_preds).clamp(min=self.min_score).log()
