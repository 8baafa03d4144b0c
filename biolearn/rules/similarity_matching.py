"""Similarity-matching Hebbian/anti-Hebbian networks (Pehlevan, Sengupta & Chklovskii 2018).

"Why do similarity matching objectives lead to Hebbian/anti-Hebbian networks?", Neural Comput.
30(1):84–124. ``k`` output neurons with feedforward weights ``W [k, D]`` and lateral weights
``M [k, k]``; the recurrent dynamics settle at ``y = M⁻¹ W x`` (computed directly).

- Principal subspace projection (PSP, online Algorithm 1, eq. 4.4):
  ``W ← W + 2η (y xᵀ − W)`` (Hebbian), ``M ← M + (η/τ)(y yᵀ − M)`` (anti-Hebbian).
  The filter ``F = M⁻¹ W`` converges to an orthonormal basis (``F Fᵀ = I``) of the top-``k``
  principal subspace of the input.
- Principal subspace whitening (PSW, section 6): same ``W`` rule, ``M ← M + (η/τ)(y yᵀ − I)``.
  The output covariance ``F C Fᵀ`` converges to ``I`` and ``F``'s rows span the same subspace.

Constants from the paper's simulations: ``τ = 0.5`` and ``η(t) = η₀/(t + t₀)`` with
``η₀ = 1, t₀ = 5`` (PSP). For PSW we use ``t₀ = 100`` and a scaled start (see
:func:`similarity_matching`). The parameters are the frozen dataclass :class:`SimilarityMatching`;
test data with a known subspace: :func:`biolearn.data.synthetic.spiked_covariance`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from biolearn.errors import BiolearnError


@numba.njit(cache=True)
def _sm_kernel(x: np.ndarray, w: np.ndarray, m: np.ndarray, t_start: int, eta0: float,
               t0: float, tau: float, whiten: bool) -> None:
    """In place: online PSP (``whiten=False``) or PSW updates of ``W, M`` over the rows of ``x``.

    ``t_start`` is the global sample index of ``x[0]`` (for the ``η(t) = η₀/(t + t₀)`` schedule).
    """
    n_samples, d = x.shape
    k = w.shape[0]
    wx = np.empty(k)
    for s in range(n_samples):
        eta = eta0 / (t_start + s + t0)
        xs = x[s]
        for i in range(k):
            acc = 0.0
            for j in range(d):
                acc += w[i, j] * xs[j]
            wx[i] = acc
        y = np.linalg.solve(m, wx)
        a = 2.0 * eta
        for i in range(k):
            ay = a * y[i]
            for j in range(d):
                w[i, j] += ay * xs[j] - a * w[i, j]
        b = eta / tau
        for i in range(k):
            for j in range(k):
                target = (1.0 if i == j else 0.0) if whiten else m[i, j]
                m[i, j] += b * (y[i] * y[j] - target)


@dataclass(frozen=True)
class SimilarityMatching:
    """Parameters of the PSP (``whiten=False``) and PSW networks (Pehlevan et al. 2018).

    ``τ`` (paper 0.5) is the ratio of the ``W`` to the ``M`` learning rate; the schedule is
    ``η(t) = eta0/(t + t0)`` with ``eta0 = 1`` and ``t0 = 5`` for PSP (paper); ``t0 = None``
    means 5 for PSP and 100 for PSW (see :func:`similarity_matching`).
    """

    whiten: bool = False
    tau: float = 0.5
    eta0: float = 1.0
    t0: float | None = None


@dataclass
class SMResult:
    """Final weights and the error curve of a similarity-matching run."""

    w: np.ndarray                  # feedforward [k, D]
    m: np.ndarray                  # lateral [k, k]
    t: np.ndarray                  # sample counts at which the errors were measured
    subspace_error: np.ndarray     # see :func:`subspace_error`
    whitening_error: np.ndarray    # ‖F C Fᵀ − I‖_F / √k (only meaningful for PSW)

    @property
    def filters(self) -> np.ndarray:
        """``F = M⁻¹ W``: the linear map from input to the network's steady-state output."""
        return np.linalg.solve(self.m, self.w)


