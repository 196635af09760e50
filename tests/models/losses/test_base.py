"""The loss contract (losses/base.py): attributes checked against forward at class creation, teacher inputs
detached once, fp32 with autocast off, the shared shape and level checks."""
import pytest
import torch

from mmdistkd.models.losses import DISTLoss, DPKLoss, KLDivergence
from mmdistkd.models.losses.base import DistillLoss, Fp32Loss, check_loss_contract, check_same_levels, check_same_shape


class Difference(DistillLoss):
    """``sum(preds_S - preds_T)`` over a tensor or a list of tensors."""

    teacher_inputs = ('preds_T', )

    def forward(self, preds_S, preds_T, *, scale=1.0):
        if isinstance(preds_S, list):
            return scale * sum((s - t).sum() for s, t in zip(preds_S, preds_T))
        return scale * (preds_S - preds_T).sum()


def test_contract_of_the_shipped_losses():
    assert (KLDivergence.takes_data_samples, KLDivergence.compares_class_scores) == (False, True)
    assert (DISTLoss.takes_data_samples, DISTLoss.compares_class_scores) == (True, True)
    assert (DPKLoss.takes_data_samples, DPKLoss.compares_class_scores) == (True, False)
    for loss in (KLDivergence, DISTLoss, DPKLoss):
        assert issubclass(loss, DistillLoss) and len(loss.teacher_inputs) == 1


@pytest.mark.parametrize('call', ['positional', 'keyword', 'list'])
def test_teacher_inputs_are_detached_unless_teacher_detach_is_false(call):
    for teacher_detach in (True, False):
        student, teacher = torch.randn(3, requires_grad=True), torch.randn(3, requires_grad=True)
        loss = Difference(teacher_detach=teacher_detach)
        if call == 'positional':
            result = loss(student, teacher, scale=2.0)
        elif call == 'keyword':
            result = loss(preds_T=teacher, preds_S=student)
        else:
            result = loss([student], [teacher])
        result.backward()
        assert torch.equal(student.grad, torch.full((3, ), 2.0 if call == 'positional' else 1.0))
        assert (teacher.grad is None) == teacher_detach


def test_forward_runs_in_fp32_with_autocast_off():
    seen = {}

    class Probe(Fp32Loss):

        def forward(self, values, levels, label):
            seen.update(values=values.dtype, levels=[v.dtype for v in levels], label=label.dtype,
                        autocast=torch.is_autocast_enabled('cpu'), matmul=(values @ values).dtype)
            return values.sum()

    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = Probe()(torch.ones(2, dtype=torch.bfloat16), levels=(torch.ones(1, dtype=torch.float16), ),
                      label=torch.tensor([1]))
    assert seen == dict(values=torch.float32, levels=[torch.float32], label=torch.int64, autocast=False,
                        matmul=torch.float32)
    assert out.dtype == torch.float32


@pytest.mark.parametrize('body, message', [
    ('takes_data_samples = True\n    def forward(self, preds_S): pass', 'lacks a data_samples parameter'),
    ('def forward(self, preds_S, data_samples=None): pass', 'set takes_data_samples = True'),
    ("teacher_inputs = ('preds_T', )\n    def forward(self, preds_S): pass", r"names \['preds_T'\]"),
    ("teacher_inputs = 'preds_T'\n    def forward(self, preds_T): pass", 'tuple of argument names'),
    ('compares_class_scores = 1\n    def forward(self, preds_S): pass', 'must be True or False'),
])
def test_attributes_that_disagree_with_forward_fail_at_class_creation(body, message):
    with pytest.raises(TypeError, match=message):
        exec(f'class Broken(DistillLoss):\n    {body}\n', {'DistillLoss': DistillLoss})


def test_instance_attributes_are_checked_too():
    loss = Difference()
    check_loss_contract(loss)
    loss.takes_data_samples = True
    with pytest.raises(TypeError, match='Difference.takes_data_samples is True'):
        check_loss_contract(loss)
    loss = Difference()
    loss.teacher_inputs = ('preds_S', )
    with pytest.raises(TypeError, match='teacher_inputs is changed on the instance; declare it on the class'):
        check_loss_contract(loss)


def test_shape_and_level_checks_name_what_differs():
    check_same_shape(torch.zeros(2, 3), torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r'\(2, 3\).*\(2, 4\)'):
        check_same_shape(torch.zeros(2, 3), torch.zeros(2, 4))
    check_same_levels([torch.zeros(1)] * 2, (torch.zeros(1), ) * 2)
    with pytest.raises(ValueError, match='both be tensors or both be lists'):
        check_same_levels(torch.zeros(1), [torch.zeros(1)])
    with pytest.raises(ValueError, match='student has 2 levels.*teacher has 3'):
        check_same_levels([torch.zeros(1)] * 2, [torch.zeros(1)] * 3)
