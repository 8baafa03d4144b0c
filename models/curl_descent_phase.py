"""Recipe ``curl_descent``: phase diagram of rule-flipped plasticity in student–teacher nets.

Ninou, Kadmon & Cayco-Gajic (NeurIPS 2025). For each activation and each layer (hidden or
readout), a fraction of that layer's neurons follows the sign-flipped rule
``ΔW_l = −η D_l δ_l preᵀ``; fraction 0 is gradient descent. Each run reports the final loss
(relative to the initial loss), whether it diverged, and the number of steps to reach the
convergence level. Output: ``curl_phase_diagram.png`` and ``phase_diagram.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from biolearn.config import Invalid, param, require_below
from biolearn.registry import register
from biolearn.rules.curl_descent import (
    curl_train,
    flip_signs,
    init_student,
    loss_and_grads,
    make_task,
)


@dataclass
class CurlDescentParams:
    n_in: int = param(200, "input dimension N", min=1)
    n_hidden: int = param(19, "hidden neurons of student and teacher", min=1)
    n_out: int = param(10, "output neurons", min=1)
    n_train: int = param(250, "fixed training samples P (paper's linear runs: 250)", min=1)
    activations: list[str] = param(factory=lambda: ["linear", "tanh"],
                                   help="φ of both layers, one sweep each",
                                   choices=["linear", "tanh", "relu"])
    layers: list[str] = param(factory=lambda: ["hidden", "readout"],
                              help="layer whose neurons are flipped", choices=["hidden", "readout"])
    fractions: list[float] = param(factory=lambda: [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0],
                                   help="flipped fractions of the chosen layer", min=0.0, max=1.0)
    n_seeds: int = param(1, "random sign patterns per point", min=1)
    lr: float = param(0.1, "learning rate η (paper's linear runs: 0.1)", min=0.0)
    n_steps: int = param(2000, "full-batch steps per run", min=1)
    init_scale: float = param(0.1, "student initial weight scale (relative to 1/√fan-in)",
                              min=0.0)
    start: str = param("small", "start from small random weights or from a perturbed GD "
                       "solution (probes the stability of the solution manifold)",
                       choices=["small", "solution"])
    converge_rel: float = param(1e-2, "converged when loss < converge_rel × initial loss",
                                min=0.0)
    blowup_rel: float = param(1e4, "diverged when loss > blowup_rel × initial loss", min=1.0)

    def validate(self) -> None:
        for key in ("activations", "layers", "fractions"):
            if not getattr(self, key):
                raise Invalid("{0} is empty: the sweep has no runs", key,
                              fix=f"list at least one value in {key}")
        require_below(self, "converge_rel", "blowup_rel",
                      why="a run cannot count as converged and diverged at once")
        if not self.converge_rel < 1.0:
            raise Invalid(f"{{0}} = {self.converge_rel:g} counts every run as converged at its "
                          "start (the loss must fall below converge_rel × the initial loss)",
                          "converge_rel", fix="use a value below 1, e.g. 0.01")


@register("curl_descent", CurlDescentParams)
def run(cfg, ctx) -> dict:
    """Final loss / divergence / time to converge vs flipped fraction, per layer and φ."""
    import matplotlib.pyplot as plt

    p: CurlDescentParams = cfg.params
    rng = ctx.rng
    sizes = {"hidden": p.n_hidden, "readout": p.n_out}
    rows = []
    summary: dict = {}
    bar = ctx.progress(len(p.activations) * len(p.layers) * len(p.fractions) * p.n_seeds,
                       "curl", unit="run")
    for act in p.activations:
        task = make_task(p.n_in, p.n_hidden, p.n_out, p.n_train, rng, activation=act)
        w1, w2 = init_student(task, p.n_hidden, rng, p.init_scale)
        l0 = loss_and_grads(task, w1, w2)[0]
        tol, blow = p.converge_rel * l0, p.blowup_rel * l0
        ones_h, ones_o = np.ones(p.n_hidden), np.ones(p.n_out)
        gd = curl_train(task, w1, w2, ones_h, ones_o, p.lr, p.n_steps, tol, blow)
        if p.start == "solution":
            w1 = gd.w1 + 1e-2 * rng.standard_normal(gd.w1.shape) / np.sqrt(p.n_in)
            w2 = gd.w2 + 1e-2 * rng.standard_normal(gd.w2.shape) / np.sqrt(p.n_hidden)
        summary[act] = {"initial_loss": float(l0), "gd_final_rel_loss": gd.final_loss / l0,
                        "gd_time_to_converge": gd.time_to_converge}
        for layer in p.layers:
            n = sizes[layer]
            for frac in p.fractions:
                k = int(round(frac * n))
                for _ in range(p.n_seeds):
                    d1 = flip_signs(p.n_hidden, k if layer == "hidden" else 0, rng)
                    d2 = flip_signs(p.n_out, k if layer == "readout" else 0, rng)
                    r = curl_train(task, w1, w2, d1, d2, p.lr, p.n_steps, tol, blow)
                    rows.append({"activation": act, "layer": layer, "fraction": float(frac),
                                 "n_flipped": k, "final_rel_loss": r.final_loss / l0,
                                 "diverged": r.diverged, "converged": r.time_to_converge >= 0,
                                 "time_to_converge": r.time_to_converge,
                                 "reaches_gd_loss": bool(r.final_loss <= 10 * gd.final_loss
                                                         + 1e-12)})
                    bar.update(1)
    bar.close()
    with open(ctx.path("phase_diagram.json"), "w") as fh:
        json.dump({"gd": summary, "runs": rows}, fh, indent=1)

    fig, axes = plt.subplots(2, len(p.activations), figsize=(4.6 * len(p.activations), 6.4),
                             squeeze=False)
    for j, act in enumerate(p.activations):
        for layer in p.layers:
            color = "C0" if layer == "hidden" else "C3"
            sel = [r for r in rows if r["activation"] == act and r["layer"] == layer]
            fr = np.array([r["fraction"] for r in sel])
            fl = np.array([r["final_rel_loss"] for r in sel])
            dv = np.array([r["diverged"] for r in sel])
            tc = np.array([r["time_to_converge"] for r in sel], dtype=float)
            fl_plot = np.where(dv, np.nan, fl)
            axes[0, j].semilogy(fr, fl_plot, "o-", c=color, label=f"{layer} flipped")
            if dv.any():
                axes[0, j].semilogy(fr[dv], np.full(dv.sum(), p.blowup_rel), "x", c=color,
                                    ms=9, label=f"{layer}: diverged")
            axes[1, j].plot(fr, np.where(tc >= 0, tc, np.nan), "o-", c=color, label=layer)
        axes[0, j].axhline(max(summary[act]["gd_final_rel_loss"], 1e-16), ls="--", c="k",
                           lw=0.8, label="GD")
        axes[0, j].axhline(p.converge_rel, ls=":", c="gray", lw=0.8, label="converged level")
        axes[0, j].set(title=f"φ = {act}", ylabel="final loss / initial loss")
        axes[1, j].set(xlabel="flipped fraction", ylabel="steps to converged level")
        axes[0, j].legend(fontsize=7)
    fig.suptitle(f"Curl descent: N={p.n_in}, H={p.n_hidden}, O={p.n_out}, P={p.n_train}, "
                 f"η={p.lr}, {p.n_steps} steps, start={p.start}", fontsize=10)
    ctx.save_figure(fig, "curl_phase_diagram")

    metrics: dict = {"gd": summary}
    for act in p.activations:
        for layer in p.layers:
            sel = [r for r in rows if r["activation"] == act and r["layer"] == layer]
            ok = [r["fraction"] for r in sel if r["reaches_gd_loss"]]
            bad = [r["fraction"] for r in sel if not r["reaches_gd_loss"]]
            # "reaches GD loss": final loss within 10× of plain gradient descent's
            metrics[f"{act}_{layer}_max_fraction_reaching_gd"] = max(ok) if ok else -1.0
            metrics[f"{act}_{layer}_min_fraction_failing"] = min(bad) if bad else -1.0
    metrics["n_runs"] = len(rows)
    return metrics
