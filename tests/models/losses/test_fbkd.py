"""FBKDLoss on MMRazor's connector tuples against a float64 reference with the four terms summed out explicitly
(FBKD, Zhang and Ma, ICLR 2021)."""
import pytest
import torch

from mmdistkd.models.losses import FBKDLoss
from mmdistkd.registry import MODELS

WEIGHTS = dict(mask_l2_weight=0.3, channel_weight=0.5, spatial_weight=0.7, nonloacl_weight=1.1, loss_weight=2.0)


def connector_tuples(num_images=2, channels=4, height=5, width=6, seed=0):
    """Random tensors in MMRazor's layouts, every float requiring grad:
    student (spatial_mask, channel_mask, channel_pool_adapt, spatial_pool_adapt, relation_adapt, feat_adapt),
    teacher (spatial_mask, channel_mask, spatial_pool, relation, feat)."""
    generator = torch.Generator().manual_seed(seed)

    def tensor(*shape, positive=False):
        values = torch.randn(*shape, generator=generator)
        return (values.abs() if positive else values).requires_grad_()

    student = (tensor(num_images, 1, height, width, positive=True), tensor(num_images, channels, 1, 1, positive=True),
               tensor(num_images, channels), tensor(num_images, 1, height, width),
               tensor(num_images, channels, height, width), tensor(num_images, channels, height, width))
    teacher = (tensor(num_images, 1, height, width, positive=True), tensor(num_images, channels, 1, 1, positive=True),
               tensor(num_images, 1, height, width), tensor(num_images, channels, height, width),
               tensor(num_images, channels, height, width))
    return student, teacher


def reference_fbkd(student, teacher, mask_l2_weight, channel_weight, spatial_weight, nonloacl_weight, loss_weight):
    """The four terms as square roots of explicit sums, one element at a time where the terms are per position."""
    s_spatial_mask, _, s_channel_pool_adapt, s_spatial_pool_adapt, s_relation_adapt, s_feat_adapt = student
    t_spatial_mask, _, t_spatial_pool, t_relation, t_feat = teacher
    num_images, channels, height, width = t_feat.shape
    feat = 0
    channel = 0
    for n in range(num_images):
        for c in range(channels):
            channel = channel + (t_feat[n, c].sum() / (height * width) - s_channel_pool_adapt[n, c])**2
            for h in range(height):
                for w in range(width):
                    mask = (s_spatial_mask[n, 0, h, w] + t_spatial_mask[n, 0, h, w]).detach() / 2
                    feat = feat + (t_feat[n, c, h, w] - s_feat_adapt[n, c, h, w])**2 * mask
    spatial = ((t_spatial_pool - s_spatial_pool_adapt)**2).sum()
    nonlocal_ = ((t_relation - s_relation_adapt)**2).sum()
    return loss_weight * (mask_l2_weight * feat.sqrt() + channel_weight * channel.sqrt() +
                          spatial_weight * spatial.sqrt() + nonloacl_weight * nonlocal_.sqrt())


def as_float64(values):
    return tuple(value.detach().double().requires_grad_() for value in values)


def test_matches_float64_reference_with_gradients():
    student, teacher = connector_tuples()
    loss = FBKDLoss(**WEIGHTS)(student, teacher)
    loss.backward()
    reference_student, reference_teacher = as_float64(student), as_float64(teacher)
    expected = reference_fbkd(reference_student, reference_teacher, **WEIGHTS)
    expected.backward()
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss.double(), expected.detach(), atol=1e-6, rtol=1e-5)
    # The student's adapted tensors, and the teacher's relation (from the teacher connector's trained non-local
    # block) and feature get the reference's gradients; the attention masks are weights, detached.
    for values, references in ((student, reference_student), (teacher, reference_teacher)):
        for value, reference in zip(values, references):
            if reference.grad is None or not reference.grad.any():
                assert value.grad is None or not value.grad.any()
            else:
                torch.testing.assert_close(value.grad.double(), reference.grad, atol=1e-7, rtol=1e-4)
    assert student[0].grad is None and teacher[0].grad is None


