"""Recipe ``pspm``: learn a recurrent LIF network that reproduces recorded spike trains with
Pre-Synaptic Pool Modification (Bagley, Bordelon, Moseley & Wessel 2020; rule in
:mod:`biolearn.rules.pspm`, argument in docs/pspm.md).

Ground truth: an all-to-all recurrent LIF network with random Gaussian weights ``W*`` (no
autapses), each neuron driven by its own frozen Poisson input train; by default the synapses are
instantaneous (``neuron.synapse = "delta"``: a spike jumps v by w, the discrete-time LIF that is
the deterministic counterpart of the PIF), optionally exponential currents (CUBA). Or a
probabilistic integrate-and-fire (PIF) network tuned to a branching ratio σ (critical at σ = 1,
Haldeman & Beggs 2005), whose spontaneous events are the student's input. Its spikes over
``duration_ms`` are the targets.

Student: the same LIF neurons and the same frozen input, weights drawn afresh from the same
distribution. Each epoch replays the recording on the biolearn engine in segments of
``update_every_ms``; after each segment PSPM updates W from that segment's misses and extras;
synaptic scaling acts on the rates counted over ``homeo_every_ms`` (default: the whole epoch).
Protocols: ``free`` — the student runs freely and its own spikes form the pre-synaptic pools;
``teacher`` — the recurrent input of the student is the target spike trains (teacher forcing) and
the pools are target spikes. After each epoch the student is run with frozen weights, both freely
and teacher-forced, and compared with the targets: van Rossum distance, ISI KS distance, Γ, rate
error, Pearson correlation of W with W*, avalanche size exponent and branching ratio.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from biolearn.analysis import avalanches as av
from biolearn.analysis import isi as isi_mod
from biolearn.analysis import spike_distances as sd
from biolearn.config import param, require_below
from biolearn.engine import (
    LIF,
    Network,
    NeuronModel,
    Neurons,
    SpikeMonitor,
    SpikeSource,
    connect,
)
from biolearn.errors import BiolearnError
from biolearn.registry import register
from biolearn.rules import pspm as rule_mod
from biolearn.rules.pspm import PSPMRule

Spikes = tuple[np.ndarray, np.ndarray]


@dataclass
class NeuronParams:
    """Current-based LIF (Brette et al. 2007 CUBA form), exact integration; ms and mV."""

    tau_m: float = param(20.0, "membrane time constant (ms)", min=0.1)
    tau_syn: float = param(5.0, "synaptic current time constant (ms)", min=0.1)
    v_rest: float = param(-70.0, "resting potential (mV)")
    v_thresh: float = param(-50.0, "threshold (mV)")
    v_reset: float = param(-70.0, "reset potential (mV)")
    t_ref: float = param(2.0, "refractory period (ms)", min=0.0)
    i_bias: float = param(15.0, "constant input R·I (mV), sub-threshold by itself")
    delay_ms: float = param(1.0, "recurrent synaptic delay (ms)", min=0.0)
    synapse: str = param("delta", "'delta': each spike jumps v by w (mV); 'current': w is the "
                         "jump of an exponential current with tau_syn (CUBA)",
                         choices=["delta", "current"])

    def validate(self) -> None:
        require_below(self, "v_reset", "v_thresh")


@dataclass
class PSPMParams:
    n_neurons: int = param(50, "neurons in the ground-truth and student networks", min=2)
    duration_ms: float = param(5000.0, "length of the target recording (ms)", min=10.0)
    dt_ms: float = param(0.1, "time step (ms)", min=0.001)
    epochs: int = param(20, "passes over the recording", min=0)
    protocol: str = param("teacher", "free-running student or teacher-forced recurrent input",
                          choices=["free", "teacher"])
    update_every_ms: float = param(250.0, "PSPM update interval within an epoch (ms)", min=1.0)
    homeo_every_ms: float = param(1e9, "interval over which rates are counted for one synaptic-"
                                  "scaling step (ms; rounded up to update_every_ms; default: "
                                  "once per epoch, scaling being slow)", min=1.0)
    ground_truth: str = param("lif", "target generator", choices=["lif", "pif"])
    input_rate_hz: float = param(20.0, "rate of each neuron's private frozen Poisson input",
                                 min=0.0)
    input_w: float = param(3.0, "input weight (mV; jump of v or of the synaptic current)")
    w_mean: float = param(0.0, "mean of the Gaussian ground-truth / initial weights (mV)")
    w_std: float = param(1.0, "std of the Gaussian ground-truth / initial weights (mV)", min=0.0)
    init: str = param("random", "student start: 'random' (fresh draw) or 'zero'",
                      choices=["random", "zero"])
    pif_sigma: float = param(1.0, "PIF branching ratio σ (row sums of W*; 1 = critical)", min=0.0)
    pif_leak: float = param(0.0, "PIF leak λ per 1 ms step (0: pure branching network)",
                            min=0.0, max=1.0)
    pif_drive_hz: float = param(0.5, "PIF spontaneous (external) rate per neuron", min=0.0)
    neuron: NeuronParams = field(default_factory=NeuronParams)
    rule: PSPMRule = field(default_factory=PSPMRule)
    tau_vr_ms: float = param(10.0, "van Rossum kernel time constant (ms)", min=0.01)
    coinc_ms: float = param(4.0, "coincidence window Δ of Γ (ms)", min=0.0)
    aval_xmin: int = param(1, "x_min of the avalanche-size power-law fit", min=1)
    aval_bin_ms: float = param(0.0, "avalanche bin width (ms); 0: the target's mean inter-event "
                               "interval (Beggs & Plenz 2003)", min=0.0)
    figures: bool = param(True, "write PNG figures")

    def validate(self) -> None:
        require_below(self, "rule.w_min", "rule.w_max", why="the weight bounds")
        require_below(self, "dt_ms", "update_every_ms", strict=False,
                      why="each update interval must hold at least one time step")


# ---------------------------------------------------------------------- networks
def poisson_input(n: int, rate_hz: float, duration_ms: float, dt: float,
                  rng: np.random.Generator) -> Spikes:
    """Frozen independent Poisson trains on the dt grid: ``(times_ms, ids)``, time-sorted."""
    steps = int(round(duration_ms / dt))
    k = rng.binomial(steps, min(rate_hz * dt / 1000.0, 1.0), size=n)
    ids = np.repeat(np.arange(n), k)
    st = np.concatenate([np.sort(rng.choice(steps, size=c, replace=False)) for c in k])
    order = np.argsort(st, kind="stable")
    return st[order] * dt, ids[order]


def random_weights(n: int, mean: float, std: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian all-to-all weights [pre, post] without autapses."""
    w = rng.normal(mean, std, (n, n))
    np.fill_diagonal(w, 0.0)
    return w


