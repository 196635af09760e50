import functools
import hashlib
import http.server
import json
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

from mmdistkd.engine import safe_checkpoint
from mmdistkd.engine.safe_checkpoint import (
    CheckpointDownloadError,
    CheckpointHashError,
    CorruptCheckpointError,
    UntrustedCheckpointError,
    load_from_http,
    load_from_local,
    register_safe_checkpoint_loaders,
    sha256_prefix_in_name,
)


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


# ---------------------------------------------------------------------- damaged files, downloads, hashes
def save_teacher(path):
    """A teacher checkpoint for ``build_model``'s teacher (the DPK distillation model of
    test_distill_optim_wrapper): a real mmpretrain ResNet."""
    from test_distill_optim_wrapper import build_model
    torch.save({'state_dict': build_model(seed=1).teacher.state_dict()}, path)
    return path


def build_with_teacher(teacher_ckpt):
    from test_distill_optim_wrapper import build_model
    return build_model(teacher_ckpt=str(teacher_ckpt))


@pytest.fixture
def cache_home(tmp_path, monkeypatch):
    """~/.cache of the test: where verified checkpoints are recorded."""
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'cache'))
    return tmp_path / 'cache'


def test_truncated_teacher_is_reported_as_such_with_its_name(tmp_path, cache_home):
    whole = save_teacher(tmp_path / 'whole.pth').read_bytes()
    truncated = tmp_path / 'teacher.pth'
    truncated.write_bytes(whole[:len(whole) // 2])
    with pytest.raises(CorruptCheckpointError, match=f'{truncated}.*corrupt or truncated') as error:
        build_with_teacher(truncated)
    assert 'does not match' not in str(error.value)


@pytest.mark.parametrize('content', ['random', 'empty', 'truncated legacy'])
def test_damaged_files_are_reported_as_corrupt_not_as_untrusted(tmp_path, content):
    legacy = tmp_path / 'legacy.pth'
    torch.save({'state_dict': nn.Linear(64, 64).state_dict()}, legacy, _use_new_zipfile_serialization=False)
    damaged = tmp_path / 'damaged.pth'
    damaged.write_bytes({'random': np.random.default_rng(0).bytes(5000), 'empty': b'',
                         'truncated legacy': legacy.read_bytes()[:-100]}[content])
    with pytest.raises(CorruptCheckpointError, match=f'Cannot read checkpoint {damaged}: .*corrupt or truncated'):
        _load_checkpoint(str(damaged))


def test_refusal_of_a_dangerous_global_never_suggests_unpickling_it(tmp_path):
    marker = tmp_path / 'pwned'
    checkpoint = tmp_path / 'evil.pth'
    save_malicious(checkpoint, malicious_payloads(marker)['os.system'])
    with pytest.raises(UntrustedCheckpointError) as error:
        _load_checkpoint(str(checkpoint))
    message = str(error.value)
    assert "'posix.system'" in message and 'can run any code' in message and 'Do not load this file' in message
    assert 'weights_only=False' not in message and 'weights_only' not in message
    assert not marker.exists()


def test_truncated_resume_file_is_named(tmp_path):
    build_runner(tmp_path / 'first', max_iters=2).train()
    checkpoint = tmp_path / 'first' / 'iter_2.pth'
    checkpoint.write_bytes(checkpoint.read_bytes()[:-1000])
    runner = build_runner(tmp_path / 'second', max_iters=4, load_from=str(checkpoint), resume=True)
    with pytest.raises(CorruptCheckpointError, match=f'{checkpoint}: the file is corrupt or truncated'):
        runner.train()


def sha256_named(path):
    """``path`` renamed as OpenMMLab names its checkpoints: ``<stem>-<first 8 hex of SHA-256>.pth``."""
    named = path.with_name(f'{path.stem}-{hashlib.sha256(path.read_bytes()).hexdigest()[:8]}.pth')
    path.rename(named)
    return named


def test_teacher_named_after_its_sha256_is_verified_once(tmp_path, cache_home, monkeypatch):
    teacher = sha256_named(save_teacher(tmp_path / 'teacher.pth'))
    build_with_teacher(teacher)
    record = json.loads((cache_home / 'mmdistkd' / 'verified_checkpoints.json').read_text())
    assert list(record) == [str(teacher)]
    # Unchanged: not hashed again.
    monkeypatch.setattr(safe_checkpoint.hashlib, 'sha256', lambda: pytest.fail('hashed a verified file again'))
    build_with_teacher(teacher)


def test_teacher_with_bytes_altered_inside_a_tensor_is_refused(tmp_path, cache_home):
    teacher = sha256_named(save_teacher(tmp_path / 'teacher.pth'))
    expected = teacher.stem.rsplit('-', 1)[1]
    build_with_teacher(teacher)  # verified and recorded
    data = bytearray(teacher.read_bytes())
    largest = max(torch.load(teacher, weights_only=True)['state_dict'].values(), key=torch.Tensor.numel)
    start = bytes(data).find(largest.numpy().tobytes()[:256])
    assert start > 0 and largest.numel() * 4 > 4096
    data[start:start + 4096] = bytes(4096)
    teacher.write_bytes(bytes(data))
    torch.load(teacher, weights_only=True)  # torch does not notice: it checks no CRC
    actual = hashlib.sha256(bytes(data)).hexdigest()[:8]
    with pytest.raises(CheckpointHashError, match=f'{teacher} is damaged: .* starts with {expected}, .* to {actual}'):
        build_with_teacher(teacher)


def test_names_ending_in_a_date_or_no_hash_are_not_verified():
    assert sha256_prefix_in_name('/x/resnet50_8xb32_in1k_20210831-ea4938fc.pth') == 'ea4938fc'
    assert sha256_prefix_in_name('teacher-20240101.pth') is None
    assert sha256_prefix_in_name('teacher.pth') is None


UNREACHABLE = 'http://127.0.0.1:9/teacher-12345678.pth'  # the discard port: refused at once, nothing downloads


def test_download_failure_names_the_url(tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    with pytest.raises(CheckpointDownloadError, match=f'Cannot download checkpoint {UNREACHABLE}: .*refused'):
        _load_checkpoint(UNREACHABLE)


def test_teacher_url_without_network_says_how_to_give_a_local_file(tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    with pytest.raises(CheckpointDownloadError, match=rf"teacher_ckpt '{UNREACHABLE}' cannot be downloaded .*"
                       r'download the file elsewhere.*--cfg-options model.teacher_ckpt=/path/file.pth'):
        build_with_teacher(UNREACHABLE)


def test_downloaded_teacher_is_verified_in_the_download_cache(http_root, tmp_path, cache_home):
    root, url = http_root
    good = sha256_named(save_teacher(root / 'teacher.pth'))
    build_with_teacher(f'{url}/{good.name}')
    bad = root / 'teacher-0badc0de.pth'
    good.rename(bad)
    cached = tmp_path / 'torch_home' / 'hub' / 'checkpoints' / bad.name
    with pytest.raises(CheckpointHashError, match=f'{cached} is damaged: .* starts with 0badc0de'):
        build_with_teacher(f'{url}/{bad.name}')
