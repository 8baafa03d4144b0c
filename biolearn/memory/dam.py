"""Dense associative memories (DAM): binary states, polynomial / rectified / exponential energies.

Energy (Krotov & Hopfield 2016, Eq. 1; Demircigil et al. 2017 for ``exp``)::

    E(σ) = − Σ_μ F(ξ^μ · σ),   F(x) = xⁿ ("poly"), max(x, 0)ⁿ ("rectpoly") or eˣ ("exp").

``n = 2`` with ``F = x²`` is the classical Hopfield network with Hebbian couplings
``J_ij = Σ_μ ξ_i^μ ξ_j^μ`` (zero diagonal). Asynchronous dynamics is the exact energy-descent
rule of Krotov & Hopfield 2016, Eq. 2::

    σ_i ← sign[ Σ_μ F(ξ_i^μ + Σ_{j≠i} ξ_j^μ σ_j) − F(−ξ_i^μ + Σ_{j≠i} ξ_j^μ σ_j) ],

i.e. σ_i takes the value of lower energy, so E never increases. Synchronous dynamics applies the
same rule to all units at once from the same state (it can enter 2-cycles).

Numerics: the kernels keep the overlaps ``m_μ = ξ^μ·σ`` and update them in O(K) on each flip. The
bracket above is evaluated after dividing by a positive per-update scale — ``F(x/s)`` with ``s``
the power of two ≥ max_μ(|a_μ| + |ξ_i^μ|) for the polynomials (homogeneous, so the sign is
unchanged; exact division keeps integer ties) and ``exp(x − max)`` (log-sum-exp style) for the
exponential — so nothing overflows even for n = 20 or N in the thousands. Energies are reported
*scaled*: ``E / F(s0)`` with ``s0 = max_μ ‖ξ^μ‖₁`` (poly) or ``−Σ_μ exp(m_μ − s0)`` (exp), a
positive rescaling that preserves every comparison.

Patterns may be real-valued (class means of the dense Hebbian constructions, see
:mod:`biolearn.memory.dam_hebbian`); the same kernels then perform the P-spin dynamics without ever
materialising the P-order coupling tensor.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from biolearn.errors import BiolearnError

KINDS = {"poly": 0, "rectpoly": 1, "exp": 2}


def _kind_code(kind: str) -> int:
    if kind not in KINDS:
        raise BiolearnError(f"unknown DAM energy '{kind}'", "argument 'kind'",
                            "choose one of: " + ", ".join(KINDS))
    return KINDS[kind]


# ----------------------------------------------------------------------------------------- kernels
@njit(cache=True, inline="always")
def _F(x: float, kind: int, n: int) -> float:
    if kind == 0:
        return x ** n
    if kind == 1:
        return x ** n if x > 0.0 else 0.0
    return math.exp(x)


@njit(cache=True)
def _flip_drive(xi: np.ndarray, m: np.ndarray, i: int, s_i: float, kind: int, n: int) -> float:
    """Σ_μ F(a_μ + ξ_i^μ) − F(a_μ − ξ_i^μ), a_μ = m_μ − ξ_i^μ σ_i, up to a positive factor.

    Krotov & Hopfield 2016, Eq. 2. Its sign is E(σ_i=−1) − E(σ_i=+1).
    """
    K = xi.shape[0]
    d = 0.0
    if kind == 2:
        top = -np.inf
        for mu in range(K):
            x = xi[mu, i]
            a = m[mu] - x * s_i
            v = a + abs(x)
            if v > top:
                top = v
        for mu in range(K):
            x = xi[mu, i]
            a = m[mu] - x * s_i
            d += math.exp(a + x - top) - math.exp(a - x - top)
        return d
    s = 0.0
    for mu in range(K):
        x = xi[mu, i]
        v = abs(m[mu] - x * s_i) + abs(x)
        if v > s:
            s = v
    if s == 0.0:
        return 0.0
    # a power of two: the division is exact, so integer-valued ties (e.g. n = 2, h_i = 0) stay ties
    inv = 1.0 / 2.0 ** math.ceil(math.log2(s))
    for mu in range(K):
        x = xi[mu, i]
        a = m[mu] - x * s_i
        d += _F((a + x) * inv, kind, n) - _F((a - x) * inv, kind, n)
    return d


@njit(cache=True)
def _scaled_energy(m: np.ndarray, kind: int, n: int, s0: float) -> float:
    e = 0.0
    if kind == 2:
        for mu in range(m.shape[0]):
            e -= math.exp(m[mu] - s0)
    else:
        inv = 1.0 / s0
        for mu in range(m.shape[0]):
            e -= _F(m[mu] * inv, kind, n)
    return e


@njit(cache=True)
def _overlaps(xi: np.ndarray, sigma: np.ndarray, m: np.ndarray) -> None:
    K, N = xi.shape
    for mu in range(K):
        acc = 0.0
        for j in range(N):
            acc += xi[mu, j] * sigma[j]
        m[mu] = acc


@njit(cache=True)
def _async_one(xi, sigma, kind, n, max_sweeps, seed, s0, energies):
    """Asynchronous recall of one state in place; random unit order per sweep (seeded).

    Returns the number of sweeps used (a sweep with no flip ends the run). If ``energies`` has
    length ≥ 1 + max_sweeps·N, the scaled energy before the run and after every single-unit update
    is written into it (unused entries stay NaN).
    """
    K, N = xi.shape
    m = np.empty(K)
    _overlaps(xi, sigma, m)
    track = energies.shape[0] > 0
    t = 0
    if track:
        energies[0] = _scaled_energy(m, kind, n, s0)
    np.random.seed(seed)
    order = np.arange(N)
    for sweep in range(max_sweeps):
        np.random.shuffle(order)
        flips = 0
        for k in range(N):
            i = order[k]
            s_i = sigma[i]
            d = _flip_drive(xi, m, i, s_i, kind, n)
            new = s_i
            if d > 0.0:
                new = 1.0
            elif d < 0.0:
                new = -1.0
            if new != s_i:
                sigma[i] = new
                for mu in range(K):
                    m[mu] += xi[mu, i] * (new - s_i)
                flips += 1
            t += 1
            if track:
                energies[t] = _scaled_energy(m, kind, n, s0)
        if flips == 0:
            return sweep + 1
    return max_sweeps


@njit(cache=True, parallel=True)
def _async_batch(xi, states, kind, n, max_sweeps, seed, s0, sweeps_out):
    dummy = np.empty(0)
    for c in prange(states.shape[0]):
        sweeps_out[c] = _async_one(xi, states[c], kind, n, max_sweeps, seed + c, s0, dummy)


@njit(cache=True)
def _sync_one(xi, sigma, kind, n, max_iter):
    """Synchronous recall: every unit from the same state. Stops at a fixed point or a 2-cycle.

    Returns the number of iterations (negative if it ended in a 2-cycle).
    """
    K, N = xi.shape
    m = np.empty(K)
    prev = sigma.copy()
    new = np.empty(N)
    for it in range(max_iter):
        _overlaps(xi, sigma, m)
        changed = False
        for i in range(N):
            d = _flip_drive(xi, m, i, sigma[i], kind, n)
            v = sigma[i]
            if d > 0.0:
                v = 1.0
            elif d < 0.0:
                v = -1.0
            new[i] = v
            if v != sigma[i]:
                changed = True
        if not changed:
            return it + 1
        cycle = it > 0
        for i in range(N):
            if new[i] != prev[i]:
                cycle = False
            prev[i] = sigma[i]
            sigma[i] = new[i]
        if cycle:
            return -(it + 1)
    return max_iter


@njit(cache=True, parallel=True)
def _sync_batch(xi, states, kind, n, max_iter, iters_out):
    for c in prange(states.shape[0]):
        iters_out[c] = _sync_one(xi, states[c], kind, n, max_iter)


# ------------------------------------------------------------------------------------ public API
def _as_patterns(patterns: np.ndarray) -> np.ndarray:
    xi = np.ascontiguousarray(np.asarray(patterns, dtype=np.float64))
    if xi.ndim != 2 or xi.shape[0] == 0:
        raise BiolearnError("patterns must be a non-empty 2-D array (K, N)",
                            f"got shape {np.shape(patterns)}", "pass one pattern per row")
    return xi


def _as_states(states: np.ndarray, N: int) -> tuple[np.ndarray, bool]:
    s = np.array(states, dtype=np.float64, copy=True)
    single = s.ndim == 1
    s = np.ascontiguousarray(np.atleast_2d(s))
    if s.shape[1] != N:
        raise BiolearnError("state length does not match the patterns",
                            f"got {s.shape[1]} units, patterns have {N}", "pass (B, N) ±1 states")
    s[s >= 0] = 1.0
    s[s < 0] = -1.0
    return s, single


def energy_scale(patterns: np.ndarray) -> float:
    """s0 = max_μ ‖ξ^μ‖₁, the largest overlap a state can reach; scaled energies are E / F(s0)."""
    return float(np.abs(_as_patterns(patterns)).sum(axis=1).max())


def energy(patterns: np.ndarray, sigma: np.ndarray, kind: str = "poly", n: int = 2,
           scaled: bool = True) -> float:
    """DAM energy E = −Σ_μ F(ξ^μ·σ) (Krotov & Hopfield 2016, Eq. 1); scaled by 1/F(s0) by default.

    With ``kind='exp'`` the unscaled value overflows for N ≳ 700; use ``scaled=True`` there.
    """
    xi = _as_patterns(patterns)
    code = _kind_code(kind)
    m = xi @ np.asarray(sigma, dtype=np.float64)
    if scaled:
        return float(_scaled_energy(m, code, n, energy_scale(xi)))
    return float(-sum(_F(float(v), code, n) for v in m))


def recall_async(patterns: np.ndarray, cues: np.ndarray, kind: str = "poly", n: int = 2,
                 max_sweeps: int = 50, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Asynchronous recall (Krotov & Hopfield 2016, Eq. 2) of one cue (N,) or a batch (B, N).

    Units are visited in a fresh random order each sweep (seeded by ``seed`` + cue index) until a
    sweep makes no flip. Returns (final ±1 states, sweeps used per cue).
    """
    xi = _as_patterns(patterns)
    states, single = _as_states(cues, xi.shape[1])
    sweeps = np.zeros(states.shape[0], dtype=np.int64)
    _async_batch(xi, states, _kind_code(kind), int(n), int(max_sweeps), int(seed),
                 energy_scale(xi), sweeps)
    return (states[0], sweeps[:1]) if single else (states, sweeps)