def build(n: int, w: np.ndarray, inp: Spikes, p: PSPMParams,
          forced: Spikes | None = None) -> tuple[Network, str]:
    """Engine network: input → net (one-to-one), recurrent W from ``net`` itself or, under
    teacher forcing, from a SpikeSource replaying ``forced`` spikes. Returns (network, W name)."""
    q = p.neuron
    net = Network(dt=p.dt_ms)
    net.add(SpikeSource("input", n, inp[1], inp[0]))
    net.add(LIF("net", n, synapse="current", integration="exact", tau_m=q.tau_m,
                v_rest=q.v_rest, v_reset=q.v_reset, v_thresh=q.v_thresh, t_ref=q.t_ref,
                tau_e=q.tau_syn, tau_i=q.tau_syn, i_bias=q.i_bias))
    tgt = "v" if q.synapse == "delta" else "e"
    net.connect(connect.one_to_one("in", "input", "net", n, p.input_w, target=tgt))
    pre = "net"
    if forced is not None:
        net.add(SpikeSource("forced", n, forced[1], forced[0]))
        pre = "forced"
    net.connect(connect.dense("W", pre, "net", w, delay=q.delay_ms, target=tgt))
    net.monitor(SpikeMonitor(["net"]))
    return net, "W"


def run_free(w: np.ndarray, inp: Spikes, p: PSPMParams, seed: int,
             forced: Spikes | None = None) -> Spikes:
    """Spikes of the network with weights ``w`` over the whole recording: freely running, or
    with its recurrent input replaced by ``forced`` spikes (teacher forcing)."""
    net, _ = build(p.n_neurons, w, inp, p, forced)
    sim = net.compile(seed)
    t, i = sim.run(p.duration_ms)["spikes"]["net"]
    return t, i.astype(np.int64)


