"""Recipe ``foldiak_spiking``: a spiking Földiák (1990) network learns the 8×8 bars.

Poisson inputs (an "on" pixel fires at ``rate_on``), 16 current-based LIF outputs, a dense
feedforward projection and an all-but-self inhibitory lateral projection on the event-driven
engine. After each presentation (``t_present`` ms) the spike counts drive Földiák's rules
(eqs. 3–5, α 0.1, β 0.02, γ 0.02, p 1/8): Hebbian feedforward ``Δq = βy(x − q)``, anti-Hebbian
lateral ``Δw = −α(y_i y_j − p²)``, threshold ``Δθ ∝ γ(y − p)``; ``ff_rule: stdp`` learns the
feedforward weights with pair STDP plus synaptic scaling instead. Scored like ``foldiak_bars``:
single-bar probes, firing probability ≈ p, and whether each detector fires exactly when its bar is
present in fresh patterns. See :mod:`biolearn.rules.spiking_hebbian`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from biolearn.config import param
from biolearn.registry import register
from biolearn.rules.foldiak import bars
from biolearn.rules.spiking_hebbian import (
    SpikingFoldiak,
    SpikingFoldiakParams,
    bars_with_unique_detector,
    probe_bars,
    score_responses,
)


@dataclass
class FoldiakSpikingParams:
    n_train: int = param(5000, "bar patterns presented during learning", min=1)
    n_test: int = param(2000, "fresh bar patterns for the coding test", min=1)
    probe_repeats: int = param(10, "presentations of each single bar when probing", min=1)
    size: int = param(8, "grid side; 2·size bars", min=2)
    n_out: int = param(16, "output units (Földiák 1990: 16)", min=1)
    p_bar: float = param(0.125, "probability of each bar (Földiák 1990: 1/8)", min=0.0, max=1.0)
    alpha: float = param(0.1, "lateral anti-Hebbian rate α (Földiák 1990, eq. 3)", min=0.0)
    beta: float = param(0.02, "feedforward Hebbian rate β (eq. 4)", min=0.0, max=1.0)
    gamma: float = param(0.02, "threshold rate γ (eq. 5)", min=0.0)
    p: float = param(0.125, "target firing probability p", min=0.0, max=1.0)
    rate_on: float = param(200.0, "input rate of an 'on' pixel (Hz)", min=0.0)
    rate_off: float = param(0.0, "input rate of an 'off' pixel (Hz)", min=0.0)
    t_present: float = param(40.0, "presentation time (ms)", min=1.0)
    n_ref: float = param(2.0, "output spikes per presentation that mean y = 1", min=1e-6)
    u_unit: float = param(2.0, "mean depolarisation (mV) per unit of Földiák net input", min=0.0)
    lat_unit: float = param(4.0, "gi jump (mV) per output spike per unit lateral weight",
                            min=0.0)
    dt: float = param(0.5, "time step (ms)", min=1e-3, max=5.0)
    tau_m: float = param(10.0, "membrane time constant (ms)", min=0.1)
    tau_e: float = param(5.0, "excitatory synaptic time constant (ms)", min=0.1)
    tau_i: float = param(5.0, "inhibitory synaptic time constant (ms)", min=0.1)
    t_ref: float = param(2.0, "refractory period (ms)", min=0.0)
    ff_rule: str = param("count", "feedforward rule: Földiák eq. 4 on spike counts, or pair STDP "
                         "(Hebbian half) + synaptic scaling", choices=["count", "stdp"])
    stdp_a_plus: float = param(0.004, "STDP potentiation per post spike per unit pre trace (mV)",
                               min=0.0)
    stdp_tau_pre: float = param(20.0, "STDP pre trace time constant (ms)", min=0.1)
    ff_sum: float = param(21.0, "sum of each unit's feedforward weights kept by scaling (stdp); "
                          "8 + 56·(1 − (7/8)²) is Földiák's bar-detector fixed point", min=0.0)


@register("foldiak_spiking", FoldiakSpikingParams)
def run(cfg, ctx) -> dict:
    """Spiking Földiák network on bars: receptive fields, firing rate, test raster."""
    import matplotlib.pyplot as plt

    p: FoldiakSpikingParams = cfg.params
    rng = ctx.rng
    sp = SpikingFoldiakParams(
        alpha=p.alpha, beta=p.beta, gamma=p.gamma, p=p.p, rate_on=p.rate_on,
        rate_off=p.rate_off, t_present=p.t_present, n_ref=p.n_ref, u_unit=p.u_unit,
        lat_unit=p.lat_unit, dt=p.dt, tau_m=p.tau_m, tau_e=p.tau_e, tau_i=p.tau_i,
        t_ref=p.t_ref, ff_rule=p.ff_rule, stdp_a_plus=p.stdp_a_plus,
        stdp_tau_pre=p.stdp_tau_pre, ff_sum=p.ff_sum)
    net = SpikingFoldiak.create(p.size * p.size, p.n_out, rng, sp)
    x, _ = bars(p.n_train, rng, p.size, p.p_bar)
    chunk = max(p.n_train // 50, 1)
    bar = ctx.progress(p.n_train, "foldiak_spiking", unit="pattern")
    c_train = np.zeros((p.n_train, p.n_out), np.int64)
    t0 = time.perf_counter()
    for s in range(0, p.n_train, chunk):
        c_train[s:s + chunk] = net.present(x[s:s + chunk], learn=True)
        bar.update(min(chunk, p.n_train - s))
    bar.close()
    train_s = time.perf_counter() - t0

    k_on = max(p.n_ref / 2.0, 1.0)  # spikes for a unit to count as firing in a presentation
    resp = probe_bars(net, p.size, p.probe_repeats)
    score = score_responses(resp > 0.5)
    xt, present = bars(p.n_test, rng, p.size, p.p_bar)
    raster: list = []
    n_show = min(12, p.n_test)
    ct = np.concatenate([net.present(xt[:n_show], learn=False, spikes=raster),
                         net.present(xt[n_show:], learn=False)])
    yt = ct >= k_on
    det = score.unit_bar >= 0
    code_acc = float((yt[:, det] == present[:, score.unit_bar[det]]).mean()) if det.any() else 0.0
    if score.one_to_one:
        decoded = np.zeros_like(present)
        decoded[:, score.unit_bar] = yt
        exact = float(np.mean(np.all(decoded == present, axis=1)))
    else:
        exact = float("nan")
    on = present[:, score.unit_bar[det]]
    spikes_on = float(ct[:, det][on].mean()) if on.any() else float("nan")

    q = net.q
    cols = 8 if p.n_out >= 8 else p.n_out
    rows = int(np.ceil(p.n_out / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(1.3 * cols, 1.4 * rows + 0.4))
    for i, ax in enumerate(np.atleast_1d(axes).ravel()):
        ax.axis("off")
        if i < p.n_out:
            ax.imshow(q[i].reshape(p.size, p.size), cmap="gray_r", vmin=0, vmax=max(q.max(), 1))
            b = score.unit_bar[i]
            name = "—" if b < 0 else (f"row {b}" if b < p.size else f"col {b - p.size}")
            ax.set_title(name, fontsize=8)
    fig.suptitle(f"spiking Földiák ({p.ff_rule}): feedforward weights q_i (8×8 tiles)",
                 fontsize=10)
    ctx.save_figure(fig, "foldiak_spiking_receptive_fields")

    fig, ax = plt.subplots(figsize=(5, 3))
    win = max(p.n_train // 100, 1)
    rate = np.convolve((c_train >= k_on).mean(axis=1), np.ones(win) / win, mode="valid")
    ax.plot(rate)
    ax.axhline(p.p, ls="--", c="k", lw=0.8, label="p")
    ax.set(xlabel="pattern", ylabel="P(unit fires)", title="output activity during learning")
    ax.legend()
    ctx.save_figure(fig, "foldiak_spiking_rate")

    fig, ax = plt.subplots(figsize=(8, 3))
    for k, (tt, ids) in enumerate(raster):
        ax.plot(tt + k * p.t_present, ids, "|", c="k", ms=5)
        ax.axvline(k * p.t_present, c="0.8", lw=0.5)
        for b in np.flatnonzero(present[k]):
            u = np.flatnonzero(score.unit_bar == b)
            ax.plot(np.full(u.size, (k + 0.5) * p.t_present), u, "s", mfc="none", c="C3", ms=7)
    ax.set(xlabel="time (ms)", ylabel="output unit", ylim=(-0.5, p.n_out - 0.5),
           title="test patterns: output spikes (|) and detectors of the bars present (□)")
    ctx.save_figure(fig, "foldiak_spiking_raster")

    sim_ms = p.n_train * p.t_present
    return {
        "n_single_bar_detectors": score.n_detectors,
        "n_bars_covered": score.n_bars_covered,
        "n_bars_unique_detector": bars_with_unique_detector(score),
        "one_to_one": score.one_to_one,
        "unit_bar": [int(b) for b in score.unit_bar],
        "firing_probability_mean": float(yt.mean()),
        "firing_probability_per_unit": [float(v) for v in yt.mean(axis=0)],
        "target_p": p.p,
        "unit_code_accuracy": code_acc,
        "exact_pattern_code_fraction": exact,
        "detector_spikes_when_bar_present": spikes_on,
        "lateral_weight_mean": float(net.w[~np.eye(p.n_out, dtype=bool)].mean()),
        "theta_mean_mv": float(net.theta.mean()),
        "train_wall_s": train_s,
        "train_simulated_s": sim_ms / 1000.0,
        "presentations_per_s": p.n_train / train_s if train_s > 0 else float("nan"),
    }