def recall_sync(patterns: np.ndarray, cues: np.ndarray, kind: str = "poly", n: int = 2,
                max_iter: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Synchronous recall: all units updated at once by the rule of Eq. 2 from the same state.

    Returns (final states, iterations per cue; negative when the run ended in a 2-cycle).
    """
    xi = _as_patterns(patterns)
    states, single = _as_states(cues, xi.shape[1])
    iters = np.zeros(states.shape[0], dtype=np.int64)
    _sync_batch(xi, states, _kind_code(kind), int(n), int(max_iter), iters)
    return (states[0], iters[:1]) if single else (states, iters)


def energy_trace(patterns: np.ndarray, cue: np.ndarray, kind: str = "poly", n: int = 2,
                 max_sweeps: int = 20, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Asynchronous recall of one cue recording the scaled energy after every single-unit update.

    Returns (final state, energies) with ``energies[0]`` the energy of the cue.
    """
    xi = _as_patterns(patterns)
    states, _ = _as_states(np.ravel(cue), xi.shape[1])
    N = xi.shape[1]
    e = np.full(1 + max_sweeps * N, np.nan)
    used = _async_one(xi, states[0], _kind_code(kind), int(n), int(max_sweeps), int(seed),
                      energy_scale(xi), e)
    return states[0], e[: 1 + used * N]


def hopfield_couplings(patterns: np.ndarray) -> np.ndarray:
    """Classical Hebbian couplings J = Σ_μ ξ^μ ξ^μᵀ with zero diagonal (Hopfield 1982).

    The DAM with F = x² is exactly this network: its Eq. 2 drive is 4 ξ_i^μ a_μ = 4 (Jσ)_i.
    """
    xi = _as_patterns(patterns)
    J = xi.T @ xi
    np.fill_diagonal(J, 0.0)
    return J


def random_patterns(K: int, N: int, rng: np.random.Generator) -> np.ndarray:
    """K i.i.d. unbiased ±1 patterns of N units, shape (K, N) float64."""
    return rng.choice(np.array([-1.0, 1.0]), size=(K, N))


def flip_bits(states: np.ndarray, n_flip: int, rng: np.random.Generator) -> np.ndarray:
    """Copy of ``states`` (B, N) with exactly ``n_flip`` distinct random units flipped per row."""
    out = np.array(states, dtype=np.float64, copy=True)
    out2 = np.atleast_2d(out)
    B, N = out2.shape
    if n_flip > 0:
        idx = np.argsort(rng.random((B, N)), axis=1)[:, :n_flip]
        rows = np.repeat(np.arange(B), n_flip)
        out2[rows, idx.ravel()] *= -1.0
    return out


# -------------------------------------------------------------------------------------- capacity
def double_factorial(k: int) -> int:
    """k!! for odd k ≥ −1 ((−1)!! = 1)."""
    r = 1
    while k > 1:
        r *= k
        k -= 2
    return r


def capacity_theory(N: float | np.ndarray, n: int) -> np.ndarray:
    """K_max ≈ N^{n−1} / (2 (2n−3)!! ln N), Krotov & Hopfield 2016 (Eq. 6, no-error capacity)."""
    N = np.asarray(N, dtype=np.float64)
    return N ** (n - 1) / (2.0 * double_factorial(2 * n - 3) * np.log(N))


def capacity_theory_exp(N: float | np.ndarray, noise: float = 0.0) -> np.ndarray:
    """exp(α N) with α = I(1 − 2ρ)/2, I(x) = ½[(1+x)ln(1+x) + (1−x)ln(1−x)].

    Demircigil et al. 2017 (Theorem for F = eˣ): K = exp(αN) patterns are retrieved from cues with
    a fraction ρ of flipped bits for α below this bound; ρ = 0 gives 2^{N/2}.
    """
    x = 1.0 - 2.0 * noise
    ent = 0.5 * ((1 + x) * np.log1p(x) + ((1 - x) * np.log(1 - x) if x < 1 else 0.0))
    return np.exp(0.5 * ent * np.asarray(N, dtype=np.float64))


def recall_success(N: int, K: int, kind: str, n: int, noise: float, n_probes: int,
                   rng: np.random.Generator, max_sweeps: int = 20) -> float:
    """Fraction of probed stored patterns recalled exactly (async) from cues with ⌊noise·N⌉ flips.

    Fresh random pattern sets are drawn until ``n_probes`` patterns have been probed.
    """
    done, ok = 0, 0
    n_flip = int(round(noise * N))
    while done < n_probes:
        xi = random_patterns(K, N, rng)
        take = min(K, n_probes - done)
        probe = rng.choice(K, size=take, replace=False)
        cues = flip_bits(xi[probe], n_flip, rng)
        out, _ = recall_async(xi, cues, kind, n, max_sweeps, int(rng.integers(2**31)))
        ok += int(np.all(out == xi[probe], axis=1).sum())
        done += take
    return ok / done


def measure_capacity(N: int, kind: str = "poly", n: int = 2, noise: float = 0.05,
                     n_probes: int = 64, success: float = 0.5,
                     rng: np.random.Generator | None = None,
                     k_max: int | None = None, rel_tol: float = 0.05) -> int:
    """Largest K whose stored patterns are recalled error-free with probability ≥ ``success``.

    Doubling then bisection on K; each evaluation is :func:`recall_success` on fresh patterns.
    The success probability falls steeply with K, so the result is the crossing point up to
    sampling noise.
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    if k_max is None:
        k_max = 2 ** min(N - 2, 24) if kind == "exp" else 10**7

    def good(K: int) -> bool:
        return recall_success(N, K, kind, n, noise, n_probes, rng) >= success

    if not good(1):
        return 0
    lo, hi = 1, 2
    while hi <= k_max and good(hi):
        lo, hi = hi, hi * 2
    hi = min(hi, k_max + 1)
    while hi - lo > max(1, int(rel_tol * lo)):
        mid = (lo + hi) // 2
        if good(mid):
            lo = mid
        else:
            hi = mid
    return lo
