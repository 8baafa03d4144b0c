"""Inter-spike intervals, firing rates, CV of the ISI and the Kolmogorov–Smirnov ISI distance.

Spikes are ``(times_ms, ids)`` pairs as returned by the engine or
:func:`biolearn.io.sonata.read_spikes`. A homogeneous Poisson process has exponential ISIs and
``CV = std/mean = 1``; a regular train has ``CV = 0``.
"""

from __future__ import annotations

import numpy as np

from biolearn.analysis.spiketrains import to_csr


def isis(times: np.ndarray, ids: np.ndarray, n: int | None = None
         ) -> tuple[np.ndarray, np.ndarray]:
    """All within-neuron ISIs (ms) and the neuron each belongs to: ``(isi, owner)``."""
    ptr, t = to_csr(times, ids, n)
    owner = np.repeat(np.arange(len(ptr) - 1), np.diff(ptr))
    same = owner[1:] == owner[:-1]
    return np.diff(t)[same], owner[1:][same]


def firing_rates(times: np.ndarray, ids: np.ndarray, n: int, duration_ms: float) -> np.ndarray:
    """Mean rate of each neuron (Hz) over a recording of ``duration_ms``."""
    ids = np.asarray(ids).astype(np.int64, copy=False)
    return np.bincount(ids, minlength=n)[:n] / (duration_ms / 1000.0)


def cv_isi(times: np.ndarray, ids: np.ndarray, n: int, min_isis: int = 2) -> np.ndarray:
    """Coefficient of variation of each neuron's ISIs (NaN with fewer than ``min_isis``).

    ``CV = std/mean`` with the population standard deviation (ddof 0), as
    ``elephant.statistics.cv`` (``scipy.stats.variation``). The variance is taken about the mean
    in a second pass: ``E[d²] − E[d]²`` loses ~9 digits on regular trains (CV ≈ 1e-3)."""
    d, owner = isis(times, ids, n)
    cnt = np.bincount(owner, minlength=n).astype(float)
    s1 = np.bincount(owner, weights=d, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s1 / cnt
        dev = d - mean[owner]
        var = np.bincount(owner, weights=dev * dev, minlength=n) / cnt
        cv = np.sqrt(var) / mean
    cv[cnt < max(min_isis, 1)] = np.nan
    return cv


def ks_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample Kolmogorov–Smirnov statistic ``sup_x |F_a(x) − F_b(x)|`` (1 if one is empty)."""
    a = np.sort(np.asarray(a, np.float64))
    b = np.sort(np.asarray(b, np.float64))
    if a.size == 0 or b.size == 0:
        return 0.0 if a.size == b.size else 1.0
    x = np.concatenate([a, b])
    fa = np.searchsorted(a, x, side="right") / a.size
    fb = np.searchsorted(b, x, side="right") / b.size
    return float(np.max(np.abs(fa - fb)))


def isi_distance(times_a: np.ndarray, ids_a: np.ndarray, times_b: np.ndarray,
                 ids_b: np.ndarray, n: int, per_neuron: bool = False) -> float | np.ndarray:
    """KS distance between the ISI distributions of populations a and b.

    Pooled over neurons by default; ``per_neuron=True`` gives one KS value per neuron."""
    da, oa = isis(times_a, ids_a, n)
    db, ob = isis(times_b, ids_b, n)
    if not per_neuron:
        return ks_distance(da, db)
    return np.array([ks_distance(da[oa == k], db[ob == k]) for k in range(n)])


def isi_histogram(times: np.ndarray, ids: np.ndarray, n: int | None = None,
                  bins: np.ndarray | int = 50, max_ms: float | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Density histogram of the pooled ISIs: ``(density, edges)``."""
    d, _ = isis(times, ids, n)
    rng = (0.0, max_ms if max_ms is not None else (float(d.max()) if d.size else 1.0))
    return np.histogram(d, bins=bins, range=rng, density=d.size > 0)
