"""Dendritic segments as sparse-pattern detectors (Ahmad & Hawkins 2016, arXiv 1601.00720).

A population of ``n`` cells carries a sparse distributed representation (SDR) with ``a`` active
cells. A dendritic segment holds ``s`` synapses onto cells of one stored pattern and fires an NMDA
spike when at least ``theta`` of them are active. The probability that a *random* SDR crosses the
threshold (a false match) is, Ahmad & Hawkins 2016 eq. 3,

    P_fp = sum_{b=theta}^{s} C(s, b) C(n - s, a - b) / C(n, a),

computed here exactly with Python integers (``fractions.Fraction``) and converted to float at the
end. A segment storing the union of ``M`` patterns (s synapses each, placed at random among the
``n`` cells) has on average ``s' = n (1 - (1 - s/n)^M)`` distinct synapses (their section on
unions). Noise robustness: removing a fraction of a pattern's active bits lowers the chance that
its own segment still matches; adding active bits raises the chance that an unrelated segment
matches (both closed forms below). Monte-Carlo estimators draw explicit random SDRs in
``numba`` kernels, independently of the closed forms, so the two can be compared.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from math import comb

import numba
import numpy as np

from biolearn.errors import BiolearnError

__all__ = [
    "MCEstimate",
    "false_match_fraction",
    "false_match_probability",
    "false_match_mc",
    "union_effective_synapses",
    "union_size_distribution",
    "union_size_mc",
    "union_false_match_probability",
    "union_false_match_mc",
    "match_prob_after_removal",
    "match_prob_after_removal_mc",
    "false_match_after_addition",
    "false_match_after_addition_mc",
]


def _check(n: int, a: int, s: int, theta: int) -> None:
    for name, v in (("n", n), ("a", a), ("s", s), ("theta", theta)):
        if int(v) != v or v < 0:
            raise BiolearnError(f"{name}={v} must be a non-negative integer", "dendrite segment",
                                "pass whole numbers")
    if a > n or s > n:
        raise BiolearnError(f"need a <= n and s <= n (got n={n}, a={a}, s={s})",
                            "dendrite segment", "choose fewer active cells or synapses")


# ----------------------------------------------------------------------------- closed forms
def false_match_fraction(n: int, a: int, s: int, theta: int) -> Fraction:
    """Exact P_fp as a Fraction (Ahmad & Hawkins 2016, eq. 3); integer arithmetic throughout."""
    _check(n, a, s, theta)
    num = sum(comb(s, b) * comb(n - s, a - b) for b in range(max(theta, 0), min(s, a) + 1))
    return Fraction(num, comb(n, a))


def false_match_probability(n: int, a: int, s: int, theta: int) -> float:
    """P_fp of a segment (s synapses, threshold theta) for a random SDR (n cells, a active).

    Exact rational evaluation of Ahmad & Hawkins 2016 eq. 3, converted to float only at the end,
    so values like 1e-20 keep full relative precision.
    """
    return float(false_match_fraction(n, a, s, theta))


def match_prob_after_removal(a: int, s: int, theta: int, n_removed: int) -> float:
    """P(segment still matches its own pattern) after ``n_removed`` of the ``a`` active bits drop.

    The segment's s synapses sit on s of the pattern's a cells; the a - n_removed surviving bits are
    a uniform subset, so the surviving synapse count is hypergeometric (Ahmad & Hawkins 2016,
    section on robustness to noise): sum_{b>=theta} C(s,b) C(a-s, a-r-b) / C(a, a-r).
    """
    _check(a, a - n_removed, s, theta)
    keep = a - n_removed
    num = sum(comb(s, b) * comb(a - s, keep - b) for b in range(theta, min(s, keep) + 1))
    return float(Fraction(num, comb(a, keep)))


def false_match_after_addition(n: int, a: int, s: int, theta: int, n_added: int) -> float:
    """P_fp of an unrelated segment when a pattern carries ``n_added`` extra active bits.

    Random active bits added to a random SDR give a random SDR with a + n_added bits, so this is
    eq. 3 with a -> a + n_added.
    """
    return false_match_probability(n, a + n_added, s, theta)


def union_effective_synapses(n: int, s: int, M: int | np.ndarray) -> float | np.ndarray:
    """Expected distinct synapses when M patterns of s random synapses share one segment.

    s' = n (1 - (1 - s/n)^M)   (Ahmad & Hawkins 2016, union property).
    """
    return n * (1.0 - (1.0 - s / n) ** np.asarray(M, dtype=float))


def union_size_distribution(n: int, s: int, M: int) -> np.ndarray:
    """Exact distribution of the union size of M random s-subsets of n cells (float vector).

    Occupancy Markov chain: adding an s-subset to a union of size u adds j new cells with
    hypergeometric probability C(n-u, j) C(u, s-j) / C(n, s). Entry u of the result is P(size=u).
    """
    from scipy.special import gammaln

    def logc(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        a_, b_ = np.broadcast_arrays(np.asarray(a, float), np.asarray(b, float))
        ok = (b_ >= 0) & (b_ <= a_)
        out = np.full(a_.shape, -np.inf)
        out[ok] = gammaln(a_[ok] + 1) - gammaln(b_[ok] + 1) - gammaln(a_[ok] - b_[ok] + 1)
        return out

    top = min(n, M * s)
    p = np.zeros(top + 1)
    p[s] = 1.0
    u = np.arange(top + 1)
    lnorm = float(logc(n, s))
    for _ in range(M - 1):
        q = np.zeros_like(p)
        for j in range(s + 1):
            w = np.exp(logc(n - u, j) + logc(u, s - j) - lnorm)
            dest = u + j
            ok = (dest <= top) & (w > 0) & (p > 0)
            np.add.at(q, dest[ok], p[ok] * w[ok])
        p = q
    return p


def union_false_match_probability(n: int, a: int, s: int, M: int, theta: int) -> float:
    """P_fp of a union segment (M patterns, s synapses each): eq. 3 averaged over the union size.

    Uses the exact union-size distribution (:func:`union_size_distribution`); eq. 3 for each size
    is the hypergeometric tail P(X >= theta), X ~ Hypergeom(n, u, a), evaluated in log space
    (scipy) because hundreds of sizes are summed.
    """
    from scipy.stats import hypergeom

    _check(n, a, s, theta)
    dist = union_size_distribution(n, s, M)
    u = np.nonzero(dist > 1e-15)[0]
    return float(np.sum(dist[u] * hypergeom.sf(theta - 1, n, u, a)))


# ----------------------------------------------------------------------------- Monte Carlo
@dataclass(frozen=True)
class MCEstimate:
    """A Monte-Carlo probability with its 95% Clopper-Pearson interval."""

    p: float
    lo: float
    hi: float
    hits: int
    trials: int

    def contains(self, x: float) -> bool:
        return self.lo <= x <= self.hi


def _estimate(hits: int, trials: int, level: float = 0.95) -> MCEstimate:
    from scipy.stats import beta

    al = 1.0 - level
    lo = 0.0 if hits == 0 else float(beta.ppf(al / 2, hits, trials - hits + 1))
    hi = 1.0 if hits == trials else float(beta.ppf(1 - al / 2, hits + 1, trials - hits))
    return MCEstimate(hits / trials, lo, hi, int(hits), int(trials))


@numba.njit(cache=True)
def _random_subset(n, k, mark, out):
    """Floyd's algorithm: k distinct cells of n, marked in ``mark`` and listed in ``out``."""
    c = 0
    for j in range(n - k, n):
        t = np.random.randint(0, j + 1)
        if mark[t]:
            t = j
        mark[t] = True
        out[c] = t
        c += 1


