"""Encoders from images to input spikes, and small image helpers.

Units: rates in Hz, time steps and durations in ms, spike probabilities per step dimensionless.

- Diehl & Cook (2015): each pixel drives a Poisson input at ``pixel / 4`` Hz, i.e. at most
  255 / 4 = 63.75 Hz (:data:`DIEHL_COOK_MAX_RATE_HZ`); the intensity is raised (+32 Hz max per step)
  when the network stays silent.
- Hao et al. (2020): ``pixel / 8 × intensity`` Hz, i.e. 31.875 Hz × intensity
  (:data:`HAO_MAX_RATE_HZ`), intensity starting at 2.

In discrete time a Poisson process of rate ``r`` is sampled as one Bernoulli draw per step with
``p = r · dt / 1000`` (``dt`` in ms), which keeps the mean count ``r · T`` exact; the number of
spikes per step is capped at one, so ``p`` must stay ≤ 1.
"""

from __future__ import annotations

import numba
import numpy as np

DIEHL_COOK_MAX_RATE_HZ = 255.0 / 4.0  #: Diehl & Cook 2015: rate = pixel / 4 Hz
HAO_MAX_RATE_HZ = 255.0 / 8.0  #: Hao et al. 2020: rate = pixel / 8 × intensity Hz

RngLike = np.random.Generator | int | None


def _rng(rng: RngLike) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def to_float(images: np.ndarray, dtype: type = np.float32, signed: bool = False) -> np.ndarray:
    """uint8 pixels (0..255) → floats in [0, 1], or in [−1, 1] with ``signed`` (2x/255 − 1, the
    scaling of Krotov & Hopfield 2016). Float input is taken to be in [0, 1] already."""
    x = np.asarray(images)
    if x.dtype == np.uint8:
        out = x.astype(dtype) / dtype(255.0)
    elif np.issubdtype(x.dtype, np.floating):
        out = x.astype(dtype, copy=True)
    else:
        raise ValueError(f"expected uint8 or float images, got {x.dtype}")
    return out * dtype(2.0) - dtype(1.0) if signed else out


def crop(images: np.ndarray, size: int | tuple[int, int] = 20) -> np.ndarray:
    """Center-crop the last two axes to ``size`` (NeuroSim, Chen et al. 2018, uses 20×20 MNIST).

    With an odd margin the extra row/column is removed at the bottom/right.
    """
    x = np.asarray(images)
    h, w = (size, size) if isinstance(size, (int, np.integer)) else size
    H, W = x.shape[-2:]
    if not (0 < h <= H and 0 < w <= W):
        raise ValueError(f"cannot crop {H}x{W} images to {h}x{w}")
    top, left = (H - h) // 2, (W - w) // 2
    return x[..., top:top + h, left:left + w]


def scale_to_mean(images: np.ndarray, mean: float) -> np.ndarray:
    """Scale each uint8 image so that its mean pixel is ``mean``, rounding half away from zero and
    saturating at 255 (Hao et al. 2020 preprocess Fashion-MNIST this way to a mean of 30: their
    ``data/normalization/create_normalized_mnist.m``). Saturation leaves bright images' means a
    little below ``mean``; an all-zero image stays zero."""
    x = np.asarray(images)
    if x.dtype != np.uint8:
        raise ValueError(f"expected uint8 images, got {x.dtype}")
    if mean <= 0:
        raise ValueError(f"mean must be > 0, got {mean}")
    flat = x.reshape(len(x), -1).astype(np.float64)
    m = flat.mean(axis=1, keepdims=True)
    gain = np.divide(mean, m, out=np.zeros_like(m), where=m > 0)
    return np.minimum(np.floor(flat * gain + 0.5), 255.0).astype(np.uint8).reshape(x.shape)


