"""Spike trains as flat arrays: (times_ms, ids) pairs ↔ per-neuron CSR layout, and SONATA input.

Every analysis function in :mod:`biolearn.analysis` takes spikes the way the engine and
:func:`biolearn.io.sonata.read_spikes` return them: two equal-length arrays ``times`` (ms) and
``ids`` (local neuron indices, any integer type). :func:`to_csr` groups them per neuron,
time-sorted: neuron ``k``'s train is ``t[ptr[k]:ptr[k + 1]]``.
"""

from __future__ import annotations

import os

import numpy as np

from biolearn.errors import BiolearnError


def to_csr(times: np.ndarray, ids: np.ndarray, n: int | None = None
           ) -> tuple[np.ndarray, np.ndarray]:
    """Group spikes per neuron: returns ``(ptr [n+1] int64, t float64)`` sorted by (id, time).

    ``n`` defaults to ``max(ids) + 1``; ids outside ``[0, n)`` raise a :class:`BiolearnError`."""
    t = np.asarray(times, np.float64).ravel()
    i = np.asarray(ids).astype(np.int64, copy=False).ravel()
    if t.shape != i.shape:
        raise BiolearnError("times and ids differ in length", "in spike-train analysis",
                            "give one neuron id per spike time")
    if n is None:
        n = int(i.max()) + 1 if i.size else 0
    if i.size and (i.min() < 0 or i.max() >= n):
        raise BiolearnError(f"neuron id out of range [0, {n})", "in spike-train analysis",
                            "pass the population size n that the ids refer to")
    order = np.lexsort((t, i))
    counts = np.bincount(i, minlength=n)
    ptr = np.zeros(n + 1, np.int64)
    np.cumsum(counts, out=ptr[1:])
    return ptr, t[order]


def trains(times: np.ndarray, ids: np.ndarray, n: int | None = None) -> list[np.ndarray]:
    """List of sorted per-neuron spike-time arrays (ms)."""
    ptr, t = to_csr(times, ids, n)
    return [t[ptr[k]:ptr[k + 1]] for k in range(len(ptr) - 1)]


def to_neo(times: np.ndarray, ids: np.ndarray, n: int | None = None, t_stop: float | None = None,
           t_start: float = 0.0) -> list:
    """Per-neuron :class:`neo.SpikeTrain` objects (ms), the input Elephant's functions take.

    ``t_stop`` (ms) defaults to the last spike; needs neo (``pip install 'biolearn[interop]'``,
    which brings it with elephant)."""
    try:
        import neo
    except ImportError as e:
        from biolearn.errors import missing_extra

        raise missing_extra("neo", "interop") from e
    per = trains(times, ids, n)
    if t_stop is None:
        t_stop = max((float(t[-1]) for t in per if t.size), default=t_start)
    return [neo.SpikeTrain(t, units="ms", t_start=t_start, t_stop=t_stop) for t in per]


def read_sonata(path: str | os.PathLike, population: str
                ) -> tuple[np.ndarray, np.ndarray]:
    """``(times_ms, ids int64)`` of one population of a SONATA spike file."""
    from biolearn.io.sonata import read_spikes

    t, ids = read_spikes(path, population)[population]
    return t, ids.astype(np.int64)
