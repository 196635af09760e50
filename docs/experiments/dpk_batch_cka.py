"""Which CKA can drive DPK's prior ratio at detection's batch sizes? Measured on the FPN outputs of the demo
RetinaNets (configs/demo: R34 teacher, R18 student, 64-channel FPNs; freshly initialised, as at the start of
a run, since no trained demo detector ships with the repository) on demo-like 128 x 128 images
(mmdistkd.analysis.demo_data), for batches of 2, 4 and 8 images:

- the authors' detection rule (unbiased batch HSIC, ``1 - |HSIC(K,L)| / sqrt(|HSIC(K,K)| |HSIC(L,L)|)`` with
  their fallbacks: NaN -> 0.5, >= 1 -> 0.85, <= 0 -> 0.15);
- the unbiased batch CKA alone (NaN below 4 images);
- our token CKA (``1 - CKA`` over spatial positions, clipped to DPK's default pi_range).

Each is computed for the matched pair (student and teacher on the same images) and for a mismatched pair
(the teacher on other images), so an estimator that does not separate the two cannot follow the feature gap.

    python docs/experiments/dpk_batch_cka.py [--batches 20]
"""
import argparse
import math

import numpy as np
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

import mmdistkd  # noqa: F401  (registers the mmdistkd:: config scope)
from mmdistkd.analysis.demo_data import _det_image
from mmdistkd.models.losses.cka import batch_unbiased_cka, token_linear_cka
from mmdistkd.models.losses.dpk_ratio import authors_detection_ratio

TEACHER = 'configs/demo/retinanet_r34_demo_det_teacher.py'
STUDENT = 'configs/demo/retinanet_r18_demo_det_student.py'
LEVELS = ('P3', 'P4', 'P5', 'P6', 'P7')


def build_detector(config, seed):
    from mmdet.registry import MODELS
    torch.manual_seed(seed)
    with DefaultScope.overwrite_default_scope('mmdet'):
        detector = MODELS.build(Config.fromfile(config).model)
    return detector.eval()


def fpn_levels(detector, images):
    batch = detector.data_preprocessor(dict(inputs=list(images)), False)
    with torch.no_grad():
        return detector.extract_feat(batch['inputs'])


def demo_images(rng, count):
    return torch.from_numpy(np.stack([_det_image(rng, 128)[0] for _ in range(count)])).permute(0, 3, 1, 2)


def summary(values):
    finite = [v for v in values if math.isfinite(v)]
    nan = len(values) - len(finite)
    if not finite:
        return f'NaN in {nan}/{len(values)}'
    return f'{min(finite):.3f}-{max(finite):.3f}' + (f' (NaN in {nan})' if nan else '')


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--batches', type=int, default=20, help='batches per batch size')
    args = parser.parse_args()
    teacher, student = build_detector(TEACHER, 0), build_detector(STUDENT, 1)
    rng = np.random.default_rng(0)
    print('| images | level | pair | authors\' detection pi | unbiased batch CKA | token pi |')
    print('|---|---|---|---|---|---|')
    for batch_size in (2, 4, 8):
        rows = {}
        for _ in range(args.batches):
            images, others = demo_images(rng, batch_size), demo_images(rng, batch_size)
            feats_s, feats_t, feats_other = fpn_levels(student, images), fpn_levels(teacher, images), \
                fpn_levels(teacher, others)
            for level, feat_s, feat_t, feat_o in zip(LEVELS, feats_s, feats_t, feats_other):
                for pair, target in (('matched', feat_t), ('mismatched', feat_o)):
                    row = rows.setdefault((level, pair), ([], [], []))
                    row[0].append(authors_detection_ratio(feat_s, target)[0])
                    row[1].append(float(batch_unbiased_cka(feat_s, target)))
                    row[2].append(min(max(1 - float(token_linear_cka(feat_s, target)), 0.1), 0.85))
        for (level, pair), (authors, batch_cka, token) in rows.items():
            print(f'| {batch_size} | {level} | {pair} | {summary(authors)} | {summary(batch_cka)} | '
                  f'{summary(token)} |')


if __name__ == '__main__':
    main()