def poisson_rates(images: np.ndarray, max_rate_hz: float = DIEHL_COOK_MAX_RATE_HZ,
                  intensity: float = 1.0) -> np.ndarray:
    """Firing rate in Hz per pixel: ``pixel / 255 · max_rate_hz · intensity`` (same shape, float64).

    ``max_rate_hz`` = 63.75 gives Diehl & Cook's pixel/4 Hz; 31.875 with ``intensity`` = 2, 3, …
    gives Hao et al.'s pixel/8 × intensity Hz. uint8 pixels are 0..255; float pixels must be in
    [0, 1] (as from :func:`to_float`).
    """
    x = np.asarray(images)
    if x.dtype == np.uint8:
        frac = x.astype(np.float64) / 255.0
    elif np.issubdtype(x.dtype, np.floating):
        if x.size and (x.min() < 0.0 or x.max() > 1.0):
            raise ValueError("float images must lie in [0, 1]; pass uint8 pixels or use to_float")
        frac = x.astype(np.float64)
    else:
        raise ValueError(f"expected uint8 or float images, got {x.dtype}")
    if max_rate_hz < 0 or intensity < 0:
        raise ValueError("max_rate_hz and intensity must be non-negative")
    return frac * (float(max_rate_hz) * float(intensity))


def spike_probability(rates_hz: np.ndarray, dt_ms: float) -> np.ndarray:
    """Per-step spike probability ``p = rate[Hz] · dt[ms] / 1000``; raises if any ``p`` > 1."""
    if dt_ms <= 0:
        raise ValueError(f"dt_ms must be positive, got {dt_ms}")
    p = np.asarray(rates_hz, dtype=np.float64) * (dt_ms / 1000.0)
    if p.size and (p.min() < 0.0 or p.max() > 1.0):
        raise ValueError(f"rate · dt must lie in [0, 1000] Hz·ms (max rate {1000.0 / dt_ms:g} Hz "
                         f"at dt = {dt_ms} ms), got rates up to {np.max(rates_hz):g} Hz")
    return p


def poisson_spikes(rates_hz: np.ndarray, n_steps: int, dt_ms: float, rng: RngLike = None
                   ) -> np.ndarray:
    """Bernoulli-per-step Poisson spike trains: boolean ``[n_steps, *rates_hz.shape]``.

    Step ``t`` covers ``[t·dt, (t+1)·dt)`` ms; ``rng`` is a NumPy Generator or a seed, so the same
    seed gives the same spikes. Expected count per input is ``rate · n_steps · dt / 1000``.
    """
    p = spike_probability(rates_hz, dt_ms)
    return _rng(rng).random((int(n_steps),) + p.shape) < p


def poisson_events(rates_hz: np.ndarray, duration_ms: float, rng: RngLike = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Exact homogeneous Poisson spike times over ``[0, duration_ms)``, as event lists.

    Returns ``(times_ms, indices)`` sorted by time (float64 ms, int64 input index into the flattened
    ``rates_hz``). Counts are Poisson(rate · T / 1000) and times uniform given the count.
    """
    r = np.asarray(rates_hz, dtype=np.float64).reshape(-1)
    if r.size and r.min() < 0:
        raise ValueError("rates must be non-negative")
    g = _rng(rng)
    counts = g.poisson(r * (duration_ms / 1000.0))
    idx = np.repeat(np.arange(r.size, dtype=np.int64), counts)
    times = g.random(idx.size) * duration_ms
    order = np.argsort(times, kind="stable")
    return times[order], idx[order]


# ------------------------------------------------------- explicit-state generator for njit kernels
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def kernel_rng_state(rng: RngLike = None) -> np.ndarray:
    """A uint64[1] state for :func:`uniform01` / :func:`poisson_step`, drawn from ``rng``."""
    return np.array([_rng(rng).integers(0, 2**64 - 1, dtype=np.uint64, endpoint=True)],
                    dtype=np.uint64)


@numba.njit(cache=True, inline="always")
def uniform01(state: np.ndarray) -> float:
    """Next uniform in [0, 1) from the SplitMix64 generator (Steele et al. 2014) in ``state[0]``."""
    state[0] += _GOLDEN
    z = state[0]
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@numba.njit(cache=True)
def poisson_step(p_spike: np.ndarray, state: np.ndarray, out: np.ndarray) -> int:
    """One time step of Poisson input inside a kernel: ``out[i] = U_i < p_spike[i]``.

    ``p_spike`` from :func:`spike_probability`, ``state`` from :func:`kernel_rng_state` (advanced in
    place, so a kernel is a pure function of its inputs and the seed). Returns the spike count.
    """
    n = 0
    for i in range(p_spike.size):
        s = uniform01(state) < p_spike[i]
        out[i] = s
        n += s
    return n
