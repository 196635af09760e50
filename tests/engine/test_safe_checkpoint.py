import functools
import http.server
import os
import pickle
import threading
from collections import OrderedDict

import mmengine.runner.checkpoint as mmengine_checkpoint
import numpy as np
import pytest
import torch
from mmengine.hooks import Hook
from mmengine.logging import MessageHub
from mmengine.model import BaseModel
from mmengine.runner import CheckpointLoader, Runner, load_checkpoint
from mmengine.runner.checkpoint import _load_checkpoint
from torch import nn
from torch.utils.data import Dataset

from mmdistkd.engine.safe_checkpoint import (UntrustedCheckpointError,
                                             load_from_http, load_from_local,
                                             register_safe_checkpoint_loaders)


@pytest.fixture(autouse=True, scope='module')
def safe_loaders():
    register_safe_checkpoint_loaders()


class ToyModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, inputs, labels, mode='tensor'):
        outputs = self.linear(inputs)
        if mode == 'loss':
            return dict(loss=((outputs - labels)**2).mean())
        return outputs


class ToyDataset(Dataset):
    # Runner.save_checkpoint stores this as meta['dataset_meta'].
    metainfo = dict(classes=('cat', 'dog'), palette=[(220, 20, 60)])

    def __len__(self):
        return 8

    def __getitem__(self, index):
        return dict(
            inputs=torch.full((2, ), float(index)),
            labels=torch.tensor([float(index)]))


class StateAtTrainStart(Hook):
    """Records what the runner resumed, just before training continues."""

    def before_train(self, runner):
        self.iter = runner.iter
        self.weights = {
            k: v.clone()
            for k, v in runner.model.state_dict().items()
        }
        self.loss_history = runner.message_hub.get_scalar(
            'train/loss').data[0].copy()