#: Probabilistic integrate-and-fire neuron (Haldeman & Beggs 2005), one step = one generation.
#: ``u`` is the firing probability. Each step it leaks to ``lam·u`` (the discrete map is written
#: as the ODE whose forward-Euler step it is), then takes the recurrent input ``x`` that arrived
#: during the previous step (the target of W*); the neuron spikes with probability
#: ``clip(u, 0, 1)``, or for certain when an external event reached ``h`` during the previous
#: step. A spike resets ``u = 0``; ``t_ref = 2 dt`` keeps the neuron silent in the step after its
#: spike (a spike is allowed again once ``t − t_spike ≥ t_ref``, as in Brian2).
PIF = NeuronModel(
    name="pif",
    equations="""
        du/dt = -(1 - lam)*u/dt : 1
        x : 1    # recurrent input of this step
        h : 1    # external events of this step
        ext : 1  # 1: an external event drives the neuron now
    """,
    threshold="ext > 0.5 or rand() < clip(u, 0, 1)",
    reset="u = 0",
    refractory="t_ref",
    method="euler",
    after_update="u += x\nx = 0\next = h\nh = 0",
    parameters={"lam": 0.0, "t_ref": "2 ms"},
)


def pif_ground_truth(p: PSPMParams, rng: np.random.Generator
                     ) -> tuple[np.ndarray, Spikes, Spikes]:
    """Near-critical PIF targets: W* ≥ 0 uniform, rows scaled to sum σ; spikes on a 1 ms grid.

    ``u_i(t) = λ u_i(t−1)(1 − s_i(t−1)) + Σ_j W_ji s_j(t−1)``: neuron i spikes with probability
    ``clip(u_i, 0, 1)``, or when an external event (Poisson, ``pif_drive_hz``) reached it in the
    step before; a spike resets u_i and the neuron cannot fire in the next step. With λ = 0 each
    spike of j causes one of i with probability W_ji: a branching network with ratio
    σ = Σ_i W_ji (Haldeman & Beggs 2005, PRL 94:058101). Runs on the engine (:data:`PIF`).

    Returns (W*, all spikes, spontaneous spikes). The spontaneous spikes — those an external
    event caused — are the network's drive: they seed the avalanches and are what the student
    receives as its input."""
    n, dt = p.n_neurons, 1.0
    w = rng.uniform(0.0, 1.0, (n, n))
    np.fill_diagonal(w, 0.0)
    w *= p.pif_sigma / w.sum(axis=1, keepdims=True)
    # external events on the steps before the last: each one fires its neuron one step later
    ext = poisson_input(n, p.pif_drive_hz, p.duration_ms - dt, dt, rng)
    net = Network(dt=dt)
    net.add(SpikeSource("external", n, ext[1], ext[0]))
    net.add(Neurons("pif", n, PIF, params={"lam": p.pif_leak, "t_ref": 2 * dt}))
    net.connect(connect.one_to_one("drive", "external", "pif", n, 1.0, target="h"))
    net.connect(connect.dense("W", "pif", "pif", w, target="x"))
    net.monitor(SpikeMonitor(["pif"]))
    t, ids = net.compile(int(rng.integers(2**31))).run(p.duration_ms)["spikes"]["pif"]
    ids = ids.astype(np.int64)
    step = np.round(t / dt).astype(np.int64)
    caused = (np.round(ext[0] / dt).astype(np.int64) + 1) * n + ext[1]
    spont = np.isin(step * n + ids, caused)
    return w, (t, ids), (t[spont], ids[spont])