@numba.njit(cache=True)
def _fp_kernel(n, a, s, theta, trials, seed):
    """Count random SDRs (a of n) that put >= theta active cells on a random s-synapse segment."""
    np.random.seed(seed)
    mark = np.zeros(n, dtype=np.bool_)
    seg_mark = np.zeros(n, dtype=np.bool_)
    sdr = np.empty(a, dtype=np.int64)
    seg = np.empty(s, dtype=np.int64)
    hits = 0
    for _ in range(trials):
        _random_subset(n, s, seg_mark, seg)
        _random_subset(n, a, mark, sdr)
        ov = 0
        for i in range(s):
            if mark[seg[i]]:
                ov += 1
        if ov >= theta:
            hits += 1
        for i in range(a):
            mark[sdr[i]] = False
        for i in range(s):
            seg_mark[seg[i]] = False
    return hits


def false_match_mc(n: int, a: int, s: int, theta: int, trials: int = 100_000,
                   seed: int = 0, level: float = 0.95) -> MCEstimate:
    """Monte-Carlo P_fp: fresh random segment and random SDR each trial (numba kernel)."""
    _check(n, a, s, theta)
    return _estimate(_fp_kernel(n, a, s, theta, int(trials), int(seed)), int(trials), level)


@numba.njit(cache=True)
def _union_kernel(n, a, s, M, theta, trials, seed, sizes):
    """Per trial: build a union segment of M random s-subsets, test one random SDR against it."""
    np.random.seed(seed)
    seg_mark = np.zeros(n, dtype=np.bool_)
    mark = np.zeros(n, dtype=np.bool_)
    tmp_mark = np.zeros(n, dtype=np.bool_)
    seg = np.empty(M * s, dtype=np.int64)
    tmp = np.empty(s, dtype=np.int64)
    sdr = np.empty(a, dtype=np.int64)
    hits = 0
    for t in range(trials):
        u = 0
        for _m in range(M):
            _random_subset(n, s, tmp_mark, tmp)
            for i in range(s):
                c = tmp[i]
                tmp_mark[c] = False
                if not seg_mark[c]:
                    seg_mark[c] = True
                    seg[u] = c
                    u += 1
        sizes[t] = u
        if a > 0:
            _random_subset(n, a, mark, sdr)
            ov = 0
            for i in range(u):
                if mark[seg[i]]:
                    ov += 1
            if ov >= theta:
                hits += 1
            for i in range(a):
                mark[sdr[i]] = False
        for i in range(u):
            seg_mark[seg[i]] = False
    return hits


