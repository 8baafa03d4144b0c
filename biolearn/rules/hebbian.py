"""Rate-based Hebbian rules: Oja's single unit, Sanger's generalized Hebbian algorithm (GHA), BCM.

All three learn online, one sample at a time, inside ``@njit`` kernels over a flat ``[T, N]``
sample array (rows are presented in order; shuffle or resample before calling). Each rule's
parameters are a frozen dataclass (:class:`Oja`, :class:`GHA`, :class:`BCM`) passed to its
function (:func:`oja`, :func:`gha`, :func:`bcm`). Test data with a known covariance:
:mod:`biolearn.data.synthetic`.

- Oja (1982), J. Math. Biol. 15:267: ``y = w·x``, ``Δw = η y (x − y w)``. The fixed point is the
  top eigenvector of the input covariance ``C = ⟨x xᵀ⟩`` with ``|w| = 1``.
- Sanger (1989), Neural Networks 2:459, eq. (3): ``y = W x``,
  ``ΔW = η (y xᵀ − LT[y yᵀ] W)`` (``LT`` = lower triangle incl. diagonal). Row ``i`` converges
  to the ``i``-th eigenvector of ``C`` (ordered by eigenvalue), each with unit norm.
- BCM (Bienenstock, Cooper & Munro 1982; sliding threshold form of Intrator & Cooper 1992):
  ``y = max(w·x, 0)``, ``Δw = η x y (y − θ_M)``, ``θ_M = ⟨y²⟩`` estimated by a running average
  ``θ ← θ + (y² − θ)/τ_θ``. With K linearly independent patterns each shown with probability
  ``1/K``, the stable fixed points are selective: the response to one pattern is ``K`` (since
  ``θ = y_sel²/K = y_sel``), zero to all others.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from biolearn.errors import BiolearnError


@numba.njit(cache=True)
def _oja_kernel(x: np.ndarray, w: np.ndarray, eta: float, norm_every: int,
                norms: np.ndarray) -> None:
    """In place: Oja updates of ``w`` over the rows of ``x``; ``norms[t // norm_every] = |w|``."""
    n_samples, n = x.shape
    for t in range(n_samples):
        y = 0.0
        for j in range(n):
            y += w[j] * x[t, j]
        for j in range(n):
            w[j] += eta * y * (x[t, j] - y * w[j])
        if norm_every > 0 and (t + 1) % norm_every == 0:
            s = 0.0
            for j in range(n):
                s += w[j] * w[j]
            norms[(t + 1) // norm_every - 1] = np.sqrt(s)


@numba.njit(cache=True)
def _gha_kernel(x: np.ndarray, w: np.ndarray, eta: float) -> None:
    """In place: Sanger's rule ``ΔW = η (y xᵀ − LT[y yᵀ] W)`` over the rows of ``x``.

    Implemented with the running residual ``r_i = x − Σ_{k≤i} y_k w_k`` so each sample costs
    ``O(k·n)`` (Sanger 1989, eq. 4 form).
    """
    n_samples, n = x.shape
    k = w.shape[0]
    y = np.empty(k)
    r = np.empty(n)
    for t in range(n_samples):
        for i in range(k):
            s = 0.0
            for j in range(n):
                s += w[i, j] * x[t, j]
            y[i] = s
        for j in range(n):
            r[j] = x[t, j]
        for i in range(k):
            yi = y[i]
            for j in range(n):
                r[j] -= yi * w[i, j]
            for j in range(n):
                w[i, j] += eta * yi * r[j]


@numba.njit(cache=True)
def _bcm_kernel(x: np.ndarray, w: np.ndarray, theta0: float, eta: float, tau_theta: float,
                y_hist: np.ndarray, theta_hist: np.ndarray) -> float:
    """In place BCM over the rows of ``x``; returns the final threshold θ_M."""
    n_samples, n = x.shape
    theta = theta0
    for t in range(n_samples):
        y = 0.0
        for j in range(n):
            y += w[j] * x[t, j]
        if y < 0.0:
            y = 0.0
        phi = y * (y - theta)
        for j in range(n):
            w[j] += eta * x[t, j] * phi
        theta += (y * y - theta) / tau_theta
        y_hist[t] = y
        theta_hist[t] = theta
    return theta


def _as_samples(x: np.ndarray, n: int | None = None, where: str = "x") -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise BiolearnError(f"{where} must be a 2-D [samples, features] array, got shape {x.shape}",
                            f"in {where}", "reshape the inputs to [T, N]")
    if n is not None and x.shape[1] != n:
        raise BiolearnError(f"{where} has {x.shape[1]} features but the weights expect {n}",
                            f"in {where}", "pass inputs matching the weight vector length")
    return x


@dataclass(frozen=True)
class Oja:
    """Oja's rule (Oja 1982): ``y = w·x``, ``Δw = η y (x − y w)``; ``eta`` per sample."""

    eta: float


@dataclass(frozen=True)
class GHA:
    """Sanger's generalized Hebbian algorithm (Sanger 1989, eq. 3):
    ``ΔW = η (y xᵀ − LT[y yᵀ] W)``; ``eta`` per sample."""

    eta: float


@dataclass(frozen=True)
class BCM:
    """BCM with a sliding threshold (Bienenstock, Cooper & Munro 1982; Intrator & Cooper 1992,
    eq. 2): ``Δw = η x y (y − θ_M)``, ``θ_M ← θ_M + (y² − θ_M)/τ_θ``; ``tau_theta`` in samples."""

    eta: float
    tau_theta: float


def oja(x: np.ndarray, w0: np.ndarray, rule: Oja, norm_every: int = 0
        ) -> tuple[np.ndarray, np.ndarray]:
    """Train one Oja unit on the rows of ``x`` (Oja 1982: ``Δw = η y (x − y w)``).

    Returns ``(w, norms)`` where ``norms`` holds ``|w|`` every ``norm_every`` samples (empty if 0).
    """
    w = np.array(w0, dtype=np.float64).ravel()
    x = _as_samples(x, w.size)
    norms = np.zeros(x.shape[0] // norm_every if norm_every > 0 else 0)
    _oja_kernel(x, w, float(rule.eta), int(norm_every), norms)
    return w, norms


def gha(x: np.ndarray, w0: np.ndarray, rule: GHA) -> np.ndarray:
    """Sanger's generalized Hebbian algorithm on the rows of ``x``; ``w0`` is ``[k, N]``.

    Row ``i`` of the result approximates the ``i``-th principal eigenvector (Sanger 1989, eq. 3).
    """
    w = np.array(w0, dtype=np.float64)
    if w.ndim != 2:
        raise BiolearnError("GHA weights must be 2-D [k, N]", "in gha(w0=...)",
                            "pass an array of shape [components, features]")
    x = _as_samples(x, w.shape[1])
    _gha_kernel(x, w, float(rule.eta))
    return w


@dataclass
class BCMResult:
    """Final weights, threshold, and per-sample output and threshold traces of a BCM run."""

    w: np.ndarray
    theta: float
    y: np.ndarray
    theta_trace: np.ndarray


def bcm(x: np.ndarray, w0: np.ndarray, rule: BCM, theta0: float = 0.0) -> BCMResult:
    """BCM with sliding threshold ``θ_M = ⟨y²⟩`` (running mean over ``tau_theta`` samples).

    ``Δw = η x y (y − θ_M)`` with rectified linear output ``y = max(w·x, 0)``
    (Bienenstock, Cooper & Munro 1982; Intrator & Cooper 1992, eq. 2).
    """
    if rule.tau_theta < 1.0:
        raise BiolearnError(f"tau_theta must be ≥ 1 sample, got {rule.tau_theta}", "in bcm()",
                            "use a threshold time constant of at least one sample")
    w = np.array(w0, dtype=np.float64).ravel()
    x = _as_samples(x, w.size)
    y_hist = np.zeros(x.shape[0])
    theta_hist = np.zeros(x.shape[0])
    theta = _bcm_kernel(x, w, float(theta0), float(rule.eta), float(rule.tau_theta), y_hist,
                        theta_hist)
    return BCMResult(w=w, theta=float(theta), y=y_hist, theta_trace=theta_hist)

