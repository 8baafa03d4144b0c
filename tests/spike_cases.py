"""Shared helpers of the spike-for-spike tests against Brian2: on-grid inputs, comparable trains."""

from __future__ import annotations

import numpy as np

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