def subspace_error(f: np.ndarray, u: np.ndarray) -> float:
    """Relative subspace error ``‖P_F − U Uᵀ‖²_F / ‖U Uᵀ‖²_F`` (Pehlevan et al. 2018, sec. 7).

    ``P_F = Fᵀ (F Fᵀ)⁻¹ F`` projects onto the row space of ``f [k, D]``; ``u [D, k]`` holds an
    orthonormal basis of the true principal subspace. 0 = same subspace, 2 = orthogonal.
    """
    q, _ = np.linalg.qr(np.asarray(f, dtype=np.float64).T)
    k = u.shape[1]
    a = q.T @ u
    # ‖QQᵀ − UUᵀ‖² = 2k − 2‖QᵀU‖² for orthonormal Q, U with k columns each
    return float(max(2.0 * k - 2.0 * np.sum(a * a), 0.0) / k)


def similarity_matching(x: np.ndarray, k: int, rng: np.random.Generator,
                        rule: SimilarityMatching | None = None,
                        u: np.ndarray | None = None, c: np.ndarray | None = None,
                        n_checkpoints: int = 50, init: str | None = None,
                        w0: np.ndarray | None = None, m0: np.ndarray | None = None) -> SMResult:
    """Online PSP (or PSW with ``rule.whiten``) over the rows of ``x``.

    Schedule ``η(t) = eta0/(t + t0)``. ``t0`` defaults to the paper's 5 for PSP and to 100 for
    PSW: with ``t0 = 5`` the first PSW steps subtract ``0.4·I, 0.33·I, …`` from ``M`` while the
    outputs are still small, which drives ``M`` indefinite within three samples and the run
    never recovers (checked on the spiked-covariance data of
    :func:`biolearn.data.synthetic.spiked_covariance`).

    ``init``: ``"gaussian"`` (PSP default) draws ``W`` i.i.d. ``N(0, 1/D)``; ``"scaled"`` (PSW
    default) uses random orthonormal rows scaled so that the first (up to 100) samples give
    outputs of unit mean variance, the scale PSW converges to. ``M`` starts at ``I``. Explicit
    ``w0``/``m0`` override both.

    If ``u`` (true top-``k`` basis, ``[D, k]``) is given, the subspace error is recorded at
    ``n_checkpoints`` log-spaced sample counts; if ``c`` (input covariance) is given, also the
    whitening error ``‖F C Fᵀ − I‖_F / √k``.
    """
    rule = rule or SimilarityMatching()
    whiten, tau, eta0, t0 = rule.whiten, rule.tau, rule.eta0, rule.t0
    x = np.ascontiguousarray(x, dtype=np.float64)
    n, d = x.shape
    if not 1 <= k <= d:
        raise BiolearnError(f"need 1 ≤ k ≤ D, got k={k}, D={d}", "in similarity_matching()",
                            "choose fewer output neurons than input dimensions")
    if tau <= 0:
        raise BiolearnError(f"tau must be > 0, got {tau}", "in similarity_matching()",
                            "use the paper's τ = 0.5")
    if t0 is None:
        t0 = 100.0 if whiten else 5.0
    init = init or ("scaled" if whiten else "gaussian")
    if init not in ("gaussian", "scaled"):
        raise BiolearnError(f"unknown init '{init}'", "in similarity_matching()",
                            "use 'gaussian' or 'scaled'")
    if w0 is not None:
        w = np.array(w0, dtype=float)
    elif init == "gaussian":
        w = rng.standard_normal((k, d)) / np.sqrt(d)
    else:
        q, _ = np.linalg.qr(rng.standard_normal((d, k)))
        var = np.mean(np.sum((x[: min(n, 100)] @ q) ** 2, axis=1)) / k
        w = q.T / np.sqrt(max(var, 1e-12))
    m = np.eye(k) if m0 is None else np.array(m0, dtype=float)
    marks = np.unique(np.geomspace(1, n, max(n_checkpoints, 2)).astype(np.int64))
    ts, serr, werr = [], [], []
    start = 0
    for stop in marks:
        _sm_kernel(x[start:stop], w, m, start, float(eta0), float(t0), float(tau), bool(whiten))
        start = int(stop)
        f = np.linalg.solve(m, w)
        ts.append(start)
        serr.append(subspace_error(f, u) if u is not None else np.nan)
        if c is not None:
            werr.append(float(np.linalg.norm(f @ c @ f.T - np.eye(k)) / np.sqrt(k)))
        else:
            werr.append(np.nan)
    return SMResult(w, m, np.array(ts), np.array(serr), np.array(werr))