# ---------------------------------------------------------------------- training
def _window(sp: Spikes, lo: float, hi: float) -> Spikes:
    m = (sp[0] >= lo) & (sp[0] < hi)
    return sp[0][m], sp[1][m]


def train_epoch(w: np.ndarray, target: Spikes, inp: Spikes, p: PSPMParams,
                rng: np.random.Generator) -> tuple[np.ndarray, Spikes, dict]:
    """One pass over the recording with PSPM updates every ``update_every_ms``.

    Events (misses, extras) are judged once the ±w window around them has been simulated:
    a segment [t0, t1) judges events in [t0 − w, t1 − w) (the last one up to the end).
    Returns (new W, the student's spikes during the pass, counters)."""
    n, r = p.n_neurons, p.rule
    forced = target if p.protocol == "teacher" else None
    net, wname = build(n, w, inp, p, forced)
    sim = net.compile(int(rng.integers(2**31)))
    w = w.copy()
    ts, ids = [], []
    t0, h0, n_miss, n_extra = 0.0, 0.0, 0, 0
    seg = p.update_every_ms
    while t0 < p.duration_ms - 1e-9:
        t1 = min(t0 + seg, p.duration_ms)
        t, i = sim.run(t1 - t0)["spikes"]["net"]
        ts.append(t)
        ids.append(i.astype(np.int64))
        model = (np.concatenate(ts), np.concatenate(ids))
        lo = t0 - r.window_ms if t0 > 0 else -np.inf
        hi = t1 - r.window_ms if t1 < p.duration_ms - 1e-9 else np.inf
        pre = target if forced is not None else model
        dw = None
        if r.local:
            dw, miss, extra = rule_mod.local_update(target, model, pre, n, n, r,
                                                    int(rng.integers(2**31)), lo, hi)
            n_miss += int(miss.sum())
            n_extra += int(extra.sum())
        rate = target_rate = None
        if r.homeostatic and (t1 - h0 >= p.homeo_every_ms - 1e-9 or t1 >= p.duration_ms - 1e-9):
            span = (t1 - h0) / 1000.0
            rate = np.bincount(_window(model, h0, t1)[1], minlength=n) / span
            target_rate = np.bincount(_window(target, h0, t1)[1], minlength=n) / span
            h0 = t1
        w = rule_mod.apply(w, r, dw, rate, target_rate)
        sim.set_weights(wname, w)
        t0 = t1
    model = (np.concatenate(ts), np.concatenate(ids))
    return w, model, {"misses": n_miss, "extras": n_extra}


def compare(model: Spikes, target: Spikes, p: PSPMParams, w: np.ndarray | None = None,
            w_true: np.ndarray | None = None) -> dict:
    """Similarity of student and target spikes (and weights, if given)."""
    n, T = p.n_neurons, p.duration_ms
    vr = sd.van_rossum_population(model[0], model[1], target[0], target[1], n, p.tau_vr_ms)
    n_spk = model[0].size + target[0].size
    r_m = isi_mod.firing_rates(model[0], model[1], n, T)
    r_t = isi_mod.firing_rates(target[0], target[1], n, T)
    act = r_t > 0
    gam = sd.coincidence_factor_population(target[0], target[1], model[0], model[1], n,
                                           p.coinc_ms, T)
    out = {
        "van_rossum": float(vr.mean()),
        # D² summed over neurons per spike: 1 when nothing coincides (τ ≪ ISI), 0 when identical
        "van_rossum_norm": float(2 * np.sum(vr**2) / max(n_spk, 1)),
        "isi_ks": float(isi_mod.isi_distance(model[0], model[1], target[0], target[1], n)),
        "gamma": float(np.nanmean(gam)) if np.isfinite(gam).any() else float("nan"),
        "rate_model_hz": float(r_m.mean()),
        "rate_target_hz": float(r_t.mean()),
        "rate_error": float(np.mean(np.abs(r_m[act] - r_t[act]) / r_t[act])) if act.any()
        else float("nan"),
        "pop_rate_error": float(abs(r_m.sum() - r_t.sum()) / max(r_t.sum(), 1e-12)),
    }
    if w is not None and w_true is not None:
        off = ~np.eye(n, dtype=bool)
        out["weight_corr"] = float(np.corrcoef(w[off], w_true[off])[0, 1])
    # binned like the target (its mean inter-event interval unless aval_bin_ms is set)
    aval = avalanche_stats(model, p, p.aval_bin_ms or av.population_bin_width(target[0]))
    out.update({f"{k}_model": v for k, v in aval.items()})
    return out