def build_runner(work_dir, max_iters, **kwargs):
    return Runner(
        model=ToyModel(),
        work_dir=str(work_dir),
        experiment_name=f'safe_ckpt_{work_dir.name}',
        train_dataloader=dict(
            dataset=ToyDataset(),
            sampler=dict(type='DefaultSampler', shuffle=True),
            batch_size=2,
            num_workers=0,
            collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(
            optimizer=dict(type='SGD', lr=0.01, momentum=0.9)),
        param_scheduler=dict(
            type='MultiStepLR', milestones=[1], by_epoch=False),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(
            logger=dict(type='LoggerHook', interval=1),
            checkpoint=dict(
                type='CheckpointHook', interval=1, by_epoch=False)),
        randomness=dict(seed=0),
        **kwargs)


class Payload:
    """Pickles as a call to ``func(*args)``."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def save_malicious(path, payload):
    torch.save({'state_dict': OrderedDict(), 'meta': payload}, path)


def malicious_payloads(marker):
    return {
        'os.system': Payload(os.system, f'touch {marker}'),
        'builtins.exec': Payload(exec, f'open({str(marker)!r}, "w").close()'),
        # getattr(getattr, '__self__') is the builtins module.
        'getattr escape': Payload(getattr, getattr, '__self__'),
    }


def test_registration_is_idempotent():
    register_safe_checkpoint_loaders()
    register_safe_checkpoint_loaders()
    assert CheckpointLoader._get_checkpoint_loader('a.pth') is load_from_local
    assert CheckpointLoader._get_checkpoint_loader(
        'https://x/a.pth') is load_from_http
    # torchvision:// and open-mmlab:// download through this module global.
    assert mmengine_checkpoint.load_from_http is load_from_http


def test_resume_mmengine_checkpoint(tmp_path):
    first = build_runner(tmp_path / 'first', max_iters=2)
    first.train()
    checkpoint = tmp_path / 'first' / 'iter_2.pth'
    saved_weights = first.model.state_dict()
    saved_losses = first.message_hub.get_scalar('train/loss').data[0]
    # Plain torch.load refuses it: the allow-list is what makes resume work.
    with pytest.raises(pickle.UnpicklingError):
        torch.load(checkpoint)

    resumed_state = StateAtTrainStart()
    second = build_runner(
        tmp_path / 'second',
        max_iters=4,
        load_from=str(checkpoint),
        resume=True,
        custom_hooks=[resumed_state])
    second.train()

    assert resumed_state.iter == 2
    for name, value in saved_weights.items():
        torch.testing.assert_close(resumed_state.weights[name], value)
    assert (resumed_state.loss_history == saved_losses).all()
    assert second.iter == 4
    written = os.listdir(tmp_path / 'second')
    assert 'iter_3.pth' in written and 'iter_2.pth' not in written


def test_best_score_from_float32_metric_loads(tmp_path):
    # What CheckpointHook(save_best=...) stores for a float32 metric.
    hub = MessageHub(f'safe_ckpt_{tmp_path.name}')
    hub.update_info('best_score', np.float32(41.5))
    checkpoint = tmp_path / 'best.pth'
    torch.save({'message_hub': hub.state_dict()}, checkpoint)

    loaded = _load_checkpoint(str(checkpoint))
    best_score = loaded['message_hub']['runtime_info']['best_score']
    assert best_score == 41.5 and best_score.dtype == np.float32


@pytest.mark.parametrize('kind', ['os.system', 'builtins.exec',
                                  'getattr escape'])
def test_malicious_checkpoint_is_refused(tmp_path, kind):
    marker = tmp_path / 'pwned'
    checkpoint = tmp_path / 'evil.pth'
    save_malicious(checkpoint, malicious_payloads(marker)[kind])

    with pytest.raises(UntrustedCheckpointError, match='allow-list'):
        _load_checkpoint(str(checkpoint))
    with pytest.raises(UntrustedCheckpointError, match='nothing in the file'):
        load_checkpoint(ToyModel(), str(checkpoint))
    assert not marker.exists()


def test_refusal_names_offending_global(tmp_path):
    checkpoint = tmp_path / 'evil.pth'
    save_malicious(checkpoint, Payload(exec, '0'))
    with pytest.raises(UntrustedCheckpointError, match="global 'exec'"):
        _load_checkpoint(str(checkpoint))


def test_plain_state_dict_loads(tmp_path):
    source = nn.Conv2d(3, 4, 3)
    checkpoint = tmp_path / 'conv.pth'
    torch.save(source.state_dict(), checkpoint)  # torchvision-style file

    target = nn.Conv2d(3, 4, 3)
    load_checkpoint(target, str(checkpoint), map_location='cpu', strict=True)
    for name, value in source.state_dict().items():
        torch.testing.assert_close(target.state_dict()[name], value)


class QuietHandler(http.server.SimpleHTTPRequestHandler):

    def log_message(self, *args):
        pass


@pytest.fixture
def http_root(tmp_path, monkeypatch):
    """Serves tmp_path/'served' on localhost; downloads cache in tmp_path."""
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    root = tmp_path / 'served'
    root.mkdir()
    server = http.server.ThreadingHTTPServer(
        ('127.0.0.1', 0), functools.partial(QuietHandler, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root, f'http://127.0.0.1:{server.server_address[1]}'
    server.shutdown()
    server.server_close()


def test_http_loader_loads_weights_and_refuses_pickles(http_root, tmp_path):
    root, url = http_root
    weights = OrderedDict(weight=torch.arange(3.))
    torch.save({'state_dict': weights}, root / 'good.pth')
    marker = tmp_path / 'pwned'
    save_malicious(root / 'evil.pth',
                   malicious_payloads(marker)['builtins.exec'])

    loaded = _load_checkpoint(f'{url}/good.pth', map_location='cpu')
    torch.testing.assert_close(loaded['state_dict']['weight'],
                               weights['weight'])
    with pytest.raises(UntrustedCheckpointError):
        _load_checkpoint(f'{url}/evil.pth')
    assert not marker.exists()
