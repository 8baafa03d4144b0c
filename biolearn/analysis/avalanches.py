"""Neuronal avalanches: binning, size/duration distributions, power-law fits, branching ratio.

- Beggs & Plenz (2003, J Neurosci 23:11167): bin the population activity with the mean
  inter-event interval of the pooled train; an avalanche is a run of non-empty bins bounded by
  empty bins; its size is the number of spikes, its duration the number of bins.
- Power-law exponent by discrete maximum likelihood (Clauset, Shalizi & Newman 2009, SIAM Rev
  51:661, eq. 3.5 generalised to a bounded support ``x_min ≤ x ≤ x_max``):
  ``p(x) = x^{−α} / Z(α)``, ``Z = Σ_{k=x_min}^{x_max} k^{−α}`` (Hurwitz ζ when unbounded);
  α maximises ``ℒ = −α Σ ln x_i − n ln Z(α)``; its standard error is ``1/√(n·Var_α[ln x])``
  (inverse Fisher information). ``x_min="auto"`` picks the x_min minimising the KS distance
  between data and fit (Clauset et al. 2009 §3.3). Exponents are returned with their sign, e.g.
  −1.5 for the size distribution of a critical branching process.
- Branching ratio: Harris (1963) maximum-likelihood estimator of a Galton–Watson process,
  ``σ = Σ_t A_{t+1} / Σ_t A_t`` over bins with ``A_t > 0``, and Beggs & Plenz's per-avalanche
  ratio of descendants (second bin) to ancestors (first bin).
- :func:`branching_process` simulates a Galton–Watson process with Poisson(σ) offspring, one
  ancestor per avalanche. At σ = 1 its sizes follow the Borel law ``P(s) = s^{s−1} e^{−s} / s!``
  ∼ ``s^{−3/2}/√(2π)`` and its durations ∼ ``T^{−2}`` (Harris 1963; Zapperi et al. 1995).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit
from scipy import optimize, special

from biolearn.errors import BiolearnError


# ---------------------------------------------------------------------- binning
def population_bin_width(times: np.ndarray) -> float:
    """Mean inter-event interval (ms) of the pooled population train (Beggs & Plenz 2003)."""
    t = np.asarray(times, np.float64)
    if t.size < 2:
        raise BiolearnError("fewer than two spikes", "in avalanche binning",
                            "record longer or give bin_ms explicitly")
    return float((t.max() - t.min()) / (t.size - 1))


def bin_counts(times: np.ndarray, bin_ms: float, t_start: float | None = None,
               t_stop: float | None = None) -> np.ndarray:
    """Population spike counts in consecutive bins of ``bin_ms`` over [t_start, t_stop)."""
    t = np.asarray(times, np.float64)
    t0 = float(t.min()) if t_start is None else float(t_start)
    t1 = float(t.max()) + bin_ms if t_stop is None else float(t_stop)
    nb = max(int(np.ceil((t1 - t0) / bin_ms - 1e-9)), 1)
    k = np.floor((t - t0) / bin_ms).astype(np.int64)
    k = k[(k >= 0) & (k < nb)]
    return np.bincount(k, minlength=nb)


@dataclass
class Avalanches:
    """Avalanche sizes (spikes), durations (bins), start bins, the bin width and the counts."""

    sizes: np.ndarray
    durations: np.ndarray
    starts: np.ndarray
    bin_ms: float
    counts: np.ndarray


def avalanches_from_counts(counts: np.ndarray, drop_edges: bool = True,
                           bin_ms: float = 1.0) -> Avalanches:
    """Runs of non-empty bins. ``drop_edges`` drops runs touching the first or last bin (they may
    be cut by the recording)."""
    c = np.asarray(counts, np.int64)
    act = np.concatenate([[0], (c > 0).astype(np.int8), [0]])
    d = np.diff(act)
    starts = np.flatnonzero(d == 1)
    ends = np.flatnonzero(d == -1)  # exclusive
    if drop_edges and starts.size:
        keep = (starts > 0) & (ends < c.size)
        starts, ends = starts[keep], ends[keep]
    cs = np.concatenate([[0], np.cumsum(c)])
    return Avalanches(cs[ends] - cs[starts], ends - starts, starts, float(bin_ms), c)


def avalanches(times: np.ndarray, bin_ms: float | None = None, t_start: float | None = None,
               t_stop: float | None = None, drop_edges: bool = True) -> Avalanches:
    """Avalanches of a population's pooled spike times (ms); bin width defaults to the mean
    inter-event interval (Beggs & Plenz 2003)."""
    b = population_bin_width(times) if bin_ms is None else float(bin_ms)
    return avalanches_from_counts(bin_counts(times, b, t_start, t_stop), drop_edges, b)


# ---------------------------------------------------------------------- branching ratio
def branching_ratio(counts: np.ndarray, method: str = "harris") -> float:
    """Branching ratio from binned population counts.

    ``"harris"``: Σ A_{t+1} / Σ A_t over bins with A_t > 0 (Galton–Watson MLE, Harris 1963).
    ``"beggs"``: mean over avalanches of A(second bin) / A(first bin) (Beggs & Plenz 2003)."""
    c = np.asarray(counts, np.float64)
    if method == "harris":
        a, b = c[:-1], c[1:]
        m = a > 0
        return float(b[m].sum() / a[m].sum()) if m.any() else float("nan")
    if method == "beggs":
        av = avalanches_from_counts(c.astype(np.int64), drop_edges=False)
        s = av.starts[av.starts + 1 < c.size]
        return float(np.mean(c[s + 1] / c[s])) if s.size else float("nan")
    raise ValueError(f"unknown method {method!r}: use 'harris' or 'beggs'")


# ---------------------------------------------------------------------- power-law fit
@dataclass
class PowerLawFit:
    """Discrete power law ``p(x) ∝ x^{exponent}`` on ``[xmin, xmax]`` fitted by ML."""

    exponent: float  # −α
    alpha: float
    sigma: float  # standard error of α
    xmin: int
    xmax: float  # inf when unbounded
    n: int  # samples inside the support
    ks: float  # KS distance between the data and the fitted law
    loglik: float


_DIRECT_SUM = 200_000  # supports up to this many points are summed directly


def _log_z(alpha: float, xmin: int, xmax: float) -> float:
    if np.isfinite(xmax) and xmax - xmin <= _DIRECT_SUM:
        k = np.arange(xmin, int(xmax) + 1, dtype=np.float64)
        lk = np.log(k)
        m = -alpha * lk
        top = m.max()
        return float(top + np.log(np.exp(m - top).sum()))
    z = special.zeta(alpha, xmin) - (special.zeta(alpha, xmax + 1) if np.isfinite(xmax) else 0.0)
    return float(np.log(z))


def _cdf(alpha: float, xmin: int, xmax: float, x: np.ndarray) -> np.ndarray:
    """P(X ≤ x) of the fitted discrete law at integer points x."""
    if np.isfinite(xmax) and xmax - xmin <= _DIRECT_SUM:
        k = np.arange(xmin, int(xmax) + 1, dtype=np.float64)
        p = k**-alpha
        c = np.cumsum(p) / p.sum()
        return c[np.clip(x.astype(np.int64) - xmin, 0, c.size - 1)]
    zt = special.zeta(alpha, xmin) - (special.zeta(alpha, xmax + 1) if np.isfinite(xmax) else 0)
    return 1.0 - (special.zeta(alpha, x + 1.0) - (special.zeta(alpha, xmax + 1)
                                                    if np.isfinite(xmax) else 0.0)) / zt


def _fit_fixed(x: np.ndarray, xmin: int, xmax: float, alpha_bounds: tuple[float, float]
               ) -> PowerLawFit:
    n = x.size
    slx = float(np.log(x).sum())
    lo, hi = alpha_bounds
    if not np.isfinite(xmax):
        lo = max(lo, 1.0 + 1e-6)  # normalisable only for α > 1

    def nll(a: float) -> float:
        return a * slx + n * _log_z(a, xmin, xmax)

    res = optimize.minimize_scalar(nll, bounds=(lo, hi), method="bounded",
                                   options={"xatol": 1e-7})
    a = float(res.x)
    h = 1e-3
    var = (_log_z(a + h, xmin, xmax) - 2 * _log_z(a, xmin, xmax) + _log_z(a - h, xmin, xmax)) / h**2
    sigma = float(1.0 / np.sqrt(n * var)) if var > 0 else float("nan")
    xs = np.sort(x)
    u, idx = np.unique(xs, return_index=True)
    emp_hi = np.append(idx[1:], n) / n  # empirical CDF at each unique value
    emp_lo = idx / n  # just below it
    fit = _cdf(a, xmin, xmax, u)
    fit_below = np.concatenate([[0.0], _cdf(a, xmin, xmax, u[:-1])]) if u.size else fit
    ks = float(max(np.max(np.abs(emp_hi - fit)), np.max(np.abs(emp_lo - fit_below))))
    return PowerLawFit(-a, a, sigma, int(xmin), float(xmax), int(n), ks, float(-res.fun))


def powerlaw_fit(x: np.ndarray, xmin: int | str = 1, xmax: float | None = None,
                 alpha_bounds: tuple[float, float] = (0.01, 10.0), min_tail: int = 50
                 ) -> PowerLawFit:
    """Discrete ML power-law fit of positive integers ``x`` on ``[xmin, xmax]``.

    ``xmin="auto"`` scans candidate x_min values (with at least ``min_tail`` samples at or above)
    and keeps the fit with the smallest KS distance (Clauset et al. 2009)."""
    x = np.asarray(x)
    x = x[np.isfinite(x)].astype(np.int64)
    x = x[x >= 1]
    xm = np.inf if xmax is None else float(xmax)
    if isinstance(xmin, str):
        if xmin != "auto":
            raise ValueError("xmin must be an integer or 'auto'")
        cand = np.unique(x[x <= xm])
        best: PowerLawFit | None = None
        for c in cand:
            tail = x[(x >= c) & (x <= xm)]
            if tail.size < min_tail or (np.isfinite(xm) and c >= xm):
                break
            f = _fit_fixed(tail, int(c), xm, alpha_bounds)
            if best is None or f.ks < best.ks:
                best = f
        if best is None:
            raise BiolearnError("too few samples for a power-law fit", "in powerlaw_fit",
                                f"need at least {min_tail} values")
        return best
    tail = x[(x >= int(xmin)) & (x <= xm)]
    if tail.size < 2:
        raise BiolearnError(f"only {tail.size} samples in [{xmin}, {xm}]", "in powerlaw_fit",
                            "record more avalanches or widen the bounds")
    return _fit_fixed(tail, int(xmin), xm, alpha_bounds)


def sample_discrete_powerlaw(alpha: float, n: int, rng: np.random.Generator, xmin: int = 1,
                             xmax: int = 10**5) -> np.ndarray:
    """Exact samples of ``p(x) ∝ x^{−α}`` on the integers ``[xmin, xmax]`` (inverse CDF)."""
    k = np.arange(xmin, xmax + 1, dtype=np.float64)
    c = np.cumsum(k**-alpha)
    c /= c[-1]
    return (np.searchsorted(c, rng.random(n), side="right") + xmin).astype(np.int64)


def ccdf(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Empirical complementary CDF P(X ≥ x) at the unique values of x (for log-log plots)."""
    xs = np.sort(np.asarray(x))
    u, idx = np.unique(xs, return_index=True)
    return u, 1.0 - idx / max(xs.size, 1)


# ---------------------------------------------------------------------- synthetic data
@njit(cache=True)
def _gw(n_av, sigma, max_gen, max_size, seed):
    np.random.seed(seed)
    cap = 1024
    out = np.zeros(cap, np.int64)
    k = 0
    for _ in range(n_av):
        a = 1
        size = 0
        gen = 0
        while a > 0 and gen < max_gen and size < max_size:
            if k + 2 >= cap:
                new = np.zeros(cap * 2, np.int64)
                new[:cap] = out
                out = new
                cap *= 2
            out[k] = a
            k += 1
            size += a
            gen += 1
            a = np.random.poisson(sigma * a)
        out[k] = 0  # one empty bin separates avalanches
        k += 1
    return out[:k]


def branching_process(n_avalanches: int, sigma: float, seed: int, max_generations: int = 10**4,
                      max_size: int = 10**6) -> np.ndarray:
    """Binned counts of ``n_avalanches`` Galton–Watson avalanches (Poisson(σ) offspring, one
    ancestor each), separated by single empty bins. Avalanches are cut at ``max_generations`` or
    ``max_size`` (only relevant at σ ≥ 1)."""
    return _gw(int(n_avalanches), float(sigma), int(max_generations), int(max_size), int(seed))
