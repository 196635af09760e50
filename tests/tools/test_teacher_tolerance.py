"""tools/analysis/teacher_tolerance.py: its statistics against a reference written from their definitions, the
detection head's anchor selection, and the whole path from a config and checkpoint on the demo data."""
import math
import os.path as osp
from types import SimpleNamespace

import pytest
import torch
from mmengine.registry import DefaultScope

from mmdistkd.analysis.tolerance import analyse, build_model, dense_head_scores, tolerance_stats, tolerance_table
from mmdistkd.testing import REPO, run_tool
from mmdistkd.utils.launch import load_config


def reference_stats(scores, k):
    """(top-1, sum of ranks 2..k, entropy of the scores normalised to sum 1) of one score vector (a list)."""
    ranked = sorted(scores, reverse=True)
    total = sum(scores)
    entropy = -sum(s / total * math.log(s / total) for s in scores if s > 0)
    return ranked[0], sum(ranked[1:k]), entropy


@pytest.mark.parametrize('k', [2, 3, 5])
def test_stats_match_the_reference_for_softmax_and_sigmoid_scores(k):
    torch.manual_seed(0)
    logits = torch.randn(16, 7) * 3
    for scores in (logits.softmax(dim=-1), logits.sigmoid()):
        stats = tolerance_stats(scores, k)
        expected = torch.tensor([reference_stats(row.tolist(), k) for row in scores.double()], dtype=torch.float64)
        for column, name in enumerate(('top1', 'secondary', 'entropy')):
            assert torch.allclose(stats[name], expected[:, column], atol=1e-6), name
    # a one-hot prediction: top-1 is 1, nothing secondary, no entropy (0 log 0 = 0, not NaN)
    one_hot = torch.eye(7)[:3]
    stats = tolerance_stats(one_hot, k)
    assert stats['top1'].eq(1).all() and stats['secondary'].eq(0).all() and stats['entropy'].eq(0).all()
    with pytest.raises(ValueError, match='k'):
        tolerance_stats(one_hot, 8)


@pytest.mark.parametrize('use_sigmoid', [True, False])
def test_detection_takes_the_best_anchors_of_each_image(use_sigmoid):
    """Levels (N, A * C_out, H, W) as mmdet's dense heads return them; C_out = C (+1 background, softmax)."""
    torch.manual_seed(0)
    num_classes, anchors, top = 3, 2, 4
    out_channels = num_classes + (0 if use_sigmoid else 1)
    levels = [torch.randn(2, anchors * out_channels, size, size) for size in (4, 2)]

    class Detector(torch.nn.Module):
        bbox_head = SimpleNamespace(cls_out_channels=out_channels, use_sigmoid_cls=use_sigmoid)

        def forward(self, inputs, data_samples, mode):
            return levels, None

    got = dense_head_scores(Detector(), None, None, top)
    assert got.shape == (2 * top, num_classes)
    for image in range(2):
        # reference: every (position, anchor) of every level, scored, the `top` best by their maximum
        candidates = []
        for level in levels:
            per_position = level[image].reshape(anchors, out_channels, -1)
            for position in range(per_position.size(-1)):
                for anchor in range(anchors):
                    logits = per_position[anchor, :, position]
                    candidates.append(logits.sigmoid() if use_sigmoid else logits.softmax(0)[:-1])
        expected = sorted(candidates, key=lambda scores: -scores.max().item())[:top]
        picked = got[image * top:(image + 1) * top]
        assert torch.allclose(torch.stack(sorted(picked, key=lambda s: -s.max().item())), torch.stack(expected))


def test_analyse_a_demo_checkpoint_matches_its_softmax_outputs(demo_data, tmp_path):
    config = osp.join(REPO, 'configs', 'demo', 'resnet18_demo_cls_student.py')
    cfg = load_config(config, {'val_dataloader.num_workers': 0, 'val_dataloader.batch_size': 8})
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        torch.manual_seed(0)
        model = build_model(cfg)
    checkpoint = str(tmp_path / 'model.pth')
    torch.save({'state_dict': model.state_dict()}, checkpoint)

    results = analyse(cfg, [checkpoint], k=3, max_batches=2)
    assert results[checkpoint]['samples'] == 16

    # reference: the same 16 val images through the model, softmax, the definitions above
    from mmengine.runner import Runner
    batch = next(iter(Runner.build_dataloader(dict(cfg.val_dataloader, batch_size=16), seed=0)))
    with torch.no_grad():
        data = model.data_preprocessor(batch, False)
        probs = model(data['inputs'], mode='tensor').softmax(dim=-1)
    expected = torch.tensor([reference_stats(row.tolist(), 3) for row in probs.double()]).mean(dim=0)
    got = results[checkpoint]
    assert [got['top1'], got['secondary'], got['entropy']] == pytest.approx(expected.tolist(), abs=1e-5)
    assert f'| {checkpoint} | 16 | {got["top1"]:.4f} | {got["secondary"]:.4f} | {got["entropy"]:.4f} |' in \
        tolerance_table(results, 3)

    # the command prints the same row
    result = run_tool(['tools/analysis/teacher_tolerance.py', config, checkpoint, '--max-batches', '2', '--cfg-options',
                       'val_dataloader.num_workers=0', 'val_dataloader.batch_size=8'])
    assert tolerance_table(results, 3).splitlines()[-1] in result.stdout