def avalanche_stats(sp: Spikes, p: PSPMParams, bin_ms: float | None = None) -> dict:
    """Avalanche size exponent (ML, x_min = aval_xmin, x_max = largest size), branching ratio."""
    if sp[0].size < 10:
        return {"aval_exponent": float("nan"), "aval_exponent_se": float("nan"),
                "branching_ratio": float("nan"),
                "n_avalanches": 0, "bin_ms": float("nan")}
    a = av.avalanches(sp[0], bin_ms=bin_ms, t_start=0.0, t_stop=p.duration_ms)
    expo = se = float("nan")
    big = a.sizes[a.sizes >= p.aval_xmin]
    if big.size >= 20 and np.unique(big).size > 1:
        fit = av.powerlaw_fit(a.sizes, xmin=p.aval_xmin, xmax=float(a.sizes.max()))
        expo, se = fit.exponent, fit.sigma
    return {"aval_exponent": expo, "aval_exponent_se": se,
            "branching_ratio": av.branching_ratio(a.counts),
            "n_avalanches": int(a.sizes.size), "bin_ms": a.bin_ms}


def make_task(p: PSPMParams, rng: np.random.Generator
              ) -> tuple[np.ndarray, Spikes, Spikes, np.ndarray]:
    """(W*, frozen input, target spikes, student's initial W)."""
    n = p.n_neurons
    if p.ground_truth == "lif":
        inp = poisson_input(n, p.input_rate_hz, p.duration_ms, p.dt_ms, rng)
        w_true = random_weights(n, p.w_mean, p.w_std, rng)
        target = run_free(w_true, inp, p, int(rng.integers(2**31)))
    else:  # the student is given the PIF's external (spontaneous) events as its input
        w_true, target, inp = pif_ground_truth(p, rng)
    if target[0].size == 0:
        raise BiolearnError("the ground-truth network is silent", "in params",
                            "raise input_rate_hz, input_w, i_bias or w_mean")
    w0 = (random_weights(n, p.w_mean, p.w_std, rng) if p.init == "random"
          else np.zeros((n, n)))
    return w_true, inp, target, w0


def train(p: PSPMParams, rng: np.random.Generator, progress=None) -> dict:
    """Full experiment; returns history, final weights and spikes (no files written)."""
    w_true, inp, target, w = make_task(p, rng)
    seed_eval = int(rng.integers(2**31))
    hist = []

    def forced(w: np.ndarray) -> dict:
        """Teacher-forced distances (the quantity PSPM acts on), frozen weights."""
        m = compare(run_free(w, inp, p, seed_eval, target), target, p)
        return {f"forced_{k}": m[k] for k in ("van_rossum", "van_rossum_norm", "isi_ks", "gamma",
                                              "rate_error")}

    model = run_free(w, inp, p, seed_eval)
    first = compare(model, target, p, w, w_true)
    first.update(forced(w))
    first.update(epoch=0, misses=None, extras=None, epoch_s=0.0, epoch_cpu_s=0.0)
    hist.append(first)
    model0 = model
    for ep in range(1, p.epochs + 1):
        t0, c0 = time.perf_counter(), time.process_time()
        w, _, cnt = train_epoch(w, target, inp, p, rng)
        dt_train, cpu_train = time.perf_counter() - t0, time.process_time() - c0
        model = run_free(w, inp, p, seed_eval)
        m = compare(model, target, p, w, w_true)
        m.update(forced(w))
        m.update(epoch=ep, epoch_s=dt_train, epoch_cpu_s=cpu_train, **cnt)
        hist.append(m)
        if progress is not None:
            progress.update(1)
            progress.set_postfix(vr=f"{m['van_rossum']:.3f}", r=f"{m.get('weight_corr', 0):.2f}")
    return {"history": hist, "w": w, "w_true": w_true, "target": target, "model": model,
            "model0": model0, "input": inp}


