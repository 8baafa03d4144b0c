"""Recipe ``similarity_matching``: online Hebbian/anti-Hebbian PSP and PSW networks.

Pehlevan, Sengupta & Chklovskii (2018), Neural Comput. 30:84. Streams a spiked-covariance data
set with a known top-``k`` subspace through the principal subspace projection (PSP) network and
the principal subspace whitening (PSW) network; records the subspace error against the
``numpy.linalg.eigh`` subspace of the exact covariance, and for PSW the whitening error
``‖F C Fᵀ − I‖_F/√k``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from biolearn.config import param, require_below
from biolearn.data.synthetic import spiked_covariance
from biolearn.registry import register
from biolearn.rules.similarity_matching import SimilarityMatching, similarity_matching


@dataclass
class SimilarityMatchingParams:
    dim: int = param(500, "input dimension D", min=2)
    k: int = param(50, "output neurons / subspace dimension k", min=1)
    n_samples: int = param(20000, "streamed samples (one pass)", min=10)
    top_eigenvalue: float = param(1.0, "largest signal eigenvalue", min=0.0)
    kth_eigenvalue: float = param(0.5, "k-th signal eigenvalue (linear in between)", min=0.0)
    noise_var: float = param(0.002, "isotropic noise variance ρ", min=0.0)
    tau: float = param(0.5, "ratio of W to M learning rates τ (paper: 0.5)", min=1e-6)
    eta0: float = param(1.0, "η(t) = eta0/(t + t0)", min=0.0)
    t0_psp: float = param(5.0, "t0 of the PSP schedule (paper: 5)", min=0.0)
    t0_psw: float = param(100.0, "t0 of the PSW schedule (see docs: 5 makes M indefinite)",
                          min=0.0)
    whitening: bool = param(True, "also run the whitening (PSW) network")
    n_checkpoints: int = param(40, "log-spaced points on the error curves", min=2)

    def validate(self) -> None:
        require_below(self, "k", "dim", strict=False, why="a k-dimensional subspace of the input")
        require_below(self, "kth_eigenvalue", "top_eigenvalue", strict=False,
                      why="the signal eigenvalues fall from the top one to the k-th")


@register("similarity_matching", SimilarityMatchingParams)
def run(cfg, ctx) -> dict:
    """Online PSP / PSW subspace and whitening error curves on a spiked covariance."""
    import matplotlib.pyplot as plt

    from biolearn.errors import BiolearnError

    p: SimilarityMatchingParams = cfg.params
    if p.k > p.dim:
        raise BiolearnError(f"k={p.k} exceeds dim={p.dim}", "at 'params.k'",
                            "choose k ≤ dim")
    rng = ctx.rng
    x, _, c = spiked_covariance(p.n_samples, p.dim, p.k, rng,
                                (p.top_eigenvalue, p.kth_eigenvalue), p.noise_var)
    evals, evecs = np.linalg.eigh(c)
    u = evecs[:, ::-1][:, : p.k]          # independent reference: eigendecomposition of C

    psp = similarity_matching(x, p.k, rng, SimilarityMatching(False, p.tau, p.eta0, p.t0_psp),
                              u=u, c=c, n_checkpoints=p.n_checkpoints)
    metrics: dict = {
        "psp_final_subspace_error": float(psp.subspace_error[-1]),
        "psp_samples_to_1e-2": _first_below(psp.t, psp.subspace_error, 1e-2),
        "psp_orthonormality_error": float(
            np.linalg.norm(psp.filters @ psp.filters.T - np.eye(p.k)) / np.sqrt(p.k)),
        "psp_curve": {"t": psp.t.tolist(), "subspace_error": psp.subspace_error.tolist()},
    }
    fig, ax = plt.subplots(1, 2 if p.whitening else 1, figsize=(10 if p.whitening else 5, 3.6),
                           squeeze=False)
    ax = ax[0]
    ax[0].loglog(psp.t, psp.subspace_error, label="PSP")
    if p.whitening:
        psw = similarity_matching(x, p.k, rng, SimilarityMatching(True, p.tau, p.eta0, p.t0_psw),
                                  u=u, c=c, n_checkpoints=p.n_checkpoints)
        f = psw.filters
        metrics.update({
            "psw_final_subspace_error": float(psw.subspace_error[-1]),
            "psw_final_whitening_error": float(psw.whitening_error[-1]),
            "psw_output_cov_eigenvalues": np.linalg.eigvalsh(f @ c @ f.T).tolist(),
            "psw_curve": {"t": psw.t.tolist(), "subspace_error": psw.subspace_error.tolist(),
                          "whitening_error": psw.whitening_error.tolist()},
        })
        ax[0].loglog(psw.t, psw.subspace_error, label="PSW")
        ax[1].loglog(psw.t, psw.whitening_error)
        ax[1].set(xlabel="samples", ylabel="‖F C Fᵀ − I‖/√k", title="PSW whitening error")
    ax[0].set(xlabel="samples", ylabel="subspace error",
              title=f"D = {p.dim}, k = {p.k}, τ = {p.tau}")
    ax[0].legend()
    ctx.save_figure(fig, "similarity_matching_errors")
    metrics["top_eigenvalues"] = evals[::-1][: p.k + 1].tolist()
    return metrics


def _first_below(t: np.ndarray, err: np.ndarray, level: float) -> int:
    hit = np.flatnonzero(err < level)
    return int(t[hit[0]]) if hit.size else -1
