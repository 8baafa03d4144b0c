"""Recipe ``foldiak_spiking``: a spiking Földiák (1990) network learns the 8×8 bars.

Poisson inputs (an "on" pixel fires at ``rate_on_hz``), 16 current-based LIF outputs, a dense
feedforward projection and an all-but-self inhibitory lateral projection on the event-driven
engine. During each presentation (``t_present_ms``) the plastic projections count spikes; after
it Földiák's rules (eqs. 3–5, α 0.1, β 0.02, γ 0.02, p 1/8) act on the counts: Hebbian
feedforward ``Δq = βy(x − q)`` and anti-Hebbian lateral ``Δw = −α(y_i y_j − p²)`` as the
``update`` event of their rule definitions (:mod:`biolearn.rules.foldiak`), the threshold
``Δθ ∝ γ(y − p)`` on θ; ``ff_rule: stdp`` learns the feedforward weights with pair STDP plus
synaptic scaling instead. Scored like ``foldiak_bars``: single-bar probes, firing probability ≈ p,
and whether each detector fires exactly when its bar is present in fresh patterns.

:class:`SpikingFoldiak` builds the network from engine parts: Poisson inputs (pixel on →
``rate_on_hz``), current-based LIF outputs, a dense feedforward projection ``ff`` (target ``"e"``)
and an all-but-self inhibitory projection ``lat`` (target ``"i"``); each presentation resets the
membrane state (as Földiák's relaxation starts from ``y* = 0``), runs ``t_present_ms``, then
applies the three rules.

Trace-based variant (``ff_rule="stdp"``): the feedforward weights learn during the presentation
with the engine's additive :class:`biolearn.rules.stdp.PairSTDP` restricted to its Hebbian half
(``a_minus = 0``: on a post spike ``w += a_plus · x_pre``, Song, Miller & Abbott 2000), whose
mean change over a presentation is ``a_plus τ_pre r_pre n_post``, i.e. Hebbian in the rates.
Pair STDP has no postsynaptic-only term, so it cannot express the ``−β y q`` decay of eq. 4;
synaptic scaling after each presentation (each output's weights sum to ``ff_sum``) supplies the
competition instead (Hebb + normalisation, von der Malsburg 1973). ``ff_sum = 21`` is the sum of
Földiák's fixed point for a bar detector on 8×8 bars: ``8 + 56 · (1 − (7/8)²)``.

Units: ms, mV, Hz. ``u_unit`` is the mean depolarisation (mV) of one unit of Földiák's net input
``Σ q_ij x_j`` (one fully weighted "on" pixel): for a current-based LIF the mean of ``ge`` is
``w · r · τe`` per input, so the feedforward scale is ``u_unit / (r_on · τe)``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, fields

import numpy as np

from biolearn.config import param, require_below
from biolearn.data.synthetic import bars, bars_with_unique_detector, score_bars, single_bars
from biolearn.engine import LIF, Network, PoissonSource, Simulation, connect
from biolearn.errors import BiolearnError
from biolearn.registry import register
from biolearn.rules.foldiak import (
    UPDATE,
    CountAntiHebbian,
    CountHebbian,
    CountThreshold,
    apply_threshold,
    count_activity,
    lateral,
)
from biolearn.rules.stdp import PairSTDP


# ----------------------------------------------------------------------------- Földiák network
@dataclass(frozen=True)
class SpikingFoldiakParams:
    """Constants of the spiking Földiák network (learning rates from Földiák 1990)."""

    alpha: float = 0.1          # lateral anti-Hebbian rate (eq. 3)
    beta: float = 0.02          # feedforward Hebbian rate (eq. 4)
    gamma: float = 0.02         # threshold rate (eq. 5)
    p: float = 1.0 / 8.0        # target activity per presentation
    rate_on_hz: float = 200.0   # input rate of an "on" pixel
    rate_off_hz: float = 0.0    # input rate of an "off" pixel
    t_present_ms: float = 40.0  # per presentation
    n_ref: float = 2.0          # spikes that count as a fully active output (y = 1)
    u_unit: float = 2.0         # mV of mean depolarisation per unit of Földiák net input Σqx
    lat_unit: float = 4.0       # mV jump of gi per output spike per unit of |w|
    dt_ms: float = 0.5
    tau_m: float = 10.0         # ms
    tau_e: float = 5.0          # ms
    tau_i: float = 5.0          # ms
    t_ref: float = 2.0          # ms
    v_rest: float = -60.0       # mV
    v_thresh: float = -50.0     # mV (θ shifts it)
    ff_rule: str = "count"      # "count": CountHebbian; "stdp": PairSTDP + synaptic scaling
    stdp_a_plus: float = 0.004  # mV per post spike per unit pre trace ("stdp")
    stdp_tau_pre: float = 20.0  # ms, pre trace time constant ("stdp")
    ff_sum: float = 21.0        # Σ_i q_ij kept by synaptic scaling ("stdp"), Földiák units


@dataclass
class SpikingFoldiak:
    """A Földiák (1990) network of LIF neurons on the engine; see the module docstring."""

    sim: Simulation
    par: SpikingFoldiakParams
    n_in: int
    n_out: int

    @classmethod
    def create(cls, n_in: int, n_out: int, rng: np.random.Generator,
               par: SpikingFoldiakParams | None = None) -> SpikingFoldiak:
        """Feedforward weights ``w_scale · U[0, 1)`` (Földiák's random start), no lateral
        inhibition, θ = 0."""
        par = par or SpikingFoldiakParams()
        net = Network(dt=par.dt_ms)
        net.add(PoissonSource("input", n_in, rates=0.0))
        net.add(LIF("output", n_out, synapse="current", integration="exact", tau_m=par.tau_m,
                    tau_e=par.tau_e, tau_i=par.tau_i, t_ref=par.t_ref, v_rest=par.v_rest,
                    v_reset=par.v_rest, v_thresh=par.v_thresh))
        if par.ff_rule not in ("count", "stdp"):
            raise BiolearnError(f"ff_rule={par.ff_rule!r} is not supported",
                                "in SpikingFoldiakParams", "use 'count' or 'stdp'")
        heb, anti, _ = cls.rules_of(par)
        rule = heb
        if par.ff_rule == "stdp":  # Hebbian half of Song et al. 2000 pair STDP, no depression
            rule = PairSTDP(a_plus=par.stdp_a_plus, a_minus=0.0, tau_pre=par.stdp_tau_pre,
                            tau_post=par.stdp_tau_pre, w_min=0.0, w_max=np.inf)
        q0 = rng.random((n_in, n_out))
        net.connect(connect.dense("ff", "input", "output", cls.ff_scale(par) * q0, target="e",
                                  rule=rule))
        net.connect(lateral("lat", net.population("output"), anti))
        sim = net.compile(seed=int(rng.integers(2**31)))
        out = cls(sim, par, n_in, n_out)
        if par.ff_rule == "stdp":
            out.scale_ff()
        return out

    def scale_ff(self) -> None:
        """Synaptic scaling of the "stdp" variant: each output's feedforward weights sum to
        ``ff_sum`` (Földiák units)."""
        self.sim.normalize("ff", self.par.ff_sum * self.ff_scale(self.par))

    @staticmethod
    def ff_scale(par: SpikingFoldiakParams) -> float:
        """Feedforward weight (mV jump of ``ge``) of ``q = 1``: ``u_unit / (r_on τe)``."""
        return par.u_unit / (par.rate_on_hz / 1000.0 * par.tau_e)

    @classmethod
    def rules_of(cls, p: SpikingFoldiakParams
                 ) -> tuple[CountHebbian, CountAntiHebbian, CountThreshold]:
        """Földiák's three rules in engine units: an "on" input spikes ``r_on·T`` times per
        presentation, ``n_ref`` output spikes mean y = 1."""
        n_on = p.rate_on_hz / 1000.0 * p.t_present_ms
        return (CountHebbian(p.beta, cls.ff_scale(p), n_on, p.n_ref),
                CountAntiHebbian(p.alpha, p.p, p.lat_unit, p.n_ref),
                CountThreshold(p.gamma, p.p, p.u_unit))

    @property
    def rules(self) -> tuple[CountHebbian, CountAntiHebbian, CountThreshold]:
        return self.rules_of(self.par)

    @property
    def q(self) -> np.ndarray:
        """Feedforward weights in Földiák's units, ``[n_out, n_in]``."""
        return self.sim.weights("ff").T / self.ff_scale(self.par)

    @property
    def w(self) -> np.ndarray:
        """Lateral weights in Földiák's units (≤ 0, zero diagonal), ``[n_out, n_out]``."""
        q = self.sim.net.projections[self.sim.proj_index["lat"]]
        out = np.zeros((self.n_out, self.n_out))
        out[q.j, q.i] = -np.abs(self.sim.weights("lat")) / self.par.lat_unit
        return out

    @property
    def theta(self) -> np.ndarray:
        """Threshold shifts θ (mV)."""
        return self.sim.theta[self.sim.slice("output")].copy()

    def present(self, x: np.ndarray, learn: bool = True,
                spikes: list | None = None) -> np.ndarray:
        """Present the rows of ``x`` (pixel values in [0, 1]); returns the output spike counts
        ``[T, n_out]``. With ``learn`` the projections count spikes during a presentation and
        the three rules are applied after it (``update`` events of the count rules).
        If a list ``spikes`` is given, the output spikes of each presentation are appended to
        it as ``(times_ms, unit)`` with times relative to the presentation onset."""
        x = np.asarray(x, np.float64)
        if x.ndim != 2 or x.shape[1] != self.n_in:
            raise BiolearnError(f"inputs of shape {x.shape} do not match {self.n_in} inputs",
                                "in SpikingFoldiak.present", "pass [T, n_in] patterns")
        p, sim = self.par, self.sim
        thr = self.rules[2]
        counts = np.zeros((x.shape[0], self.n_out), np.int64)
        stdp = p.ff_rule == "stdp"
        sim.set_plastic("ff", learn)  # count rules count (STDP learns) only while learning
        sim.set_plastic("lat", learn)
        sim.set_recording(["output"], spikes is not None)
        for s in range(x.shape[0]):
            sim.reset_state()
            sim.set_rates("input", p.rate_off_hz + (p.rate_on_hz - p.rate_off_hz) * x[s])
            sim.reset_counts()
            t0 = sim.t * sim.dt
            out = sim.run(p.t_present_ms)
            if spikes is not None:
                tt, ids = out["spikes"]["output"]
                spikes.append((tt - t0, ids))
            n_out = sim.spike_counts("output")
            counts[s] = n_out
            if learn:
                if stdp:  # the weights changed on spikes during the run; rescale them
                    self.scale_ff()
                else:
                    sim.apply_event("ff", UPDATE)
                sim.apply_event("lat", UPDATE)
                apply_threshold(sim, "output", count_activity(n_out, p.n_ref), thr)
        return counts


def probe_bars(net: SpikingFoldiak, size: int = 8, repeats: int = 10) -> np.ndarray:
    """Fraction of ``repeats`` presentations of each single bar in which each unit fires at
    least ``n_ref/2`` spikes (no learning): ``[n_out, 2·size]``."""
    sb = np.repeat(single_bars(size), repeats, axis=0)
    c = net.present(sb, learn=False)
    act = c >= max(net.par.n_ref / 2.0, 1.0)
    return act.reshape(2 * size, repeats, net.n_out).mean(axis=1).T


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
    rate_on_hz: float = param(200.0, "input rate of an 'on' pixel (Hz)", min=0.0)
    rate_off_hz: float = param(0.0, "input rate of an 'off' pixel (Hz)", min=0.0)
    t_present_ms: float = param(40.0, "presentation time (ms)", min=1.0)
    n_ref: float = param(2.0, "output spikes per presentation that mean y = 1", min=1e-6)
    u_unit: float = param(2.0, "mean depolarisation (mV) per unit of Földiák net input", min=0.0)
    lat_unit: float = param(4.0, "gi jump (mV) per output spike per unit lateral weight",
                            min=0.0)
    dt_ms: float = param(0.5, "time step (ms)", min=1e-3, max=5.0)
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

    def validate(self) -> None:
        require_below(self, "rate_off_hz", "rate_on_hz", why="a bar's pixels must fire more "
                      "than the background", fix="lower rate_off_hz or raise rate_on_hz")
        require_below(self, "dt_ms", "t_present_ms", strict=False,
                      why="a presentation must hold at least one time step")


@register("foldiak_spiking", FoldiakSpikingParams)
def run(cfg, ctx) -> dict:
    """Spiking Földiák network on bars: receptive fields, firing rate, test raster."""
    import matplotlib.pyplot as plt

    p: FoldiakSpikingParams = cfg.params
    rng = ctx.rng
    # the network's constants are the config's keys of the same name
    sp = SpikingFoldiakParams(**{f.name: getattr(p, f.name) for f in fields(SpikingFoldiakParams)
                                 if hasattr(p, f.name)})
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
    score = score_bars(resp > 0.5)
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
        ax.plot(tt + k * p.t_present_ms, ids, "|", c="k", ms=5)
        ax.axvline(k * p.t_present_ms, c="0.8", lw=0.5)
        for b in np.flatnonzero(present[k]):
            u = np.flatnonzero(score.unit_bar == b)
            ax.plot(np.full(u.size, (k + 0.5) * p.t_present_ms), u, "s", mfc="none", c="C3",
                    ms=7)
    ax.set(xlabel="time (ms)", ylabel="output unit", ylim=(-0.5, p.n_out - 0.5),
           title="test patterns: output spikes (|) and detectors of the bars present (□)")
    ctx.save_figure(fig, "foldiak_spiking_raster")

    sim_ms = p.n_train * p.t_present_ms
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