# ---------------------------------------------------------------------- recipe
def _figures(ctx, res: dict, p: PSPMParams, tgt_stats: dict) -> None:
    import matplotlib.pyplot as plt

    h = res["history"]
    ep = [m["epoch"] for m in h]
    fig, ax = plt.subplots(1, 3, figsize=(13, 3.4))
    ax[0].plot(ep, [m["van_rossum_norm"] for m in h], marker=".",
               label="van Rossum (norm.), free run")
    ax[0].plot(ep, [m["forced_van_rossum_norm"] for m in h], marker=".",
               label="van Rossum, teacher-forced")
    ax[0].plot(ep, [m["isi_ks"] for m in h], marker=".", label="ISI KS")
    ax[0].plot(ep, [m["rate_error"] for m in h], marker=".", label="rate error")
    ax[0].set(xlabel="epoch", title="distance to target")
    ax[0].legend(fontsize=7)
    ax[1].plot(ep, [m["gamma"] for m in h], marker=".", label="Γ (free run)")
    ax[1].plot(ep, [m.get("weight_corr", np.nan) for m in h], marker=".", label="corr(W, W*)")
    ax[1].set(xlabel="epoch", ylim=(-0.2, 1.05), title="coincidence and weight recovery")
    ax[1].legend(fontsize=7)
    ax[2].plot(ep, [m["aval_exponent_model"] for m in h], marker=".", label="student")
    ax[2].axhline(tgt_stats["aval_exponent"], c="k", ls="--", lw=0.8, label="target")
    ax[2].set(xlabel="epoch", title="avalanche size exponent")
    ax[2].legend(fontsize=7)
    ctx.save_figure(fig, "pspm_curves")

    n = p.n_neurons
    off = ~np.eye(n, dtype=bool)
    fig, ax = plt.subplots(figsize=(4.2, 4))
    ax.plot(res["w_true"][off], res["w"][off], ".", ms=2, alpha=0.5)
    ax.set(xlabel="ground-truth W*", ylabel="learned W",
           title=f"r = {h[-1].get('weight_corr', np.nan):.2f}")
    ctx.save_figure(fig, "pspm_weights")

    fig, ax = plt.subplots(figsize=(4.6, 3.6))
    bw = tgt_stats["bin_ms"]
    for name, sp in (("target", res["target"]), ("student (start)", res["model0"]),
                     ("student (end)", res["model"])):
        if sp[0].size > 10:
            a = av.avalanches(sp[0], bin_ms=bw, t_start=0.0, t_stop=p.duration_ms)
            x, c = av.ccdf(a.sizes)
            st = avalanche_stats(sp, p, bw)
            ax.loglog(x, c, marker=".", ms=3, label=f"{name}: exponent "
                      f"{st['aval_exponent']:.2f}, σ {st['branching_ratio']:.2f}")
    ax.set(xlabel="avalanche size s", ylabel="P(S ≥ s)", title=f"{p.ground_truth} target, "
           f"rule {p.rule.mode}, bin {bw:.2f} ms")
    ax.legend(fontsize=7)
    ctx.save_figure(fig, "pspm_avalanches")

    fig, ax = plt.subplots(3, 1, figsize=(8, 6), sharex=True)
    span = min(p.duration_ms, 1000.0)
    for a_, (name, sp) in zip(ax, (("target", res["target"]), ("student start", res["model0"]),
                                  ("student end", res["model"])), strict=True):
        m = sp[0] < span
        a_.plot(sp[0][m], sp[1][m], "|", ms=2, c="k")
        a_.set_ylabel(name)
    ax[-1].set_xlabel("time (ms)")
    ctx.save_figure(fig, "pspm_rasters")


