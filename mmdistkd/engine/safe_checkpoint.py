"""Load mmengine checkpoints with ``torch.load(weights_only=True)``.

mmengine 0.10.7 calls ``torch.load`` without ``weights_only``. Since torch 2.6
that defaults to ``True``, so resuming fails on the non-tensor objects
mmengine itself stores (``HistoryBuffer`` and numpy values in
``message_hub``); its http(s) loader goes through
``torch.hub.load_state_dict_from_url``, whose default is still
``weights_only=False`` and so runs any code a downloaded file carries.

:func:`register_safe_checkpoint_loaders` replaces mmengine's local and
http(s) loaders with ones that always load with ``weights_only=True`` and
allow exactly the globals an mmengine training checkpoint contains, for the
duration of that one load. A file that cannot be read is reported as corrupt
or truncated, by name; a download that fails says how to give a local file.

:func:`verify_sha256_suffix` checks a file named after its SHA-256 prefix
(OpenMMLab's ``name_20210831-ea4938fc.pth``) against its contents, once per
file version: torch does not check the CRCs of its zip archives, so altered
bytes inside a tensor would load.
"""
import contextlib
import hashlib
import json
import os
import os.path as osp
import pickle
import re
import tempfile
import zipfile
from urllib.parse import urlparse

import mmengine.runner.checkpoint as mmengine_checkpoint
import numpy as np
import torch
from mmengine.dist import get_dist_info
from mmengine.logging import HistoryBuffer, print_log
from mmengine.runner import CheckpointLoader

# The functions numpy's own pickles call to rebuild arrays and scalars, taken
# from those pickles so no numpy-version-specific module path is imported.
_reconstruct_ndarray = np.zeros(0).__reduce__()[0]
_reconstruct_scalar = np.float64(0).__reduce__()[0]

# The methods HistoryBuffer.__getstate__ saves as its default statistics.
_HISTORY_BUFFER_STATISTICS = ('min', 'max', 'current', 'mean')


def _history_buffer_statistic(owner, name):
    """Stand-in for ``builtins.getattr`` while a checkpoint is unpickled.

    Pickle protocol 2 (torch.save's default) writes a method such as
    ``HistoryBuffer.mean`` as ``getattr(HistoryBuffer, 'mean')``. The real
    ``getattr`` would let a file reach any attribute of anything it can
    build (e.g. ``getattr.__self__`` is the builtins module), so only these
    lookups are answered.
    """
    if owner is HistoryBuffer and name in _HISTORY_BUFFER_STATISTICS:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'getattr(..., {name!r}): builtins.getattr is only allowed for the '
        f'HistoryBuffer statistics {_HISTORY_BUFFER_STATISTICS}')


# Everything beyond tensors and plain containers that an mmengine training
# checkpoint (meta, state_dict, optimizer, param_schedulers, message_hub)
# holds, found by saving one with a real Runner.
MMENGINE_CHECKPOINT_GLOBALS = [
    # MessageHub.state_dict() keeps each logged scalar (loss, lr, time, ...)
    # as a HistoryBuffer.
    HistoryBuffer,
    # HistoryBuffer also saves its statistics methods (min/max/current/mean).
    (_history_buffer_statistic, 'builtins.getattr'),
    # HistoryBuffer's log/count histories are ndarrays, pickled as
    # _reconstruct(ndarray, ...) followed by ndarray.__setstate__.
    np.ndarray,
    (_reconstruct_ndarray, 'numpy.core.multiarray._reconstruct'),
    # numpy scalars, e.g. the float64 'eta' in message_hub's runtime_info.
    (_reconstruct_scalar, 'numpy.core.multiarray.scalar'),
    # numpy 2 renamed numpy.core to numpy._core and pickles record the
    # module path: same two functions, so checkpoints saved under either
    # numpy load under both.
    (_reconstruct_ndarray, 'numpy._core.multiarray._reconstruct'),
    (_reconstruct_scalar, 'numpy._core.multiarray.scalar'),
    # Arrays and scalars carry their dtype: built by np.dtype(...), then its
    # state is set, which needs the concrete dtype class. HistoryBuffer holds
    # python floats/ints (MessageHub converts every logged value), hence
    # float64/int64.
    np.dtype,
    type(np.dtype(np.float64)),
    type(np.dtype(np.int64)),
    # CheckpointHook(save_best=...) keeps the raw metric as runtime_info
    # 'best_score': np.float32 for metrics computed in float32, e.g. mmseg's
    # mIoU under numpy 2 (numpy 1.x happens to promote it to float64).
    type(np.dtype(np.float32)),
]


