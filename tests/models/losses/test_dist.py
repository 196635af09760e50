import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn
from mmengine.structures import BaseDataElement, PixelData

from mmdistkd.models.losses.dist import DISTLoss

IGNORE = 255


# --- Reference, written with explicit loops in float64 ---------------------------------------------

def reference_pearson(a, b):
    a = a - a.sum() / a.numel()
    b = b - b.sum() / b.numel()
    return (a @ b) / (torch.sqrt(a @ a) * torch.sqrt(b @ b) + 1e-8)


def reference_rows(logits, mode='softmax', tau=1.0, num_classes=None, labels=None):
    """One probability vector per sample: per image and pixel (and anchor). ``labels`` are at twice the
    logits' resolution, so nearest resizing picks label ``[n, 2h, 2w]`` for pixel ``(h, w)``."""
    if logits.dim() == 2:
        logits = logits[:, :, None, None]
    rows = []
    num_images, channels, height, width = logits.shape
    for n in range(num_images):
        for h in range(height):
            for w in range(width):
                if labels is not None and labels[n, 2 * h, 2 * w] == IGNORE:
                    continue
                z = logits[n, :, h, w].double() / tau
                if mode == 'softmax':
                    rows.append(torch.exp(z) / torch.exp(z).sum())
                elif mode == 'sigmoid_flat':
                    rows.append(1 / (1 + torch.exp(-z)))
                else:  # sigmoid_anchor: channel a*C + c is class c of anchor a
                    for a in range(channels // num_classes):
                        rows.append(1 / (1 + torch.exp(-z[a * num_classes:(a + 1) * num_classes])))
    return rows


def reference_dist(rows_S, rows_T, inter_loss_weight=1.0, intra_loss_weight=1.0, scale=1.0):
    num_samples, num_classes = len(rows_S), rows_S[0].numel()
    inter = 1 - sum(reference_pearson(rows_S[i], rows_T[i]) for i in range(num_samples)) / num_samples
    column = lambda rows, c: torch.stack([row[c] for row in rows])  # noqa: E731
    intra = 1 - sum(reference_pearson(column(rows_S, c), column(rows_T, c))
                    for c in range(num_classes)) / num_classes
    return scale * (inter_loss_weight * inter + intra_loss_weight * intra)


def seg_samples(labels):
    return [BaseDataElement(gt_sem_seg=PixelData(data=label[None])) for label in labels]


def check_value_and_gradient(loss_module, logits_S, logits_T, reference_kwargs, data_samples=None,
                             labels=None, scale=1.0):
    logits_S = logits_S.clone().requires_grad_()
    loss = loss_module(logits_S, logits_T, data_samples=data_samples)
    loss.backward()
    reference_S = logits_S.detach().double().requires_grad_()
    rows_S = reference_rows(reference_S, labels=labels, **reference_kwargs)
    rows_T = reference_rows(logits_T, labels=labels, **reference_kwargs)
    expected = reference_dist(rows_S, rows_T, loss_module.inter_loss_weight, loss_module.intra_loss_weight, scale)
    expected.backward()
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss.double(), expected.detach(), atol=1e-6, rtol=1e-6)  # fp32: ulp of 14 is 1e-6
    torch.testing.assert_close(logits_S.grad.double(), reference_S.grad, atol=1e-6, rtol=1e-5)


# --- Single process --------------------------------------------------------------------------------

@pytest.mark.parametrize('tau_square', [True, False])
def test_classification_logits(tau_square):
    torch.manual_seed(0)
    logits_S, logits_T = torch.randn(6, 5) * 2, torch.randn(6, 5) * 2
    loss = DISTLoss(inter_loss_weight=0.5, intra_loss_weight=2.0, tau=2.0, loss_weight=1.5, tau_square=tau_square)
    check_value_and_gradient(loss, logits_S, logits_T, dict(tau=2.0), scale=1.5 * (4.0 if tau_square else 1.0))