def _size_ks(a: Spikes, b: Spikes, p: PSPMParams, bin_ms: float) -> float:
    """KS distance between the avalanche size distributions of a and b (same bin width)."""
    if a[0].size < 2 or b[0].size < 2:
        return float("nan")
    sa = av.avalanches(a[0], bin_ms=bin_ms, t_start=0.0, t_stop=p.duration_ms).sizes
    sb = av.avalanches(b[0], bin_ms=bin_ms, t_start=0.0, t_stop=p.duration_ms).sizes
    return float(isi_mod.ks_distance(sa, sb))


@register("pspm", PSPMParams)
def run(cfg, ctx) -> dict:
    """PSPM: learn recurrent weights reproducing a ground-truth network's spike trains."""
    from biolearn.io.sonata import SpikeWriter
    from biolearn.io.store import save_weights

    p: PSPMParams = cfg.params
    t0 = time.perf_counter()
    bar = ctx.progress(p.epochs, "pspm epochs", unit="epoch")
    res = train(p, ctx.rng, bar)
    bar.close()
    h = res["history"]
    tgt = avalanche_stats(res["target"], p, p.aval_bin_ms or None)
    # the student's avalanches binned with the target's bin for a like-for-like comparison
    st_end = avalanche_stats(res["model"], p, tgt["bin_ms"])
    st_0 = avalanche_stats(res["model0"], p, tgt["bin_ms"])
    n = p.n_neurons
    with SpikeWriter(ctx.path("spikes.h5"), {"target": n, "student": n,
                                             "student_initial": n, "input": n}) as wr:
        for name, sp in (("target", res["target"]), ("student", res["model"]),
                         ("student_initial", res["model0"]), ("input", res["input"])):
            o = np.argsort(sp[0], kind="stable")
            wr.write(name, sp[0][o], sp[1][o])
    save_weights(ctx.path("weights.h5"), {"W": res["w"], "W_true": res["w_true"]},
                 {"rule": "pspm", "mode": p.rule.mode, "protocol": p.protocol})
    if p.figures:
        _figures(ctx, res, p, tgt)
    first, last = h[0], h[-1]
    keys = ("van_rossum", "van_rossum_norm", "isi_ks", "gamma", "rate_error", "pop_rate_error",
            "weight_corr", "forced_van_rossum", "forced_van_rossum_norm", "forced_rate_error",
            "forced_gamma")
    metrics = {f"{k}_initial": first.get(k) for k in keys}
    metrics.update({f"{k}_final": last.get(k) for k in keys})
    metrics.update({
        "van_rossum_reduction": 1.0 - last["van_rossum"] / max(first["van_rossum"], 1e-12),
        "forced_van_rossum_reduction": 1.0 - last["forced_van_rossum"]
        / max(first["forced_van_rossum"], 1e-12),
        "target_rate_hz": last["rate_target_hz"],
        "student_rate_hz": last["rate_model_hz"],
        "target_aval_exponent": tgt["aval_exponent"],
        "target_branching_ratio": tgt["branching_ratio"],
        "student_aval_exponent_initial": st_0["aval_exponent"],
        "target_aval_exponent_se": tgt["aval_exponent_se"],
        "student_aval_exponent_final": st_end["aval_exponent"],
        "student_aval_exponent_final_se": st_end["aval_exponent_se"],
        "student_branching_ratio_initial": st_0["branching_ratio"],
        "student_branching_ratio_final": st_end["branching_ratio"],
        "aval_bin_ms": tgt["bin_ms"],
        "mean_epoch_s": float(np.mean([m["epoch_s"] for m in h[1:]])) if len(h) > 1 else 0.0,
        "mean_epoch_cpu_s": float(np.mean([m["epoch_cpu_s"] for m in h[1:]])) if len(h) > 1
        else 0.0,
        "aval_size_ks_initial": _size_ks(res["model0"], res["target"], p, tgt["bin_ms"]),
        "aval_size_ks_final": _size_ks(res["model"], res["target"], p, tgt["bin_ms"]),
        "total_s": time.perf_counter() - t0,
        "history": h,
    })
    return metrics
