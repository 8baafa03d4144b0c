"""Allocator settings and peak memory of long runs.

PyTorch and NumPy allocate their large temporaries (tens of MB per batch in the DAM classifier,
the optical models and the bridge baselines) with ``malloc``. Above glibc's mmap threshold each
one is a fresh ``mmap`` whose pages the kernel must fault in and zero, and each ``free`` hands
them back. In the K = 2000 DAM classifier that page-fault work costs more system time than the
arithmetic itself (0.43 s sys vs 0.30 s user per batch). :func:`keep_freed_memory` raises the
mmap and trim thresholds so freed blocks stay in the heap and are reused: the same effect as
``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` in the environment (glibc ``mallopt(3)``).

The cost: memory a run frees is kept by the process until it exits (peak RSS is unchanged).
``biolearn run`` and ``biolearn compare`` call it once at start; library users may call it.

:func:`peak_rss_mb` reports a run's peak resident memory. A process that runs several runs (a
sweep's Dask worker, a notebook) starts each run's peak afresh with :func:`reset_peak_rss`
(``execute`` does); ``getrusage`` alone would give every run the peak of the process's life.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 1 << 30
"""Blocks up to 1 GiB come from the heap (glibc's default moves between 128 KiB and 32 MiB)."""
TRIM_THRESHOLD = (1 << 31) - 1
"""Free heap top kept before it is returned to the kernel (the mallopt argument is an int)."""

_done: bool | None = None


def keep_freed_memory() -> bool:
    """Keep freed large blocks for reuse (glibc only). True if the setting took effect.

    Idempotent; a no-op returning False on other C libraries (macOS, musl, Windows).
    """
    global _done
    if _done is not None:
        return _done
    _done = False
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    _done = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _done


def reset_peak_rss() -> bool:
    """Start this process's peak resident memory again from its present size (Linux: ``5`` into
    ``/proc/self/clear_refs`` resets ``VmHWM``, proc(5)). False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB: ``VmHWM`` of ``/proc/self/status`` (since the
    last :func:`reset_peak_rss`), else ``ru_maxrss`` (since the process started)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0  # kB
    except (OSError, ValueError, IndexError):
        pass
    import resource

    scale = 1024.0 * 1024.0 if sys.platform == "darwin" else 1024.0  # bytes there, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale
