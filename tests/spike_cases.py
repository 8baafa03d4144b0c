"""Shared helpers of the spike-for-spike tests against Brian2: on-grid inputs, comparable trains."""

from __future__ import annotations

import numpy as np
from scipy.stats import chisquare

from biolearn.backends.brian2 import spike_steps


def trains(spikes: dict, dt: float) -> dict:
    """``{pop: sorted [(step, neuron)]}`` of ``{pop: (times_ms, ids)}``."""
    return {k: sorted(zip(spike_steps(t, dt).tolist(), i.tolist(), strict=True))
            for k, (t, i) in spikes.items()}


def grid_source(rng: np.random.Generator, n: int, rate_hz: float, t_ms: float, dt: float
                ) -> tuple[np.ndarray, np.ndarray]:
    """On-grid random spike times (indices, times in ms), at most one spike per neuron and step."""
    idx, tim = [], []
    n_steps = int(t_ms / dt)
    for i in range(n):
        st = np.unique(rng.integers(0, n_steps, size=int(rate_hz * t_ms / 1000)))
        idx.append(np.full(len(st), i))
        tim.append(st * dt)
    return np.concatenate(idx), np.concatenate(tim)


def isi_fit_dead_time(steps: np.ndarray, ids: np.ndarray, q: float, R: int) -> int:
    """Inter-spike intervals (steps) of per-step Bernoulli(q) firing with a dead time of R
    steps: P(ISI = k) = q (1 − q)^(k − R) for k ≥ R (R = 1: no dead time). Returns the count."""
    isi = np.concatenate([np.diff(steps[ids == i]) for i in np.unique(ids)])
    assert isi.min() >= R and np.count_nonzero(isi == R) > 0
    k = np.arange(R, R + 30)
    p = q * (1 - q) ** (k - R)
    obs = np.bincount(isi - R, minlength=31)[:31].astype(float)
    obs[30] = len(isi) - obs[:30].sum()  # the tail, k ≥ R + 30
    exp = np.append(p, 1 - p.sum()) * len(isi)
    assert chisquare(obs, exp).pvalue > 1e-4
    return len(isi)