def test_segmentation_logits_exclude_ignored_pixels():
    torch.manual_seed(1)
    logits_S, logits_T = torch.randn(2, 4, 3, 5), torch.randn(2, 4, 3, 5)
    labels = torch.randint(0, 4, (2, 6, 10))
    labels[0, :4] = IGNORE
    labels[1, :, 3:7] = IGNORE
    check_value_and_gradient(DISTLoss(), logits_S, logits_T, dict(), seg_samples(labels), labels=labels)
    # Option off: every pixel counts.
    check_value_and_gradient(DISTLoss(exclude_ignored=False), logits_S, logits_T, dict(), seg_samples(labels))


def reference_bilinear(image, height, width):
    """``(C, H, W)`` -> ``(C, height, width)`` in float64 by explicit loops: half-pixel centres (align_corners
    False), source coordinates clamped at the borders."""
    image = image.double()
    out = image.new_zeros(image.shape[0], height, width)

    def source(index, scale, size):
        position = max((index + 0.5) * scale - 0.5, 0.0)
        low = min(int(position), size - 1)
        return low, min(low + 1, size - 1), position - low

    for y in range(height):
        y0, y1, wy = source(y, image.shape[1] / height, image.shape[1])
        for x in range(width):
            x0, x1, wx = source(x, image.shape[2] / width, image.shape[2])
            out[:, y, x] = ((1 - wy) * ((1 - wx) * image[:, y0, x0] + wx * image[:, y0, x1]) +
                            wy * ((1 - wx) * image[:, y1, x0] + wx * image[:, y1, x1]))
    return out


