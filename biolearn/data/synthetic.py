"""Synthetic data sets with a known ground truth, and scores against it.

- The bars problem (Földiák 1990, Fig. 3): :func:`bars` draws images of random horizontal and
  vertical bars, :func:`single_bars` gives the one-bar probes, :func:`score_bars` matches units
  to bars from their responses to the probes.
- Gaussian data of a given covariance (:func:`gaussian_samples`, :func:`random_covariance`), and
  the spiked-covariance model with a known top-``k`` subspace (:func:`spiked_covariance`): the
  references of the PCA-type Hebbian rules in :mod:`biolearn.rules.hebbian` and
  :mod:`biolearn.rules.similarity_matching`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from biolearn.errors import BiolearnError


# ------------------------------------------------------------------------------------- bars
def bars(n: int, rng: np.random.Generator, size: int = 8, p_bar: float = 1.0 / 8.0
         ) -> tuple[np.ndarray, np.ndarray]:
    """``n`` bar images on a ``size × size`` grid (Földiák 1990, Fig. 3).

    Each of the ``2·size`` bars (rows first, then columns) is on independently with probability
    ``p_bar``; a pixel is 1 if any bar covers it. Returns ``(x [n, size²] float64,
    present [n, 2·size] bool)``.
    """
    if not 0.0 <= p_bar <= 1.0:
        raise BiolearnError(f"bar probability must be in [0, 1], got {p_bar}", "in bars()",
                            "pass p_bar between 0 and 1")
    present = rng.random((n, 2 * size)) < p_bar
    img = present[:, :size, None] | present[:, None, size:]
    return img.reshape(n, size * size).astype(np.float64), present


def single_bars(size: int = 8) -> np.ndarray:
    """The ``2·size`` single-bar images (rows then columns) as ``[2·size, size²]``."""
    present = np.eye(2 * size, dtype=bool)
    img = present[:, :size, None] | present[:, None, size:]
    return img.reshape(2 * size, size * size).astype(np.float64)


@dataclass
class BarScore:
    """How well output units code single bars."""

    response: np.ndarray      # [n_out, n_bars] binary response of each unit to each single bar
    unit_bar: np.ndarray      # bar index each unit detects (−1 if not a single-bar detector)
    n_detectors: int          # units responding to exactly one single bar
    n_bars_covered: int       # distinct bars detected by some single-bar detector
    one_to_one: bool          # every bar has exactly one detector and every unit detects one


def score_bars(resp: np.ndarray) -> BarScore:
    """Match units to bars from a binary ``[n_out, n_bars]`` table of responses to
    :func:`single_bars`: a unit that responds to exactly one bar detects it."""
    resp = np.asarray(resp, bool)
    counts = resp.sum(axis=1)
    unit_bar = np.where(counts == 1, resp.argmax(axis=1), -1)
    det = unit_bar[unit_bar >= 0]
    per_bar = np.bincount(det, minlength=resp.shape[1])
    one_to_one = bool(np.all(per_bar == 1) and np.all(unit_bar >= 0))
    return BarScore(resp.astype(np.float64), unit_bar, int((counts == 1).sum()),
                    int(np.unique(det).size), one_to_one)


def bars_with_unique_detector(score: BarScore) -> int:
    """Bars detected by exactly one single-bar detector unit."""
    det = score.unit_bar[score.unit_bar >= 0]
    return int(np.sum(np.bincount(det, minlength=score.response.shape[1]) == 1))


# --------------------------------------------------------------------------- Gaussian data
def gaussian_samples(cov: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` zero-mean samples with covariance ``cov`` (rows), via a Cholesky/eigen factor."""
    evals, evecs = np.linalg.eigh(cov)
    factor = evecs * np.sqrt(np.clip(evals, 0.0, None))
    return rng.standard_normal((n, cov.shape[0])) @ factor.T


def random_covariance(eigenvalues: np.ndarray, rng: np.random.Generator
                      ) -> tuple[np.ndarray, np.ndarray]:
    """A covariance with the given spectrum and a random orthonormal eigenbasis.

    Returns ``(C, U)`` with ``C = U diag(λ) Uᵀ`` and eigenvectors in the columns of ``U``,
    ordered as ``eigenvalues``.
    """
    lam = np.asarray(eigenvalues, dtype=np.float64)
    q, r = np.linalg.qr(rng.standard_normal((lam.size, lam.size)))
    u = q * np.sign(np.diag(r))
    return (u * lam) @ u.T, u


def spiked_covariance(n: int, d: int, k: int, rng: np.random.Generator,
                      top: tuple[float, float] = (1.0, 0.5), noise_var: float = 0.002
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Synthetic data with a known spectrum: ``x = U diag(σ) s + √ρ ξ`` (rows).

    Eigenvalues of the signal decrease linearly from ``top[0]`` to ``top[1]`` over ``k``
    components on top of isotropic noise of variance ``noise_var`` (the spiked-covariance model,
    on which :mod:`biolearn.rules.similarity_matching` is benchmarked). Returns
    ``(x [n, d], U [d, k], C [d, d])`` with ``C`` the exact population covariance.
    """
    if not 1 <= k <= d:
        raise BiolearnError(f"need 1 ≤ k ≤ d, got k={k}, d={d}", "in spiked_covariance()",
                            "choose fewer components than dimensions")
    q, r = np.linalg.qr(rng.standard_normal((d, k)))
    u = q * np.sign(np.diag(r))
    sig2 = np.linspace(top[0], top[1], k)
    x = (rng.standard_normal((n, k)) * np.sqrt(sig2)) @ u.T
    x += np.sqrt(noise_var) * rng.standard_normal((n, d))
    c = (u * sig2) @ u.T + noise_var * np.eye(d)
    return x, u, c
