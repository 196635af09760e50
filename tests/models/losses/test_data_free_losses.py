import math
import os
import socket

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from mmdistkd.models.losses.data_free import ActivationLoss, InformationEntropyLoss, OnehotLikeLoss


def reference_onehot_like(logits):
    """Mean over samples of ``-log softmax(x)[argmax x]``, a loop in float64 (the argmax is a constant)."""
    total = 0
    for row in logits.double():
        top = int(np.argmax(row.detach().numpy()))
        total = total - torch.log(torch.exp(row[top]) / torch.exp(row).sum())
    return total / len(logits)


def reference_information_entropy(logits):
    """``sum_c p_c log10 p_c`` of the mean softmax, written out in float64."""
    probs = torch.exp(logits.double()) / torch.exp(logits.double()).sum(1, keepdim=True)
    class_freq = sum(probs) / len(probs)
    return sum(p * torch.log10(p) for p in class_freq)


def reference_activation(feats, norm_type):
    """DAFL's activation loss in float64: minus the mean absolute value, or minus the L2 norm of everything."""
    flat = feats.double().reshape(len(feats), -1)
    if norm_type == 'abs':
        return -sum(row.abs().sum() / row.numel() for row in flat) / len(flat)
    return -torch.sqrt((flat**2).sum())


CASES = {
    'onehot': (OnehotLikeLoss, reference_onehot_like, {}),
    'entropy': (InformationEntropyLoss, reference_information_entropy, {}),
    'activation_abs': (ActivationLoss, lambda feats: reference_activation(feats, 'abs'), {'norm_type': 'abs'}),
    'activation_norm': (ActivationLoss, lambda feats: reference_activation(feats, 'norm'), {'norm_type': 'norm'}),
}


@pytest.mark.parametrize('case', list(CASES))
def test_value_and_gradient_to_the_generator_match_float64_reference(case):
    """The teacher's outputs are what the generator learns through: the gradient must reach them."""
    loss_type, reference, kwargs = CASES[case]
    generator = torch.Generator().manual_seed(0)
    shape = (4, 6, 2, 2) if case.startswith('activation') else (8, 5)
    teacher_outputs = (2 * torch.randn(shape, generator=generator)).requires_grad_()
    loss = loss_type(loss_weight=0.3, **kwargs)(teacher_outputs)
    loss.backward()
    reference_outputs = teacher_outputs.detach().double().requires_grad_()
    expected = 0.3 * reference(reference_outputs)
    expected.backward()
    torch.testing.assert_close(loss.double(), expected.detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(teacher_outputs.grad.double(), reference_outputs.grad, rtol=1e-5, atol=1e-6)


def test_information_entropy_is_lowest_for_balanced_classes():
    balanced = torch.eye(4) * 20
    collapsed = torch.zeros(4, 4)
    collapsed[:, 0] = 20
    loss = InformationEntropyLoss()
    assert loss(balanced).item() == pytest.approx(-math.log10(4), rel=1e-6)
    assert loss(collapsed).item() == pytest.approx(0, abs=1e-6)


@pytest.mark.parametrize('case', list(CASES))
@pytest.mark.parametrize('inputs', ['zeros', 'constant', 'saturated', 'single_sample', 'one_class_present'])
def test_degenerate_inputs_give_finite_values_and_gradients(case, inputs):
    loss_type, reference, kwargs = CASES[case]
    teacher_outputs = {
        'zeros': torch.zeros(3, 4),
        'constant': torch.full((3, 4), 2.5),
        # Classes no sample predicts have frequency 0 in float32: log10(0) in MMRazor's entropy.
        'saturated': torch.tensor([[1e4, 0.0, -1e4, 0.0], [5e3, 0.0, 0.0, -5e3]]),
        'single_sample': torch.tensor([[0.5, -1.0, 2.0, 0.0]]),
        'one_class_present': torch.tensor([[80.0, 0.0, 0.0, 0.0]]).repeat(3, 1),
    }[inputs].requires_grad_()
    loss = loss_type(**kwargs)(teacher_outputs)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(teacher_outputs.grad).all()
    if inputs in ('constant', 'single_sample'):
        torch.testing.assert_close(loss.double(), reference(teacher_outputs.detach()), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('case', list(CASES))
def test_half_precision_inputs_are_computed_in_float32(case):
    loss_type, reference, kwargs = CASES[case]
    half = torch.randn(8, 5, generator=torch.Generator().manual_seed(1)).half()
    loss = loss_type(**kwargs)(half)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss.double(), reference(half), rtol=1e-5, atol=1e-6)


def test_wrong_inputs_fail_with_messages_naming_them():
    with pytest.raises(ValueError, match=r'OnehotLikeLoss takes \(N, C\).*\(2, 3, 4\)'):
        OnehotLikeLoss()(torch.randn(2, 3, 4))
    with pytest.raises(ValueError, match=r'InformationEntropyLoss takes \(N, C\).*\(5,\)'):
        InformationEntropyLoss()(torch.randn(5))
    with pytest.raises(TypeError, match='neck.gap'):
        ActivationLoss()((torch.randn(2, 3), ))
    with pytest.raises(ValueError, match='norm_type'):
        ActivationLoss(norm_type='l1')


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def entropy_on_rank(rank, world_size, port, logits, results):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=world_size)
    try:
        local = logits.chunk(world_size)[rank].clone().requires_grad_()
        loss = InformationEntropyLoss(loss_weight=2.0)(local)
        loss.backward()
        # Plain lists: a tensor put in the queue would live in shared memory that dies with this process.
        results.put((rank, loss.item(), local.grad.tolist()))
    finally:
        dist.destroy_process_group()


def test_gather_computes_the_whole_batchs_entropy_on_every_rank():
    """As MMRazor's ``GatherTensors``: each rank's loss is the whole batch's, and every rank's loss sends its
    gradient to every rank's samples (so DDP's average of the generator's gradients is the whole-batch one)."""
    logits = 2 * torch.randn(6, 5, generator=torch.Generator().manual_seed(2))
    # Spawned: forked after torch's thread pools started, the workers can deadlock.
    results = mp.get_context('spawn').SimpleQueue()
    mp.spawn(entropy_on_rank, args=(2, free_port(), logits, results), nprocs=2)
    results = {rank: (torch.tensor(loss), torch.tensor(grad)) for rank, loss, grad in (results.get() for _ in range(2))}
    whole_batch = logits.double().requires_grad_()
    expected = 2.0 * reference_information_entropy(whole_batch)
    expected.backward()
    for rank in range(2):
        loss, grad = results[rank]
        torch.testing.assert_close(loss.double(), expected.detach(), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(grad.double(), 2 * whole_batch.grad.chunk(2)[rank], rtol=1e-5, atol=1e-6)