@pytest.mark.parametrize('teacher_size', [(6, 10), (2, 3)], ids=['teacher-larger', 'teacher-smaller'])
def test_teacher_resized_to_the_students_size_with_the_students_ignored_pixels(teacher_size):
    torch.manual_seed(4)
    logits_S, logits_T = torch.randn(2, 4, 3, 5, requires_grad=True), torch.randn(2, 4, *teacher_size)
    labels = torch.randint(0, 4, (2, 6, 10))  # twice the student's size
    labels[0, :2] = IGNORE
    labels[1, :, 4:8] = IGNORE
    loss = DISTLoss(resize_teacher=True)(logits_S, logits_T, data_samples=seg_samples(labels))
    loss.backward()
    reference_S = logits_S.detach().double().requires_grad_()
    resized_T = torch.stack([reference_bilinear(image, 3, 5) for image in logits_T])
    expected = reference_dist(reference_rows(reference_S, labels=labels), reference_rows(resized_T, labels=labels))
    expected.backward()
    torch.testing.assert_close(loss.double(), expected.detach(), atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(logits_S.grad.double(), reference_S.grad, atol=1e-6, rtol=1e-5)


def test_teacher_of_another_size_without_resize_teacher_names_the_option():
    with pytest.raises(ValueError, match=r'\(1, 4, 3, 5\).*\(1, 4, 6, 10\) differ in spatial size: set '
                                         r'resize_teacher=True'):
        DISTLoss()(torch.randn(1, 4, 3, 5), torch.randn(1, 4, 6, 10))
    # Only the spatial size is resized: other differences stay errors.
    with pytest.raises(ValueError, match=r'\(1, 4, 3, 5\).*\(1, 3, 6, 10\) differ$'):
        DISTLoss(resize_teacher=True)(torch.randn(1, 4, 3, 5), torch.randn(1, 3, 6, 10))


def test_sigmoid_anchor_mode():
    torch.manual_seed(2)
    logits_S, logits_T = torch.randn(2, 3 * 4, 2, 3), torch.randn(2, 3 * 4, 2, 3)  # A=3 anchors, C=4 classes
    check_value_and_gradient(DISTLoss(mode='sigmoid_anchor', num_classes=4, tau=1.5), logits_S, logits_T,
                             dict(mode='sigmoid_anchor', num_classes=4, tau=1.5), scale=1.5**2)
    # With segmentation labels every anchor of an ignored pixel is dropped.
    labels = torch.randint(0, 4, (2, 4, 6))
    labels[1, :2] = IGNORE
    check_value_and_gradient(DISTLoss(mode='sigmoid_anchor', num_classes=4), logits_S, logits_T,
                             dict(mode='sigmoid_anchor', num_classes=4), seg_samples(labels), labels=labels)


def test_sigmoid_flat_mode():
    torch.manual_seed(3)
    logits_S, logits_T = torch.randn(2, 6, 2, 3), torch.randn(2, 6, 2, 3)
    check_value_and_gradient(DISTLoss(mode='sigmoid_flat'), logits_S, logits_T, dict(mode='sigmoid_flat'))


def test_fpn_levels_are_summed():
    torch.manual_seed(4)
    levels_S = [torch.randn(2, 6, 4, 4), torch.randn(2, 6, 2, 2)]
    levels_T = [torch.randn(2, 6, 4, 4), torch.randn(2, 6, 2, 2)]
    loss = DISTLoss(mode='sigmoid_anchor', num_classes=3)
    expected = loss(levels_S[0], levels_T[0]) + loss(levels_S[1], levels_T[1])
    torch.testing.assert_close(loss(levels_S, levels_T), expected)
    torch.testing.assert_close(loss(tuple(levels_S), tuple(levels_T), data_samples=[BaseDataElement()] * 2), expected)


def test_all_pixels_ignored_gives_zero_with_finite_gradient():
    logits_S = torch.randn(2, 3, 2, 2, requires_grad=True)
    labels = torch.full((2, 4, 4), IGNORE)
    loss = DISTLoss()(logits_S, torch.randn(2, 3, 2, 2), data_samples=seg_samples(labels))
    loss.backward()
    assert loss.item() == 0
    assert torch.equal(logits_S.grad, torch.zeros_like(logits_S))


@pytest.mark.parametrize('mode', ['softmax', 'sigmoid_flat', 'sigmoid_anchor'])
def test_degenerate_inputs_stay_finite(mode):
    loss_module = DISTLoss(mode=mode, num_classes=2)
    cases = [
        (torch.zeros(4, 6), torch.zeros(4, 6)),  # constant logits: every Pearson is 0/eps = 0
        (torch.randn(1, 6), torch.randn(1, 6)),  # batch of one: intra over a single sample
        (torch.randn(1, 4, 1, 1), torch.randn(1, 4, 1, 1)),  # a single pixel
        (torch.full((3, 4), 1e4), torch.full((3, 4), -1e4)),  # saturated probabilities
    ]
    for logits_S, logits_T in cases:
        logits_S = logits_S.clone().requires_grad_()
        loss = loss_module(logits_S, logits_T)
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(logits_S.grad).all()
    # Constant logits: both relations are 0, so the loss is inter + intra = 2.
    assert loss_module(torch.zeros(4, 6), torch.zeros(4, 6)).item() == pytest.approx(2.0)


def test_fp32_under_autocast():
    logits_S, logits_T = torch.randn(8, 10).bfloat16(), torch.randn(8, 10).bfloat16()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        loss = DISTLoss()(logits_S, logits_T)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, DISTLoss()(logits_S.float(), logits_T.float()))


def test_teacher_detached():
    logits_S, logits_T = torch.randn(4, 5, requires_grad=True), torch.randn(4, 5, requires_grad=True)
    DISTLoss()(logits_S, logits_T).backward()
    assert logits_S.grad is not None and logits_T.grad is None
    DISTLoss(teacher_detach=False)(logits_S, logits_T).backward()
    assert logits_T.grad is not None


def test_errors():
    with pytest.raises(ValueError, match=r'\(2, 3\).*\(2, 4\)'):
        DISTLoss()(torch.randn(2, 3), torch.randn(2, 4))
    with pytest.raises(ValueError, match='levels'):
        DISTLoss()([torch.randn(2, 3)], [torch.randn(2, 3)] * 2)
    with pytest.raises(ValueError, match='num_classes'):
        DISTLoss(mode='sigmoid_anchor')
    with pytest.raises(ValueError, match='num_classes=4'):
        DISTLoss(mode='sigmoid_anchor', num_classes=4)(torch.randn(1, 6, 2, 2), torch.randn(1, 6, 2, 2))
    with pytest.raises(ValueError, match='mode'):
        DISTLoss(mode='softmax_anchor')


