"""Spike-train distances: van Rossum, Victor–Purpura and the coincidence factor Γ.

Single trains are 1-D arrays of spike times (ms, any order). Population versions take
``(times, ids)`` pairs (the engine's / SONATA's layout) and return one value per neuron.

- van Rossum (2001, Neural Comput 13:751): filter each train with ``exp(−t/τ)·H(t)`` and take
  ``D² = (1/τ) ∫ (f − g)² dt``. With the kernel integral ``(1/τ)∫ e^{−(t−a)/τ} e^{−(t−b)/τ} dt =
  ½ e^{−|a−b|/τ}`` this is the closed form ``D² = ½ [Σ_ff + Σ_gg − 2 Σ_fg]`` with
  ``Σ_fg = Σ_ij exp(−|f_i − g_j|/τ)``; each double sum is evaluated exactly in O(n + m) on sorted
  trains with a decaying running sum (Houghton & Kreuz 2012, Network 23:48), no time bins.
  One spike against none gives ``D = √½``; two single spikes Δ apart ``D² = 1 − e^{−|Δ|/τ}``.
  ``elephant.spike_train_dissimilarity.van_rossum_distance`` is normalised to 1 for one spike
  against none, i.e. it is ``√2·D`` (tests/test_elephant.py checks that to 1e-9).
- Victor–Purpura (1996, J Neurophysiol 76:1310): least cost to turn one train into the other with
  insertions/deletions (cost 1 each) and shifts (cost ``q·|Δt|``, q in 1/ms); dynamic programming
  in O(n·m). ``q → 0`` gives ``|n − m|``, ``q → ∞`` gives ``n + m`` (for trains without common
  spike times).
- Coincidence factor (Kistler, Gerstner & van Hemmen 1997, Neural Comput 9:1015, eq. 4.1):
  ``Γ = (N_coinc − ⟨N_coinc⟩) / (½ (N_ref + N_cmp)) / (1 − 2νΔ)`` with ``⟨N_coinc⟩ = 2νΔN_ref``
  the coincidences expected from a Poisson train of the comparison rate ``ν = N_cmp / T``.
  ``N_coinc`` counts reference spikes with at least one comparison spike within ±Δ.
  Γ = 1 for identical trains, ≈ 0 for independent ones.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from biolearn.analysis.spiketrains import to_csr


# ---------------------------------------------------------------------- van Rossum
@njit(cache=True)
def _exp_cross_sum(x: np.ndarray, y: np.ndarray, tau: float) -> float:
    """Σ_i Σ_j exp(−|x_i − y_j| / τ) for ascending x, y, in O(n + m)."""
    n, m = x.shape[0], y.shape[0]
    total = 0.0
    # pairs with y_j <= x_i: running sum of exp(-(last - y_j)/tau) over passed y
    acc, last, j = 0.0, 0.0, 0
    for i in range(n):
        while j < m and y[j] <= x[i]:
            acc = 1.0 if j == 0 else acc * math.exp(-(y[j] - last) / tau) + 1.0
            last = y[j]
            j += 1
        if j > 0:
            total += acc * math.exp(-(x[i] - last) / tau)
    # pairs with y_j > x_i, walking backwards
    acc, last, j = 0.0, 0.0, m - 1
    for i in range(n - 1, -1, -1):
        while j >= 0 and y[j] > x[i]:
            acc = 1.0 if j == m - 1 else acc * math.exp(-(last - y[j]) / tau) + 1.0
            last = y[j]
            j -= 1
        if j < m - 1:
            total += acc * math.exp(-(last - x[i]) / tau)
    return total


@njit(cache=True)
def _vr2(x: np.ndarray, y: np.ndarray, tau: float) -> float:
    d2 = 0.5 * (_exp_cross_sum(x, x, tau) + _exp_cross_sum(y, y, tau)
                - 2.0 * _exp_cross_sum(x, y, tau))
    return d2 if d2 > 0.0 else 0.0


@njit(cache=True)
def _vr2_population(pa, ta, pb, tb, tau):
    n = pa.shape[0] - 1
    out = np.zeros(n)
    for k in range(n):
        out[k] = _vr2(ta[pa[k]:pa[k + 1]], tb[pb[k]:pb[k + 1]], tau)
    return out


def van_rossum(x: np.ndarray, y: np.ndarray, tau: float) -> float:
    """van Rossum distance D between two spike trains (times in ms), kernel time constant τ (ms).

    Normalised as in van Rossum (2001): ``D² = (1/τ)∫(f − g)² dt``, so a lone extra spike adds ½
    to D²."""
    if tau <= 0:
        raise ValueError("tau must be > 0 ms")
    return float(np.sqrt(_vr2(np.sort(np.asarray(x, np.float64)),
                              np.sort(np.asarray(y, np.float64)), float(tau))))


def van_rossum_population(times_a: np.ndarray, ids_a: np.ndarray, times_b: np.ndarray,
                          ids_b: np.ndarray, n: int, tau: float) -> np.ndarray:
    """Per-neuron van Rossum distances D_k between populations a and b (same ids, n neurons)."""
    pa, ta = to_csr(times_a, ids_a, n)
    pb, tb = to_csr(times_b, ids_b, n)
    return np.sqrt(_vr2_population(pa, ta, pb, tb, float(tau)))


# ---------------------------------------------------------------------- Victor–Purpura
@njit(cache=True)
def _vp(x: np.ndarray, y: np.ndarray, q: float) -> float:
    n, m = x.shape[0], y.shape[0]
    prev = np.arange(m + 1).astype(np.float64)  # G[0, j] = j (insert j spikes)
    cur = np.empty(m + 1)
    for i in range(1, n + 1):
        cur[0] = i
        for j in range(1, m + 1):
            dt = abs(x[i - 1] - y[j - 1])
            if math.isinf(q):
                shift = 0.0 if dt == 0.0 else 2.0  # never cheaper than delete + insert
            else:
                shift = q * dt
            a = prev[j] + 1.0
            b = cur[j - 1] + 1.0
            c = prev[j - 1] + shift
            best = a if a < b else b
            cur[j] = c if c < best else best
        prev, cur = cur, prev
    return prev[m]


@njit(cache=True)
def _vp_population(pa, ta, pb, tb, q):
    n = pa.shape[0] - 1
    out = np.zeros(n)
    for k in range(n):
        out[k] = _vp(ta[pa[k]:pa[k + 1]], tb[pb[k]:pb[k + 1]], q)
    return out


def victor_purpura(x: np.ndarray, y: np.ndarray, q: float) -> float:
    """Victor–Purpura distance with shift cost ``q`` per ms (``q = inf`` allowed)."""
    if q < 0:
        raise ValueError("q must be >= 0 (1/ms)")
    return float(_vp(np.sort(np.asarray(x, np.float64)), np.sort(np.asarray(y, np.float64)),
                     float(q)))


def victor_purpura_population(times_a: np.ndarray, ids_a: np.ndarray, times_b: np.ndarray,
                              ids_b: np.ndarray, n: int, q: float) -> np.ndarray:
    """Per-neuron Victor–Purpura distances between populations a and b."""
    pa, ta = to_csr(times_a, ids_a, n)
    pb, tb = to_csr(times_b, ids_b, n)
    return _vp_population(pa, ta, pb, tb, float(q))


# ---------------------------------------------------------------------- coincidence factor
def n_coincidences(ref: np.ndarray, cmp: np.ndarray, delta: float) -> int:
    """Number of reference spikes with at least one comparison spike within ±Δ ms."""
    ref = np.asarray(ref, np.float64)
    cmp = np.sort(np.asarray(cmp, np.float64))
    if ref.size == 0 or cmp.size == 0:
        return 0
    lo = np.searchsorted(cmp, ref - delta, side="left")
    hi = np.searchsorted(cmp, ref + delta, side="right")
    return int(np.count_nonzero(hi > lo))


def coincidence_factor(ref: np.ndarray, cmp: np.ndarray, delta: float,
                       duration: float) -> float:
    """Kistler et al. (1997) coincidence factor Γ of ``cmp`` against ``ref`` (window ±Δ ms,
    recording length ``duration`` ms). NaN when both trains are empty."""
    n_ref, n_cmp = len(ref), len(cmp)
    if n_ref + n_cmp == 0:
        return float("nan")
    nu = n_cmp / duration
    norm = 1.0 - 2.0 * nu * delta
    if norm <= 0:
        raise ValueError("2·rate·Δ must be < 1: use a smaller coincidence window")
    expected = 2.0 * nu * delta * n_ref
    return float((n_coincidences(ref, cmp, delta) - expected) / (0.5 * (n_ref + n_cmp)) / norm)


def coincidence_factor_population(times_ref: np.ndarray, ids_ref: np.ndarray,
                                  times_cmp: np.ndarray, ids_cmp: np.ndarray, n: int,
                                  delta: float, duration: float) -> np.ndarray:
    """Per-neuron Γ (NaN for neurons silent in both populations)."""
    pa, ta = to_csr(times_ref, ids_ref, n)
    pb, tb = to_csr(times_cmp, ids_cmp, n)
    return np.array([coincidence_factor(ta[pa[k]:pa[k + 1]], tb[pb[k]:pb[k + 1]], delta,
                                        duration) for k in range(n)])