def union_size_mc(n: int, s: int, M: int, trials: int = 2000, seed: int = 0) -> np.ndarray:
    """Simulated union sizes (one per trial) of M random s-synapse patterns on one segment."""
    sizes = np.empty(int(trials), dtype=np.int64)
    _union_kernel(n, 0, s, M, 1, int(trials), int(seed), sizes)
    return sizes


def union_false_match_mc(n: int, a: int, s: int, M: int, theta: int, trials: int = 100_000,
                         seed: int = 0, level: float = 0.95) -> MCEstimate:
    """Monte-Carlo false-match rate of a union segment against random SDRs."""
    _check(n, a, s, theta)
    sizes = np.empty(int(trials), dtype=np.int64)
    hits = _union_kernel(n, a, s, M, theta, int(trials), int(seed), sizes)
    return _estimate(hits, int(trials), level)


@numba.njit(cache=True)
def _noise_kernel(n, a, s, theta, n_removed, n_added, trials, seed):
    """Per trial: pattern (a of n), segment on s of its cells; drop n_removed active bits and add
    n_added random inactive ones; returns (own-segment matches, unrelated-segment matches)."""
    np.random.seed(seed)
    mark = np.zeros(n, dtype=np.bool_)
    pat = np.empty(a, dtype=np.int64)
    idx_mark = np.zeros(a, dtype=np.bool_)
    idx = np.empty(max(s, n_removed), dtype=np.int64)
    other_mark = np.zeros(n, dtype=np.bool_)
    other = np.empty(s, dtype=np.int64)
    own_hits = 0
    other_hits = 0
    for _ in range(trials):
        _random_subset(n, a, mark, pat)
        # own segment: s of the pattern's active cells
        _random_subset(a, s, idx_mark, idx)
        seg = np.empty(s, dtype=np.int64)
        for i in range(s):
            seg[i] = pat[idx[i]]
            idx_mark[idx[i]] = False
        # remove n_removed active bits
        _random_subset(a, n_removed, idx_mark, idx)
        for i in range(n_removed):
            mark[pat[idx[i]]] = False
            idx_mark[idx[i]] = False
        # add n_added bits among currently inactive cells (rejection sampling)
        added = np.empty(n_added, dtype=np.int64)
        c = 0
        while c < n_added:
            t = np.random.randint(0, n)
            if not mark[t]:
                mark[t] = True
                added[c] = t
                c += 1
        ov = 0
        for i in range(s):
            if mark[seg[i]]:
                ov += 1
        if ov >= theta:
            own_hits += 1
        # an unrelated segment: s random cells
        _random_subset(n, s, other_mark, other)
        ov = 0
        for i in range(s):
            if mark[other[i]]:
                ov += 1
            other_mark[other[i]] = False
        if ov >= theta:
            other_hits += 1
        for i in range(a):
            mark[pat[i]] = False
        for i in range(n_added):
            mark[added[i]] = False
    return own_hits, other_hits


def match_prob_after_removal_mc(n: int, a: int, s: int, theta: int, n_removed: int,
                                trials: int = 20_000, seed: int = 0,
                                level: float = 0.95) -> MCEstimate:
    """Monte-Carlo counterpart of :func:`match_prob_after_removal` with explicit SDRs."""
    _check(n, a, s, theta)
    own, _ = _noise_kernel(n, a, s, theta, int(n_removed), 0, int(trials), int(seed))
    return _estimate(own, int(trials), level)


def false_match_after_addition_mc(n: int, a: int, s: int, theta: int, n_added: int,
                                  trials: int = 100_000, seed: int = 0,
                                  level: float = 0.95) -> MCEstimate:
    """Monte-Carlo counterpart of :func:`false_match_after_addition` with explicit SDRs."""
    _check(n, a + n_added, s, theta)
    _, other = _noise_kernel(n, a, s, theta, 0, int(n_added), int(trials), int(seed))
    return _estimate(other, int(trials), level)