def test_default_weights_are_the_authors():
    student, teacher = connector_tuples(seed=1)
    defaults = dict(mask_l2_weight=7e-5, channel_weight=4e-3, spatial_weight=4e-3, nonloacl_weight=7e-5,
                    loss_weight=1.0)
    expected = reference_fbkd(as_float64(student), as_float64(teacher), **defaults)
    torch.testing.assert_close(FBKDLoss()(student, teacher).double(), expected.detach(), atol=1e-8, rtol=1e-5)


def test_identical_student_and_teacher_give_zero_and_zero_gradients():
    """Where every term is 0 the square roots' gradients are 0, not NaN."""
    student, teacher = connector_tuples(seed=2)
    feat = teacher[4]
    spatial_pool = teacher[2].detach().clone().requires_grad_()
    relation = teacher[3].detach().clone().requires_grad_()
    channel_pool = feat.detach().mean(dim=(2, 3)).requires_grad_()
    feat_adapt = feat.detach().clone().requires_grad_()
    student = student[:2] + (channel_pool, spatial_pool, relation, feat_adapt)
    loss = FBKDLoss(**WEIGHTS)(student, teacher)
    loss.backward()
    assert loss.item() == 0
    for value in (channel_pool, spatial_pool, relation, feat_adapt):
        assert torch.equal(value.grad, torch.zeros_like(value))


@pytest.mark.parametrize('size', [(1, 4, 1, 1), (1, 4, 3, 3)])  # one image; one position
def test_all_zero_inputs_are_finite(size):
    num_images, channels, height, width = size
    student, teacher = connector_tuples(num_images, channels, height, width)
    student = tuple(torch.zeros_like(value).requires_grad_() for value in student)
    teacher = tuple(torch.zeros_like(value) for value in teacher)
    loss = FBKDLoss(**WEIGHTS)(student, teacher)
    loss.backward()
    assert loss.item() == 0
    assert all(value.grad is None or torch.isfinite(value.grad).all() for value in student)


def test_half_precision_inputs_compute_in_float32():
    student, teacher = connector_tuples(seed=3)
    student, teacher = tuple(v.detach().half() for v in student), tuple(v.detach().half() for v in teacher)
    loss = FBKDLoss(**WEIGHTS)(student, teacher)
    assert loss.dtype == torch.float32
    expected = reference_fbkd(as_float64(student), as_float64(teacher), **WEIGHTS)
    torch.testing.assert_close(loss.double(), expected.detach(), atol=1e-6, rtol=1e-5)


def test_wrong_tuples_say_which_connector_to_use():
    student, teacher = connector_tuples()
    with pytest.raises(ValueError, match='FBKDStudentConnector'):
        FBKDLoss()(student[:5], teacher)
    with pytest.raises(ValueError, match='FBKDTeacherConnector'):
        FBKDLoss()(student, teacher[4])
    _, wider_teacher = connector_tuples(channels=8)
    with pytest.raises(ValueError, match=r'feat_adapt of shape \(2, 4, 5, 6\).*feat of shape \(2, 8, 5, 6\)'):
        FBKDLoss()(student, wider_teacher)


def test_takes_the_connectors_outputs():
    """With the FBKD connectors registered, their outputs are what the loss takes (MMRazor's tuple layout)."""
    if MODELS.get('FBKDStudentConnector') is None or MODELS.get('FBKDTeacherConnector') is None:
        pytest.skip('FBKD connectors not registered')
    torch.manual_seed(4)
    connector_args = dict(in_channels=8, reduction=2, mode='dot_product', sub_sample=True, maxpool_stride=2)
    student_connector = MODELS.build(dict(type='mmdistkd.FBKDStudentConnector', **connector_args))
    teacher_connector = MODELS.build(dict(type='mmdistkd.FBKDTeacherConnector', **connector_args))
    feat_S, feat_T = torch.randn(2, 8, 8, 8, requires_grad=True), torch.randn(2, 8, 8, 8)
    student, teacher = student_connector(feat_S), teacher_connector(feat_T)
    loss = FBKDLoss(**WEIGHTS)(student, teacher)
    loss.backward()
    expected = reference_fbkd(as_float64(student), as_float64(teacher), **WEIGHTS)
    torch.testing.assert_close(loss.double(), expected.detach(), atol=1e-6, rtol=1e-5)
    assert torch.isfinite(feat_S.grad).all() and feat_S.grad.any()
    # The teacher connector's non-local block trains through the relation term.
    assert any(p.grad is not None and p.grad.any() for p in teacher_connector.parameters())
