"""Recipe ``dam_mnist_sweep``: the feature-to-prototype transition of Krotov & Hopfield 2016.

The same DAM classifier (:mod:`biolearn.memory.dam_classifier`) is trained once per power n of
the rectified polynomial. Small n (2, 3) gives memories that are features shared by several
digits; large n (20, 30) gives memories that are prototypes of one digit (Krotov & Hopfield
2016, Sec. 4 and Fig. 2). Loss power m follows the paper's guidance (m = 2–4 at small n, m ≈ 30
at n = 20, 30). Besides the test error per n, the two label-free measures of the paper are
reported:

* classes per memory: how many label weights ξ_α^μ of a memory are positive (the classes it
  votes for); the paper finds > 40 % of memories voting for exactly one class at n = 30;
* dominant memories per decision: for each test image, the number of memories whose
  contribution F(ξ^μ·vv_α) − F(ξ^μ·uu) to the winning class is within 0.9 of the largest one
  (paper, n = 30: > 8000 of 10 000 test images have exactly one).

Writes ``memories_by_n.png`` (25 memories per n, as in the paper's Fig. 2) and per-n metrics.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from biolearn.config import param
from biolearn.registry import register


@dataclass
class SweepPoint:
    n: int = param(20, "power of the rectified polynomial F", min=1)
    m: int = param(30, "loss power Σ(c − t)^{2m} (paper: 2–4 for small n, ≈ 30 for n = 20, 30)",
                   min=1)
    T: float = param(540.0, "temperature, β = 1/Tⁿ (authors' notebook: 540)", min=1e-6)


def _default_points() -> list[SweepPoint]:
    return [SweepPoint(2, 3, 150.0), SweepPoint(3, 3, 200.0), SweepPoint(20, 30, 540.0),
            SweepPoint(30, 30, 540.0)]


@dataclass
class DAMSweepParams:
    points: list[SweepPoint] = param(factory=_default_points, help="(n, m, T) per trained network")
    K: int = param(100, "number of memories", min=1)
    epochs: int = param(20, "training epochs per n (a short run shows the regime)", min=1)
    eps0: float = param(0.04, "initial learning rate (Eq. 12)", min=0.0)
    eps_decay: float = param(0.998, "learning-rate factor per epoch (Eq. 12)", min=0.0, max=1.0)
    momentum: float = param(0.6, "momentum p (Eq. 13)", min=0.0, max=1.0)
    batch: int = param(1000, "minibatch size", min=1)
    n_show: int = param(25, "memories drawn per n", min=1)
    dtype: str = param("float32", "torch dtype", choices=["float32", "float64"])
    threads: int = param(1, "torch CPU threads", min=1)


def memory_contributions(W: np.ndarray, x: np.ndarray, n: int, labels: np.ndarray,
                         n_cls: int = 10) -> np.ndarray:
    """F(ξ^μ·vv_α) − F(ξ^μ·uu) (S, K) for class α = ``labels`` (scaled by a common factor)."""
    N = W.shape[1] - n_cls
    base = x @ W[:, :N].T - W[:, N:].sum(1)                        # labels all at −1
    up = base + 2.0 * W[:, N:].T[labels]                           # label α switched on
    s = max(float(np.abs(base).max()), float(np.abs(up).max()), 1e-12)
    return (np.maximum(up, 0) / s) ** n - (np.maximum(base, 0) / s) ** n


def regime_measures(W: np.ndarray, x: np.ndarray, pred: np.ndarray, n: int,
                    n_cls: int = 10) -> dict:
    """The paper's two label-free measures of the feature / prototype regime."""
    votes = (W[:, -n_cls:] > 0).sum(1)
    contrib = memory_contributions(W, x, n, pred, n_cls)
    top = contrib.max(1, keepdims=True)
    dominant = (contrib >= 0.9 * top).sum(1)
    return {
        "mean_classes_per_memory": float(votes.mean()),
        "fraction_memories_one_class": float(np.mean(votes == 1)),
        "mean_dominant_memories": float(dominant.mean()),
        "fraction_images_one_dominant_memory": float(np.mean(dominant == 1)),
    }


@register("dam_mnist_sweep", DAMSweepParams)
def run(cfg, ctx) -> dict:
    """Train the Krotov–Hopfield classifier for each n and draw the memories (torch)."""
    import matplotlib.pyplot as plt

    from biolearn.memory.dam_classifier import KHSchedule, pixels_to_pm1, predict_kh, train_kh
    from biolearn.models.dam_common import load_images
    from biolearn.models.dam_mnist import plot_memories

    p: DAMSweepParams = cfg.params
    xtr, ytr, xte, yte = load_images(cfg, ctx)
    Xtr, Xte = pixels_to_pm1(xtr), pixels_to_pm1(xte)
    ytr, yte = ytr.astype(np.int64), yte.astype(np.int64)
    results, weights = [], {}
    bar = ctx.progress(len(p.points) * p.epochs, "dam_mnist_sweep", unit="epoch")
    for pt in p.points:
        sched = KHSchedule(K=p.K, n=pt.n, m=pt.m, eps0=p.eps0, eps_decay=p.eps_decay,
                           momentum=p.momentum, T_start=pt.T, T_end=pt.T, T_ramp_epochs=0,
                           epochs=p.epochs, batch=p.batch, dtype=p.dtype)
        W, info = train_kh(Xtr, ytr, sched, seed=ctx.seed, threads=p.threads,
                           on_epoch=lambda ep, info: bar.update(1))
        pred = predict_kh(W, Xte, pt.n, pt.T)
        res = {"n": pt.n, "m": pt.m, "T": pt.T,
               "test_error_percent": 100.0 * float(np.mean(pred != yte)),
               "train_error_percent_last_epoch": 100.0 * info["train_error"][-1],
               "train_time_s": info["train_time_s"]}
        res.update(regime_measures(W.astype(np.float64), Xte, pred, pt.n))
        results.append(res)
        weights[f"n{pt.n}"] = W
    bar.close()
    np.savez_compressed(ctx.path("weights.npz"), **weights)

    fig, axes = plt.subplots(1, len(results), figsize=(4.2 * len(results), 4.8), squeeze=False)
    for ax, res in zip(axes[0], results, strict=True):
        plot_memories(ax, weights[f"n{res['n']}"], f"n = {res['n']}: test error "
                      f"{res['test_error_percent']:.1f} %", n_show=p.n_show)
    fig.suptitle(f"Krotov & Hopfield DAM memories after {p.epochs} epochs (K = {p.K}): "
                 "features (small n) → prototypes (large n)")
    ctx.save_figure(fig, "memories_by_n")
    best = min(results, key=lambda r: r["test_error_percent"])
    return {"test_accuracy": 1.0 - best["test_error_percent"] / 100.0, "best_n": best["n"],
            "epochs": p.epochs, "K": p.K, "per_n": results}
