"""Recipe ``foldiak_bars``: Földiák (1990) anti-Hebbian sparse coding on the 8×8 bars problem.

16 output units with Hebbian feedforward weights, anti-Hebbian lateral weights and adaptive
thresholds (eqs. 1–5 of Földiák 1990, constants α 0.1, β 0.02, γ 0.02, p 1/8, λ 10) are trained on
bar images (each of the 16 bars present with probability 1/8). Scored on single-bar probes (each
unit should respond to exactly one bar, all bars covered), on fresh test patterns (does each unit
fire exactly when its bar is present?) and on the firing probability (≈ p).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from biolearn.config import param
from biolearn.data.synthetic import bars, score_bars, single_bars
from biolearn.registry import register
from biolearn.rules.foldiak import FoldiakNet, FoldiakRule, foldiak_present


@dataclass
class FoldiakParams:
    n_train: int = param(20000, "bar patterns presented during learning", min=1)
    n_test: int = param(5000, "fresh bar patterns for the coding test", min=1)
    size: int = param(8, "grid side; 2·size bars", min=2)
    n_out: int = param(16, "output units (Földiák 1990: 16)", min=1)
    p_bar: float = param(0.125, "probability of each bar (Földiák 1990: 1/8)", min=0.0, max=1.0)
    alpha: float = param(0.1, "lateral anti-Hebbian rate α (eq. 3)", min=0.0)
    beta: float = param(0.02, "feedforward Hebbian rate β (eq. 4)", min=0.0)
    gamma: float = param(0.02, "threshold rate γ (eq. 5)", min=0.0)
    p: float = param(0.125, "target firing probability p", min=0.0, max=1.0)
    lam: float = param(10.0, "sigmoid steepness λ (eq. 1)", min=0.0)
    dt: float = param(0.1, "Euler step of the activity relaxation (units of its time constant)",
                      min=1e-3, max=1.0)
    max_iter: int = param(300, "relaxation steps per pattern at most", min=1)


def probe_bars(net: FoldiakNet, size: int = 8) -> np.ndarray:
    """Binary response of each unit to each single bar (no learning): ``[n_out, 2·size]``."""
    return foldiak_present(net, single_bars(size), learn=False).T


@register("foldiak_bars", FoldiakParams)
def run(cfg, ctx) -> dict:
    """Földiák network learns one detector per bar; tiles of the learned receptive fields."""
    import matplotlib.pyplot as plt

    p: FoldiakParams = cfg.params
    rng = ctx.rng
    net = FoldiakNet.create(p.size * p.size, p.n_out, rng,
                            FoldiakRule(alpha=p.alpha, beta=p.beta, gamma=p.gamma, p=p.p,
                                        lam=p.lam, dt=p.dt, max_iter=p.max_iter))
    x, _ = bars(p.n_train, rng, p.size, p.p_bar)
    chunk = max(p.n_train // 50, 1)
    bar = ctx.progress(p.n_train, "foldiak", unit="pattern")
    y_train = np.zeros((p.n_train, p.n_out))
    for s in range(0, p.n_train, chunk):
        y_train[s:s + chunk] = foldiak_present(net, x[s:s + chunk], learn=True)
        bar.update(min(chunk, p.n_train - s))
    bar.close()

    score = score_bars(probe_bars(net, p.size))
    xt, present = bars(p.n_test, rng, p.size, p.p_bar)
    yt = foldiak_present(net, xt, learn=False)
    det = score.unit_bar >= 0
    code_acc = float((yt[:, det] == present[:, score.unit_bar[det]]).mean()) if det.any() else 0.0
    # pattern-level: the set of active units equals the set of present bars' detectors
    if score.one_to_one:
        decoded = np.zeros_like(present)
        decoded[:, score.unit_bar] = yt.astype(bool)
        exact = float(np.mean(np.all(decoded == present, axis=1)))
    else:
        exact = float("nan")

    cols = 8 if p.n_out >= 8 else p.n_out
    rows = int(np.ceil(p.n_out / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(1.3 * cols, 1.4 * rows + 0.4))
    for i, ax in enumerate(np.atleast_1d(axes).ravel()):
        ax.axis("off")
        if i < p.n_out:
            ax.imshow(net.q[i].reshape(p.size, p.size), cmap="gray_r", vmin=0, vmax=1)
            b = score.unit_bar[i]
            name = "—" if b < 0 else (f"row {b}" if b < p.size else f"col {b - p.size}")
            ax.set_title(name, fontsize=8)
    fig.suptitle("Földiák 1990: learned feedforward weights q_i (8×8 tiles)", fontsize=10)
    ctx.save_figure(fig, "foldiak_receptive_fields")

    fig, ax = plt.subplots(figsize=(5, 3))
    win = max(p.n_train // 100, 1)
    rate = np.convolve(y_train.mean(axis=1), np.ones(win) / win, mode="valid")
    ax.plot(rate)
    ax.axhline(p.p, ls="--", c="k", lw=0.8, label="p")
    ax.set(xlabel="pattern", ylabel="mean firing probability", title="output activity")
    ax.legend()
    ctx.save_figure(fig, "foldiak_rate")

    return {
        "n_single_bar_detectors": score.n_detectors,
        "n_bars_covered": score.n_bars_covered,
        "one_to_one": score.one_to_one,
        "unit_bar": [int(b) for b in score.unit_bar],
        "firing_probability_mean": float(yt.mean()),
        "firing_probability_per_unit": [float(v) for v in yt.mean(axis=0)],
        "target_p": p.p,
        "unit_code_accuracy": code_acc,
        "exact_pattern_code_fraction": exact,
        "lateral_weight_mean": float(net.w[~np.eye(p.n_out, dtype=bool)].mean()),
    }
