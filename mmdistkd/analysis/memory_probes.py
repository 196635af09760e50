"""Peak memory of a phase of work, above what was in use when it started: the CUDA allocator's peak, or on the
host glibc's malloc'd bytes and the RSS sampled at about 1 kHz by a background thread (why and how:
``tools/analysis/benchmark.py``'s docstring)."""
import ctypes
import ctypes.util
import gc
import os
import threading

import torch

MEMORY_MEASURES = dict(
    cuda='peak_mem_mb: torch.cuda.max_memory_allocated above memory_allocated at the phase start',
    glibc='peak_mem_mb: malloc bytes in use (glibc mallinfo2), peak_rss_mb: RSS; both sampled at ~1 kHz, above '
    'their values at the phase start after gc + malloc_trim, blocks >= 64 KiB mmapped one by one',
    rss='peak_mem_mb = peak_rss_mb: RSS sampled at ~1 kHz above the RSS at the phase start after gc')


class MallInfo2(ctypes.Structure):
    """glibc's ``struct mallinfo2`` (glibc >= 2.33)."""
    _fields_ = [(name, ctypes.c_size_t) for name in (
        'arena', 'ordblks', 'smblks', 'hblks', 'hblkhd', 'usmblks', 'fsmblks', 'uordblks', 'fordblks', 'keepcost')]


def load_glibc():
    """glibc through ctypes, or None elsewhere (musl, macOS): then only RSS is sampled."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library('c'))
    except OSError:
        return None
    if not all(hasattr(libc, name) for name in ('malloc_trim', 'mallopt', 'mallinfo2')):
        return None
    libc.mallinfo2.restype = MallInfo2
    return libc


LIBC = load_glibc()
# glibc's mallopt parameters, their default values, and the block size from which the memory rounds map
# blocks one by one.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
GLIBC_DEFAULT_THRESHOLD = 128 * 1024
MAP_EACH_BLOCK_FROM_BYTES = 64 * 1024


def release_freed_memory():
    """Returns freed heap memory to the OS (glibc keeps it otherwise, so RSS would not fall between phases)."""
    gc.collect()
    if LIBC is not None:
        LIBC.malloc_trim(0)


class HostMemoryPeak:
    """Peaks during a phase, above their values at its start, sampled by a background thread at about 1 kHz:
    ``peak_mem_mb`` the bytes malloc has handed out and not yet taken back (glibc's ``mallinfo2``: heap
    blocks in use plus mmapped blocks; torch's CPU tensors are malloc'd), ``peak_rss_mb`` the resident set
    size. Without glibc, ``peak_mem_mb`` is the RSS."""

    def __init__(self, interval_s=1e-3):
        # Large blocks mmapped one by one and unmapped on free, the heap top trimmed: RSS tracks use.
        self._set_malloc_thresholds(MAP_EACH_BLOCK_FROM_BYTES)
        self._statm = os.open('/proc/self/statm', os.O_RDONLY)
        self._page_size = os.sysconf('SC_PAGE_SIZE')
        self._interval_s = interval_s
        self._peaks = self._baselines = self.read()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def read(self):
        # statm's second field: resident pages. pread re-reads the same open file cheaply.
        rss = int(os.pread(self._statm, 128, 0).split()[1]) * self._page_size
        if LIBC is None:
            return dict(peak_mem_mb=rss, peak_rss_mb=rss)
        info = LIBC.mallinfo2()
        return dict(peak_mem_mb=info.uordblks + info.hblkhd, peak_rss_mb=rss)

    def _sample(self):
        while not self._stop.wait(self._interval_s):
            now = self.read()
            self._peaks = {key: max(value, now[key]) for key, value in self._peaks.items()}

    def begin(self):
        release_freed_memory()
        self._peaks = self._baselines = self.read()

    def end(self):
        now = self.read()
        return {key: max(peak, now[key]) - self._baselines[key] for key, peak in self._peaks.items()}

    def close(self):
        self._stop.set()
        self._thread.join()
        os.close(self._statm)
        # Back to glibc's default values (its dynamic mmap threshold stays off once a threshold was set).
        self._set_malloc_thresholds(GLIBC_DEFAULT_THRESHOLD)

    @staticmethod
    def _set_malloc_thresholds(num_bytes):
        if LIBC is not None:
            LIBC.mallopt(M_MMAP_THRESHOLD, num_bytes)
            LIBC.mallopt(M_TRIM_THRESHOLD, num_bytes)


class CudaMemoryPeak:
    """``peak_mem_mb``: the CUDA caching allocator's peak of allocated bytes during a phase, above the
    allocated bytes at its start."""

    def begin(self):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        self._baseline = torch.cuda.memory_allocated()

    def end(self):
        torch.cuda.synchronize()
        return dict(peak_mem_mb=torch.cuda.max_memory_allocated() - self._baseline)

    def close(self):
        pass