class UntrustedCheckpointError(pickle.UnpicklingError):
    """A checkpoint holds pickled objects outside the allow-list."""


class CorruptCheckpointError(Exception):
    """A checkpoint file is not a whole checkpoint (cut short, overwritten, not a checkpoint at all)."""


class CheckpointDownloadError(OSError):
    """A checkpoint URL could not be downloaded."""


class CheckpointHashError(ValueError):
    """A file's SHA-256 does not start with the prefix in its name."""


def _refuse(filename, error):
    message = str(error)
    offending_global = re.search(r'GLOBAL (\S+)', message)
    if offending_global:
        reason = f'global {offending_global.group(1)!r}'
    else:  # keep torch's reason, drop its advice around it
        reason = message.split('WeightsUnpickler error:')[-1]
        reason = reason.split('Check the documentation')[0].strip()
    # No advice to unpickle it anyway: the refused global may be os.system.
    return UntrustedCheckpointError(
        f'Refusing to load checkpoint {filename}: it holds pickled objects '
        f"outside mmdistkd's allow-list of what mmengine stores ({reason}). "
        'Unpickling the file would call that, which can run any code; '
        'loading stopped there and nothing in the file was executed. Do not '
        'load this file. If you made it yourself, save only its tensors where '
        "it was made (torch.save({'state_dict': model.state_dict()}, "
        "'weights.pth')) and load that file instead.")


def _is_intact_zip(path):
    """Whether ``path`` is a zip archive (torch's format) whose members all pass their CRC check."""
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.testzip() is None
    except (OSError, zipfile.BadZipFile):
        return False


def _diagnose(source, local_file, error):
    """The error to raise for ``error`` of ``torch.load`` on ``local_file`` (the local copy of ``source``), or
    None to re-raise it as it is.

    A refused global is untrusted; any other failure on a file that is not an intact zip archive (a truncated
    archive raises OSError or RuntimeError, random bytes an UnpicklingError, an empty file EOFError, ...)
    means the file is damaged."""
    if isinstance(error, pickle.UnpicklingError) and re.search(r'GLOBAL |getattr\(', str(error)):
        return _refuse(source, error)
    if isinstance(error, (FileNotFoundError, PermissionError, IsADirectoryError)):
        return None
    if _is_intact_zip(local_file):
        return _refuse(source, error) if isinstance(error, pickle.UnpicklingError) else None
    copy = '' if local_file == source else f' (downloaded to {local_file}: delete it to download again)'
    detail = str(error).split('. ')[0]
    reason = f'{type(error).__name__}: {detail}' if detail else type(error).__name__
    return CorruptCheckpointError(
        f'Cannot read checkpoint {source}{copy}: the file is corrupt or truncated ({reason}). Copy or download '
        'it again, or point to another checkpoint.')


@contextlib.contextmanager
def _mmengine_globals_only(source, local_file):
    """Allow the mmengine globals for one weights-only load of ``local_file`` (the local copy of ``source``);
    explain refusals and damaged files.

    A context manager rather than ``add_safe_globals`` so the allow-list
    never outlives the load.
    """
    try:
        with torch.serialization.safe_globals(MMENGINE_CHECKPOINT_GLOBALS):
            yield
    except Exception as error:
        diagnosis = _diagnose(source, local_file, error)
        if diagnosis is None:
            raise
        raise diagnosis from None


def safe_torch_load(file, map_location=None):
    """``torch.load(weights_only=True)`` allowing the mmengine globals."""
    with _mmengine_globals_only(file, file):
        return torch.load(file, map_location=map_location, weights_only=True)


