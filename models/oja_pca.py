"""Recipe ``oja_pca``: Oja's rule, Sanger's GHA and BCM on inputs with a known structure.

- Oja (1982): one unit on Gaussian data with covariance ``C = U diag(λ) Uᵀ`` → ``w`` aligns with
  the top eigenvector ``u₁`` and ``|w| → 1``.
- GHA (Sanger 1989): ``k`` units → the top ``k`` eigenvectors in order.
- BCM (Bienenstock, Cooper & Munro 1982) with ``θ_M = ⟨y²⟩``: on K linearly independent patterns
  shown with probability 1/K each, the unit becomes selective: response K to one pattern, 0 to the
  others, and θ_M → K.
Metrics compare against ``numpy.linalg.eigh`` and the BCM closed form.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from biolearn.config import Invalid, param
from biolearn.data.synthetic import gaussian_samples, random_covariance
from biolearn.registry import register
from biolearn.rules.hebbian import BCM, GHA, Oja, bcm, gha, oja


@dataclass
class OjaPCAParams:
    eigenvalues: list[float] = param(
        factory=lambda: [5.0, 3.0, 2.0, 1.0, 0.5, 0.4, 0.3, 0.2, 0.1, 0.1],
        help="spectrum of the input covariance (its eigenbasis is random)", min=0.0)
    n_samples: int = param(20000, "samples presented (one pass, online)", min=10)
    eta: float = param(0.001, "learning rate of Oja and GHA", min=0.0)
    n_components: int = param(4, "GHA output units k", min=1)
    bcm_patterns: int = param(2, "number K of BCM input patterns", min=2)
    bcm_dim: int = param(8, "dimension of the BCM patterns", min=2)
    bcm_samples: int = param(50000, "BCM presentations", min=10)
    bcm_eta: float = param(0.005, "BCM learning rate", min=0.0)
    bcm_tau_theta: float = param(20.0, "time constant of the θ_M running average (samples)",
                                 min=1.0)

    def validate(self) -> None:
        if self.n_components > len(self.eigenvalues):
            raise Invalid(f"{{0}} = {self.n_components} exceeds the input dimension "
                          f"len({{1}}) = {len(self.eigenvalues)}", "n_components", "eigenvalues",
                          fix="use at most len(eigenvalues) components, or add eigenvalues")


@register("oja_pca", OjaPCAParams)
def run(cfg, ctx) -> dict:
    """Oja / GHA principal components and BCM selectivity against closed forms."""
    import matplotlib.pyplot as plt

    p: OjaPCAParams = cfg.params
    rng = ctx.rng
    lam = np.sort(np.asarray(p.eigenvalues, dtype=float))[::-1]
    n = lam.size
    if p.n_components > n:
        from biolearn.errors import BiolearnError

        raise BiolearnError(f"n_components={p.n_components} exceeds the dimension {n}",
                            "at 'params.n_components'", "use at most len(eigenvalues)")
    cov, _ = random_covariance(lam, rng)
    x = gaussian_samples(cov, p.n_samples, rng)
    evals, evecs = np.linalg.eigh(cov)
    u = evecs[:, ::-1]

    every = max(p.n_samples // 200, 1)
    w, norms = oja(x, rng.normal(0.0, 0.1, n), Oja(p.eta), norm_every=every)
    cos_oja = float(abs(w @ u[:, 0]) / np.linalg.norm(w))

    wg = gha(x, rng.normal(0.0, 0.1, (p.n_components, n)), GHA(p.eta))
    overlap = np.abs(wg @ u[:, : p.n_components]) / np.linalg.norm(wg, axis=1)[:, None]
    cos_gha = np.diag(overlap)

    patterns = rng.random((p.bcm_patterns, p.bcm_dim))
    patterns /= np.linalg.norm(patterns, axis=1, keepdims=True)
    idx = rng.integers(0, p.bcm_patterns, p.bcm_samples)
    res = bcm(patterns[idx], rng.uniform(0.1, 0.3, p.bcm_dim), BCM(p.bcm_eta, p.bcm_tau_theta))
    resp = np.maximum(patterns @ res.w, 0.0)  # the unit is rectified
    tail = slice(int(0.8 * p.bcm_samples), None)
    sel = int(np.argmax(resp))

    fig, ax = plt.subplots(1, 3, figsize=(13, 3.6))
    ax[0].plot(np.arange(1, norms.size + 1) * every, norms)
    ax[0].axhline(1.0, ls="--", c="k", lw=0.8)
    ax[0].set(xlabel="samples", ylabel="|w|", title=f"Oja: |cos(w, u₁)| = {cos_oja:.4f}")
    im = ax[1].imshow(overlap, vmin=0, vmax=1, cmap="viridis")
    ax[1].set(xlabel="eigenvector (by eigenvalue)", ylabel="GHA unit", title="GHA |cos|")
    fig.colorbar(im, ax=ax[1])
    k = min(5000, p.bcm_samples)
    ax[2].plot(res.theta_trace[:k], label="θ_M")
    ax[2].plot(np.cumsum(res.y[:k] ** 2) / np.arange(1, k + 1), label="mean y² so far", lw=0.8)
    ax[2].axhline(p.bcm_patterns, ls="--", c="k", lw=0.8, label="closed form K")
    ax[2].set(xlabel="presentations", title=f"BCM responses {np.round(resp, 2)}")
    ax[2].legend(fontsize=7)
    ctx.save_figure(fig, "oja_gha_bcm")

    return {
        "oja_abs_cos_top_pc": cos_oja,
        "oja_norm": float(np.linalg.norm(w)),
        "gha_abs_cos": [float(c) for c in cos_gha],
        "gha_min_abs_cos": float(cos_gha.min()),
        "gha_norms": [float(v) for v in np.linalg.norm(wg, axis=1)],
        "bcm_responses": [float(v) for v in resp],
        "bcm_selected_pattern": sel,
        "bcm_selected_response": float(resp[sel]),
        "bcm_selected_response_theory": float(p.bcm_patterns),
        "bcm_theta_final_mean": float(res.theta_trace[tail].mean()),
        "bcm_mean_y2_final": float(np.mean(res.y[tail] ** 2)),
        "eigenvalues": [float(v) for v in evals[::-1]],
    }