# --- Global intra relation over 2 processes --------------------------------------------------------

def classification_problem():
    generator = torch.Generator().manual_seed(10)
    inputs, logits_T = torch.randn(8, 4, generator=generator), torch.randn(8, 5, generator=generator)
    torch.manual_seed(0)
    return nn.Linear(4, 5), inputs, logits_T


def segmentation_problem(ignore_pattern):
    generator = torch.Generator().manual_seed(11)
    inputs, logits_T = torch.randn(4, 3, 2, 3, generator=generator), torch.randn(4, 4, 2, 3, generator=generator)
    labels = torch.randint(0, 4, (4, 4, 6), generator=generator)
    if ignore_pattern == 'uneven':  # rank 0 (images 0, 1) keeps 10 of 12 pixels, rank 1 keeps 4
        labels[0, 0, :4] = IGNORE
        labels[2] = IGNORE
        labels[3, 0, 2:] = IGNORE
    else:  # rank 1 (images 2 and 3) has no valid pixel at all
        labels[2:] = IGNORE
    torch.manual_seed(0)
    return nn.Conv2d(3, 4, 1), inputs, logits_T, labels


def ddp_worker(rank, world_size, port, out_dir):
    torch.set_num_threads(1)
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank, world_size=world_size)
    try:
        results = {}
        student, inputs, logits_T = classification_problem()
        local = slice(rank * 4, rank * 4 + 4)
        student = nn.parallel.DistributedDataParallel(student)
        loss = DISTLoss(tau=2.0, global_intra=True)(student(inputs[local]), logits_T[local])
        loss.backward()
        results['classification'] = (loss.detach(), [p.grad.clone() for p in student.parameters()])
        for ignore_pattern in ('uneven', 'rank1_all_ignored'):
            student, inputs, logits_T, labels = segmentation_problem(ignore_pattern)
            local = slice(rank * 2, rank * 2 + 2)
            student = nn.parallel.DistributedDataParallel(student)
            loss = DISTLoss(inter_loss_weight=0.0, global_intra=True)(
                student(inputs[local]), logits_T[local], data_samples=seg_samples(labels[local]))
            loss.backward()
            results[ignore_pattern] = (loss.detach(), [p.grad.clone() for p in student.parameters()])
        torch.save(results, os.path.join(out_dir, f'rank{rank}.pt'))
    finally:
        dist.destroy_process_group()


def single_process(student, inputs, logits_T, loss_module, data_samples=None):
    loss = loss_module(student(inputs), logits_T, data_samples=data_samples)
    loss.backward()
    return loss.detach(), [p.grad for p in student.parameters()]


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def test_global_intra_matches_single_process_on_the_concatenated_batch(tmp_path):
    mp.spawn(ddp_worker, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f'rank{rank}.pt') for rank in range(2)]

    # Equal halves: the inter term averages to the full-batch one, the intra term is global.
    expected_loss, expected_grads = single_process(*classification_problem(), DISTLoss(tau=2.0, global_intra=True))
    torch.testing.assert_close((ranks[0]['classification'][0] + ranks[1]['classification'][0]) / 2, expected_loss,
                               atol=1e-6, rtol=0)
    for rank in ranks:
        for grad, expected in zip(rank['classification'][1], expected_grads):
            torch.testing.assert_close(grad, expected, atol=1e-6, rtol=0)

    # Uneven valid-pixel counts (also none on one rank): each rank's intra equals the full-batch intra.
    for ignore_pattern in ('uneven', 'rank1_all_ignored'):
        student, inputs, logits_T, labels = segmentation_problem(ignore_pattern)
        expected_loss, expected_grads = single_process(student, inputs, logits_T, DISTLoss(inter_loss_weight=0.0),
                                                       seg_samples(labels))
        for rank in ranks:
            loss, grads = rank[ignore_pattern]
            torch.testing.assert_close(loss, expected_loss, atol=1e-6, rtol=0)
            for grad, expected in zip(grads, expected_grads):
                torch.testing.assert_close(grad, expected, atol=1e-6, rtol=0)