def load_from_local(filename, map_location=None):
    """Mirror of mmengine's ``load_from_local`` using :func:`safe_torch_load`.

    Named like mmengine's so its "Loads checkpoint by local backend" log line
    is unchanged.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    return safe_torch_load(filename, map_location)


def hub_cache_path(url, model_dir=None):
    """Where ``torch.hub.load_state_dict_from_url`` keeps its download of ``url``."""
    model_dir = model_dir or osp.join(torch.hub.get_dir(), 'checkpoints')
    return osp.join(model_dir, osp.basename(urlparse(url).path))


def load_from_http(filename, map_location=None, model_dir=None,
                   progress=os.isatty(0)):
    """Mirror of mmengine's ``load_from_http`` that loads weights only."""
    cached_file = hub_cache_path(filename, model_dir)

    def download_and_load():
        # Downloaded here rather than by torch.hub so that a failed download is told apart from a bad file.
        if not osp.exists(cached_file):
            os.makedirs(osp.dirname(cached_file), exist_ok=True)
            print_log(f'Downloading {filename} to {cached_file}', logger='current')
            try:
                torch.hub.download_url_to_file(filename, cached_file, progress=progress)
            except OSError as error:  # URLError, refused connections, timeouts
                raise CheckpointDownloadError(
                    f'Cannot download checkpoint {filename}: {getattr(error, "reason", error)}. Without network '
                    f'access here, download it elsewhere and give the local file instead (or put it at '
                    f'{cached_file}).') from error
        with _mmengine_globals_only(filename, cached_file):
            return torch.hub.load_state_dict_from_url(
                filename, model_dir=osp.dirname(cached_file), map_location=map_location,
                progress=progress, weights_only=True)

    # As in mmengine: rank 0 downloads first, the others then read its copy.
    rank, world_size = get_dist_info()
    if rank == 0:
        checkpoint = download_and_load()
    if world_size > 1:
        torch.distributed.barrier()
        if rank > 0:
            checkpoint = download_and_load()
    return checkpoint


# OpenMMLab's model zoo names files after the first 8 hex digits of their SHA-256: ..._20210831-ea4938fc.pth.
_SHA256_SUFFIX = re.compile(r'-([0-9a-f]{8})\.pth$')


def sha256_prefix_in_name(path):
    """The SHA-256 prefix ``path``'s name ends in, or None. Eight decimal digits are taken for a date
    (``teacher-20240101.pth``), not a hash."""
    match = _SHA256_SUFFIX.search(osp.basename(path))
    return match.group(1) if match and not match.group(1).isdigit() else None


def _verified_files_record():
    cache_home = os.environ.get('XDG_CACHE_HOME') or osp.join(osp.expanduser('~'), '.cache')
    return osp.join(cache_home, 'mmdistkd', 'verified_checkpoints.json')


def verify_sha256_suffix(path):
    """Checks that the SHA-256 of the local file ``path`` starts with the prefix its name ends in (if any).

    A file that passed is recorded with its size and modification time (``~/.cache/mmdistkd/
    verified_checkpoints.json``), so it is hashed again only when it changes."""
    expected = sha256_prefix_in_name(path)
    if expected is None:
        return
    path = osp.realpath(path)
    stat = os.stat(path)
    version = [stat.st_size, stat.st_mtime_ns, expected]
    record_file = _verified_files_record()
    try:
        with open(record_file) as file:
            record = json.load(file)
    except (OSError, ValueError):
        record = {}
    if record.get(path) == version:
        return
    digest = hashlib.sha256()
    with open(path, 'rb') as file:
        for block in iter(lambda: file.read(1 << 20), b''):
            digest.update(block)
    actual = digest.hexdigest()[:len(expected)]
    if actual != expected:
        raise CheckpointHashError(
            f'Checkpoint {path} is damaged: its name says its SHA-256 starts with {expected}, its contents hash '
            f'to {actual}... Copy or download it again (if the name\'s suffix is not a hash, rename the file).')
    record[path] = version
    os.makedirs(osp.dirname(record_file), exist_ok=True)
    # Written whole and renamed: ranks that verify at the same time never read half a file.
    with tempfile.NamedTemporaryFile('w', dir=osp.dirname(record_file), delete=False, suffix='.json') as file:
        json.dump(record, file)
    os.replace(file.name, record_file)


def register_safe_checkpoint_loaders():
    """Route mmengine's local and http(s) checkpoint loading through here.

    Idempotent. The '' prefix is mmengine's fallback for plain paths.
    """
    CheckpointLoader.register_scheme('', load_from_local, force=True)
    CheckpointLoader.register_scheme(('http://', 'https://'), load_from_http,
                                     force=True)
    # torchvision://, open-mmlab:// and mmcls:// resolve a URL and then call
    # the module-level `load_from_http` of mmengine.runner.checkpoint.
    mmengine_checkpoint.load_from_http = load_from_http
