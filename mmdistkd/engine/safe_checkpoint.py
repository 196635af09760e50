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
duration of that one load.
"""
import contextlib
import os
import os.path as osp
import pickle
import re

import mmengine.runner.checkpoint as mmengine_checkpoint
import numpy as np
import torch
from mmengine.dist import get_dist_info
from mmengine.logging import HistoryBuffer
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


def _refuse(filename, error):
    message = str(error)
    offending_global = re.search(r'GLOBAL (\S+)', message)
    if offending_global:
        reason = f'global {offending_global.group(1)!r}'
    else:  # keep torch's reason, drop its advice around it
        reason = message.split('WeightsUnpickler error:')[-1]
        reason = reason.split('Check the documentation')[0].strip()
    return UntrustedCheckpointError(
        f'Refusing to load checkpoint {filename}: it holds pickled objects '
        f"outside mmdistkd's allow-list of what mmengine stores ({reason}). "
        'Loading stopped there; nothing in the file was executed. If you '
        'trust where the file comes from, re-save just its weights yourself, '
        "e.g. torch.save(torch.load(f, weights_only=False)['state_dict'], "
        "'weights.pth'), and load that file instead.")


@contextlib.contextmanager
def _mmengine_globals_only(source):
    """Allow the mmengine globals for one weights-only load; explain refusals.

    A context manager rather than ``add_safe_globals`` so the allow-list
    never outlives the load.
    """
    try:
        with torch.serialization.safe_globals(MMENGINE_CHECKPOINT_GLOBALS):
            yield
    except pickle.UnpicklingError as error:
        raise _refuse(source, error) from None


def safe_torch_load(file, map_location=None):
    """``torch.load(weights_only=True)`` allowing the mmengine globals."""
    with _mmengine_globals_only(file):
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


def load_from_http(filename, map_location=None, model_dir=None,
                   progress=os.isatty(0)):
    """Mirror of mmengine's ``load_from_http`` that loads weights only."""

    def download_and_load():
        with _mmengine_globals_only(filename):
            return torch.hub.load_state_dict_from_url(
                filename, model_dir=model_dir, map_location=map_location,
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
