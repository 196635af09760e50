"""How tolerant a teacher is: the mean top-1 probability, the mean secondary mass (ranks 2..K) and the mean
entropy of its class distributions over a config's val dataset, one row per checkpoint, so strict and
tolerant teachers (and later generations) of one architecture compare side by side::

    python tools/analysis/teacher_tolerance.py CONFIG STRICT.pth TOLERANT.pth [--k 3] [--max-batches 20]

What a "sample" is, per task (the model's own activation, as the training loss sees it):

- classification (mmpretrain): the softmax over the logits of every image;
- segmentation (mmseg): the softmax at every pixel whose label is not the decode head's ``ignore_index``,
  on the logits resized to the label (``model.predict``'s ``seg_logits``);
- detection (mmdet dense heads, e.g. RetinaNet): the class scores of the ``--top-anchors`` anchors with the
  highest score in each image, i.e. the candidates the detector would report. Sigmoid heads give
  independent per-class scores: top-1 and secondary mass are taken on them as they are (what the tolerant
  loss acts on), the entropy on them normalised to sum to 1 over the classes. Softmax heads drop the
  background column. Ground truth is not used: at test time the detector does not know which anchors are
  positive. Two-stage detectors are not supported.

Entropy is in nats (``log(C)`` for a uniform distribution over C classes). ``CONFIG`` is the model's own
config (a distillation config works too: its student is analysed, from a plain checkpoint such as the
exported ``student_final.pth``).
"""
import torch
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import MODELS, init_default_scope
from mmengine.runner import Runner, load_checkpoint

import mmdistkd  # noqa: F401  (mmdistkd's losses in configs, safe checkpoint loading)
from mmdistkd.utils.tasks import task_of

from .tables import markdown_table

STAT_NAMES = ('top1', 'secondary', 'entropy')


def tolerance_stats(scores, k):
    """Per-sample statistics of class scores ``(S, C)``: dict of ``(S,)`` tensors

    - ``top1``: the largest score;
    - ``secondary``: the sum of the scores ranked 2..k;
    - ``entropy``: of the scores normalised to sum to 1 (unchanged for a softmax), in nats.
    """
    if not 2 <= k <= scores.size(-1):
        raise ValueError(f'k must lie in [2, number of classes = {scores.size(-1)}], got {k}')
    scores = scores.double()
    top = scores.topk(k, dim=-1).values
    distribution = scores / scores.sum(dim=-1, keepdim=True).clamp_min(1e-12)
    entropy = -torch.special.xlogy(distribution, distribution).sum(dim=-1)  # 0 log 0 = 0
    return dict(top1=top[:, 0], secondary=top[:, 1:].sum(dim=-1), entropy=entropy)


class ToleranceMeter:
    """Running means of :func:`tolerance_stats` over batches of samples."""

    def __init__(self, k):
        self.k = k
        self.count = 0
        self.sums = dict.fromkeys(STAT_NAMES, 0.0)

    def update(self, scores):
        if scores.numel() == 0:
            return
        for name, values in tolerance_stats(scores, self.k).items():
            self.sums[name] += values.sum().item()
        self.count += scores.size(0)

    def means(self):
        return {name: total / max(self.count, 1) for name, total in self.sums.items()}


def dense_head_scores(model, inputs, data_samples, top_anchors):
    """Class scores ``(images * top_anchors, C)`` of the best-scoring anchors of each image (see the module
    docstring)."""
    head = model.bbox_head
    cls_scores = model(inputs, data_samples, mode='tensor')[0]  # per FPN level: (N, A * C_out, H, W)
    per_anchor = torch.cat([level.permute(0, 2, 3, 1).reshape(level.size(0), -1, head.cls_out_channels)
                            for level in cls_scores], dim=1)
    if head.use_sigmoid_cls:
        scores = per_anchor.sigmoid()
    else:
        scores = per_anchor.softmax(dim=-1)[..., :-1]  # mmdet puts the background class last
    best = scores.max(dim=-1).values.topk(min(top_anchors, scores.size(1)), dim=1).indices
    return torch.gather(scores, 1, best[..., None].expand(-1, -1, scores.size(-1))).flatten(0, 1)


def segmentation_scores(model, batch):
    """Softmax ``(valid pixels, C)`` at the pixels with a valid label, at the label's resolution."""
    ignore_index = model.decode_head.ignore_index
    pixels = []
    for sample in model.test_step(batch):
        probs = sample.seg_logits.data.softmax(dim=0).movedim(0, -1)  # (H, W, C)
        pixels.append(probs[sample.gt_sem_seg.data[0] != ignore_index])
    return torch.cat(pixels)


@torch.no_grad()
def batch_scores(model, batch, task, top_anchors=100):
    """The class scores ``(samples, C)`` of one val batch for the task's notion of a sample."""
    if task == 'seg':
        return segmentation_scores(model, batch)
    data = model.data_preprocessor(batch, False)
    if task == 'cls':
        logits = model(data['inputs'], data['data_samples'], mode='tensor')
        return (logits[-1] if isinstance(logits, (list, tuple)) else logits).softmax(dim=-1)
    if not hasattr(model, 'bbox_head'):
        raise NotImplementedError(f'{type(model).__name__}: only dense (single-stage) detectors are supported')
    return dense_head_scores(model, data['inputs'], data['data_samples'], top_anchors)


def build_model(cfg):
    """The config's model on CPU / the current GPU, eval mode (the student of a distillation config)."""
    model_cfg = cfg.model.copy()
    # mmpretrain keeps the data preprocessor at the top level of its configs (the Runner moves it too)
    if 'data_preprocessor' in cfg and 'data_preprocessor' not in model_cfg:
        model_cfg.data_preprocessor = cfg.data_preprocessor
    model = MODELS.build(model_cfg)
    model = getattr(model, 'student', model)
    if not torch.cuda.is_available():
        model = revert_sync_batchnorm(model)  # SyncBN (mmseg's default) cannot run on CPU tensors
    return model.to('cuda' if torch.cuda.is_available() else 'cpu').eval()


def analyse(cfg, checkpoints, k=3, max_batches=None, top_anchors=100):
    """``{checkpoint: means}`` of :func:`tolerance_stats` over the config's val dataloader."""
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    model = build_model(cfg)
    task = task_of(model)
    dataloader = Runner.build_dataloader(cfg.val_dataloader, seed=0)
    results = {}
    for checkpoint in checkpoints:
        # strict: statistics of a model that silently kept random layers would mean nothing
        load_checkpoint(model, checkpoint, map_location='cpu', strict=True, logger='silent',
                        revise_keys=[(r'^module\.', '')])
        meter = ToleranceMeter(k)
        for index, batch in enumerate(dataloader):
            if max_batches is not None and index >= max_batches:
                break
            meter.update(batch_scores(model, batch, task, top_anchors).float().cpu())
        results[checkpoint] = dict(meter.means(), samples=meter.count)
    return results


def tolerance_table(results, k):
    """A Markdown table: one row per checkpoint."""
    return markdown_table(['checkpoint', 'samples', 'top-1 prob', f'secondary mass (top-2..{k})', 'entropy (nats)'],
                          [[checkpoint, stats['samples'], stats['top1'], stats['secondary'], stats['entropy']]
                           for checkpoint, stats in results.items()])
