"""Supervised MNIST with symmetric STDP — Hao, Huang, Dong & Xu, Neural Networks 121:387 (2020).

784 Poisson inputs → N_exc conductance LIF (dynamic threshold) ⇄ N_inh LIF (E→I one-to-one,
I→E all-but-self) → 10 class neurons. Input→E and E→class learn with symmetric STDP (both spike
orders potentiate); synaptic scaling before every image is the only depression; during training
the label's class neuron is a 200 Hz Poisson teacher, at test the class neurons are LIF driven by
the hidden layer and the most active one is the prediction. Constants from the authors' GeNN code
(haoyz/sym-STDP-SNN), cited per field.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from biolearn import config
from biolearn.config import Invalid, param, require_below
from biolearn.engine import LIF, Network, PoissonSource, connect
from biolearn.protocols.image_stdp import (
    CLS,
    EXC,
    INH,
    INPUT,
    Output,
    Presentation,
    add_input_and_inhibition,
    lif,
    monitor_all,
)
from biolearn.protocols.trainer import Phase, run_protocol
from biolearn.registry import register
from biolearn.rules.stdp import SymmetricSTDP, genn_race_increments


@dataclass
class Excitatory:
    """Hidden excitatory LIF (Hao et al. code: forward Euler, GeNN exponential synapses)."""

    tau_m: float = param(100.0, "membrane time constant (ms)", min=0.1)
    v_rest: float = param(-65.0, "rest (mV)")
    v_reset: float = param(-65.0, "reset (mV)")
    v_thresh: float = param(-52.0, "threshold before adaptation (mV)")
    t_ref: float = param(2.0, "refractory period (ms); 3.0 reproduces the authors' Refrac 2 "
                         "timer at dt 0.5 ms (v held 5 steps), measured without effect "
                         "(docs/sym_stdp.md)", min=0.0)
    tau_e: float = param(1.0, "excitatory conductance decay (ms)", min=0.01)
    tau_i: float = param(2.0, "inhibitory conductance decay (ms)", min=0.01)
    e_e: float = param(0.0, "excitatory reversal (mV)")
    e_i: float = param(-100.0, "inhibitory reversal (mV)")
    v_floor: float = param(-100.0, "voltage floor (mV); -inf: no floor", allow_inf=True)
    theta_init: float = param(20.0, "initial θ (mV); spike when v > v_thresh + θ − 20")
    theta_plus: float = param(0.07, "θ₊: θ += θ₊·10/|θ − 10| per spike (0.07 for ≤1600 neurons)",
                              min=0.0)
    tau_theta: float = param(8e6, "θ decay (ms): 6e6 (100/400 in the paper), 8e6 (code); inf: "
                             "no decay", min=1.0, allow_inf=True)
    theta_precision: str = param("float64", "θ's arithmetic. float32: every step and spike "
                                 "rounded to single precision, as in the authors' GPU code "
                                 "(model.h: scalar float), where θ stops decaying for "
                                 "τθ ≥ dt·2^25 (1.68e7 ms at dt 0.5 ms); docs/sym_stdp.md",
                                 choices=["float64", "float32"])

    def validate(self) -> None:
        check_lif(self, theta_rule="hao")


@dataclass
class Inhibitory:
    """Inhibitory LIF (Diehl & Cook 2015 / Hao et al.)."""

    tau_m: float = param(10.0, "membrane time constant (ms)", min=0.1)
    v_rest: float = param(-60.0, "rest (mV)")
    v_reset: float = param(-45.0, "reset (mV)")
    v_thresh: float = param(-40.0, "threshold (mV)")
    t_ref: float = param(2.0, "refractory period (ms); 3.0 reproduces the authors' Refrac 2 "
                         "timer at dt 0.5 ms (v held 5 steps), measured without effect "
                         "(docs/sym_stdp.md)", min=0.0)
    tau_e: float = param(1.0, "E→I conductance decay (ms)", min=0.01)
    tau_i: float = param(2.0, "conductance decay (ms)", min=0.01)
    e_e: float = param(0.0, "excitatory reversal (mV)")
    e_i: float = param(-85.0, "inhibitory reversal (mV)")

    def validate(self) -> None:
        check_lif(self)


@dataclass
class ClassLayer:
    """Class neurons at test: LIF without refractoriness (Hao et al. code, LIF_cla)."""

    tau_m: float = param(10.0, "membrane time constant (ms)", min=0.1)
    v_rest: float = param(-60.0, "rest (mV)")
    v_reset: float = param(-45.0, "reset (mV)")
    v_thresh: float = param(-40.0, "threshold (mV)")
    t_ref: float = param(0.0, "refractory period (ms)", min=0.0)
    tau_e: float = param(1.0, "E→class conductance decay (ms)", min=0.01)
    e_e: float = param(0.0, "excitatory reversal (mV)")
    teacher_rate: float = param(200.0, "teacher Poisson rate of the label's neuron (Hz)", min=0.0)

    def validate(self) -> None:
        check_lif(self)


@dataclass
class Plasticity:
    """Symmetric STDP and synaptic scaling constants (Hao, Huang, Dong & Xu 2020, Neural Netw.
    121:387)."""

    eta_in: float = param(0.005, "input→E learning rate η (0.005 for 100/400 neurons, 0.02 "
                          "for 1600, 0.01 for 6400)", min=0.0)
    eta_class: float = param(0.04, "E→class learning rate η (0.08 for 1600 neurons in the "
                             "authors' code, 0.04 for the other sizes)", min=0.0)
    eta_final: float = param(1.0, "both learning rates fall linearly to this fraction of η over "
                             "each training phase (1 = constant, as in the paper)", min=0.0)
    trace_inc: float = param(0.1, "trace increment per spike", min=0.0)
    race_fraction: float = param(0.0, "emulates the authors' unsynchronised GPU trace writes "
                                 "(GeNN 2.2.2): a spike adds trace_inc·(1 + f·(W − 1)) with W "
                                 "the warps writing that trace, ceil(threads/32); 0 = the "
                                 "paper's rule, 1 = every warp's write survives "
                                 "(docs/sym_stdp.md)", min=0.0, max=1.0)
    tau_trace: float = param(20.0, "trace time constant (ms); the authors' Euler step is "
                             "19.75 ms, no measurable effect (docs/sym_stdp.md)", min=0.1)
    w_max_in: float = param(1.0, "input→E weight bound", min=0.0)
    w_max_class: float = param(8.0, "E→class weight bound", min=0.0)
    w_init_in: float = param(0.3, "input→E initial weights U[0, w]", min=0.0)
    w_init_class: float = param(0.3, "E→class initial weights U[0, w]", min=0.0)
    norm_in: float = param(78.4, "each hidden neuron's input weights are scaled to this sum "
                           "before every image", min=0.0)
    norm_class_factor: float = param(0.1, "class neuron input sum = factor·N_exc·w_max_class "
                                     "(the mean weight as a fraction of its bound)",
                                     min=0.0, max=1.0)
    w_ei: float = param(10.4, "E→I weight (fixed)", min=0.0)
    w_ie: float = param(17.0, "I→E weight (fixed)", min=0.0)

    def validate(self) -> None:
        require_below(self, "w_init_in", "w_max_in", strict=False,
                      why="initial weights are drawn from U[0, w_init_in]")
        require_below(self, "w_init_class", "w_max_class", strict=False,
                      why="initial weights are drawn from U[0, w_init_class]")
        check_norm(self, "norm_in", "w_max_in", N_INPUT)


@dataclass
class Params:
    n_exc: int = param(400, "hidden excitatory neurons (= inhibitory neurons)", min=1)
    training: str = param("joint", "joint: both layers learn together; layerwise: hidden layer "
                          "first, then E→class with the hidden layer frozen",
                          choices=["joint", "layerwise"])
    epochs: int = param(1, "passes over the training set (when layerwise: of the hidden phase, "
                        "and of the E→class phase unless class_epochs is set)", min=1)
    class_epochs: int | None = param(None, "passes of the E→class phase when layerwise (None = "
                                     "epochs); the authors' released build trains 20 on a frozen "
                                     "hidden layer (global.h, NUM_SAMPLES 60 000 × 20)", min=1)
    poisson_t_ref: float = param(0.0, "dead time (ms) of the input and teacher Poisson spikes; "
                                 "1.0 at dt 0.5 is the authors' GeNN code, which blocks the "
                                 "step after each spike (add_model.cc); +0.20 ± 0.15 points on "
                                 "the headline, within the seed spread (docs/sym_stdp.md)",
                                 min=0.0)
    scale_before_test: bool = param(False, "scale the input weights to norm_in before the test "
                                    "images too, as the authors' code does before every "
                                    "presentation (train.cc); the weights are frozen at test, so "
                                    "this undoes the last training image's growth; +0.40 ± 0.59 "
                                    "points on the headline (docs/sym_stdp.md)")
    exc: Excitatory = param(factory=Excitatory)
    inh: Inhibitory = param(factory=Inhibitory)
    cls: ClassLayer = param(factory=ClassLayer)
    plasticity: Plasticity = param(factory=Plasticity)
    presentation: Presentation = param(factory=Presentation)
    output: Output = param(factory=Output)

    def validate(self) -> None:
        if self.class_epochs is not None and self.training != "layerwise":
            raise Invalid("{0} is set but {1} = 'joint' has no E→class phase of its own",
                          "class_epochs", "training",
                          fix="set training: layerwise, or class_epochs: null")
        check_presentation(self)
        check_spike_populations(self, (INPUT, EXC, INH, CLS))
        check_memory(self.n_exc, 10)


# --------------------------------------------------------------------------------------------
# checks shared with diehl_cook (run on the config before anything is built)
# --------------------------------------------------------------------------------------------

N_INPUT = 784  # one Poisson input per MNIST pixel

#: Bytes a compiled network keeps per synapse and per neuron. Measured with tracemalloc on this
#: engine: n_exc 200 → 800 adds 69 MB for 1.08 M synapses (engine storage: indices, weight, delay,
#: column order; the Network description: indices and weights), i.e. 64 B per synapse; neuron
#: state (v, conductances, θ, traces, spike history) is a few hundred bytes per neuron.
BYTES_PER_SYNAPSE = 64
BYTES_PER_NEURON = 256


def stdp_synapses(n_exc: int, n_class: int) -> int:
    """Synapses of the network: input→E dense, E→I one-to-one, I→E all-but-self, E→class dense."""
    return N_INPUT * n_exc + n_exc + n_exc * (n_exc - 1) + n_exc * n_class


def stdp_memory_bytes(n_exc: int, n_class: int) -> int:
    """Lower estimate of the memory a network of ``n_exc`` hidden neurons needs."""
    neurons = N_INPUT + 2 * n_exc + n_class
    return stdp_synapses(n_exc, n_class) * BYTES_PER_SYNAPSE + neurons * BYTES_PER_NEURON


def check_memory(n_exc: int, n_class: int) -> None:
    """Refuse a network that cannot fit into the available memory, with the estimate."""
    total = config.machine_memory_bytes()
    need = stdp_memory_bytes(n_exc, n_class)
    if total is None or need <= total:
        return
    lo, hi = 1, n_exc  # largest n_exc that fits
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if stdp_memory_bytes(mid, n_class) <= total else (lo, mid - 1)
    raise Invalid(f"{{0}} = {n_exc:,} needs at least {config.format_bytes(need)} of memory "
                  f"({stdp_synapses(n_exc, n_class):,} synapses: I→E is all-to-all, so memory "
                  f"grows as n_exc²), more than the {config.format_bytes(total)} available",
                  "n_exc", fix=f"use at most n_exc: {lo:,} in that memory")


def check_lif(p: Any, theta_rule: str | None = None) -> None:
    """Cross-field checks of a conductance LIF section (reset, threshold, reversals, floor, θ).

    With an adaptive threshold (``theta_rule`` "add" or "hao") the neuron spikes at
    v > v_thresh + θ − 20 mV, θ starting at ``theta_init``. A conductance-based membrane stays
    below max(e_e, v_rest): a threshold at or above that can never be reached."""
    if hasattr(p, "e_i"):
        require_below(p, "e_i", "e_e", why="inhibition must pull the membrane down")
    top = max(p.e_e, p.v_rest)
    if theta_rule is None:
        require_below(p, "v_reset", "v_thresh")
        thr, keys, shown = p.v_thresh, ("v_thresh",), "{0}"
    else:
        thr = p.v_thresh + p.theta_init - 20.0
        keys, shown = ("v_thresh", "theta_init"), "{0} + {1} − 20"
        if not p.v_reset < thr:
            raise Invalid(f"{{2}} = {p.v_reset:g} must be below the initial threshold "
                          f"{shown} = {thr:g} mV", *keys, "v_reset",
                          fix="lower v_reset or raise v_thresh / theta_init")
    n = len(keys)
    if not thr < top:
        raise Invalid(f"the threshold {shown} = {thr:g} mV is not below max({{{n}}}, "
                      f"{{{n + 1}}}) = {top:g} mV, the highest potential a conductance-based "
                      "neuron reaches: it can never fire", *keys, "e_e", "v_rest",
                      fix="lower v_thresh or raise e_e")
    if hasattr(p, "v_floor"):
        require_below(p, "v_floor", "v_reset", strict=False,
                      why="v is clipped to the floor after every step")
        require_below(p, "v_floor", "v_rest", strict=False,
                      why="v is clipped to the floor after every step")
    if theta_rule is not None:
        gap = max(abs(p.theta_init - 10.0), 1e-3)  # the engine's theta_ten, theta_eps (mV)
        first = p.theta_plus if theta_rule == "add" else p.theta_plus * (10.0 / gap)
        if not thr + first < top:
            raise Invalid(f"{{0}} = {p.theta_plus:g} raises the threshold by {first:g} mV at the "
                          f"first spike, from {thr:g} mV to above max({{1}}, {{2}}) = {top:g} mV: "
                          "one spike would silence the neuron", "theta_plus", "e_e", "v_rest",
                          fix="use a θ₊ of a fraction of a mV (papers: 0.05–0.07)")


def check_norm(p: Any, norm: str, w_max: str, fan_in: int) -> None:
    """Synaptic scaling to a sum above fan_in × w_max would push weights past their bound."""
    s, w = getattr(p, norm), getattr(p, w_max)
    if s > fan_in * w:
        raise Invalid(f"{{0}} = {s:g} exceeds {fan_in} × {{1}} = {fan_in * w:g}: scaling the "
                      f"{fan_in} input weights of a neuron to that sum needs weights above "
                      "their bound", norm, w_max, fix=f"lower {norm} or raise {w_max}")


def check_presentation(p: Any) -> None:
    """The intensity ladder of ``p.presentation`` must end, and go upwards."""
    pr = p.presentation
    require_below(p, "presentation.intensity0", "presentation.max_intensity", strict=False,
                  why="the intensity is raised from intensity0 up to max_intensity",
                  fix="set max_intensity ≥ intensity0")
    if pr.min_spikes > 0 and pr.max_intensity > pr.intensity0 \
            and not pr.intensity0 + pr.intensity_step > pr.intensity0:
        raise Invalid(f"{{0}} = {pr.intensity_step:g} never raises the intensity from {{1}} = "
                      f"{pr.intensity0:g} to {{2}} = {pr.max_intensity:g}: an image that gives "
                      f"fewer than {{3}} = {pr.min_spikes} spikes would be presented forever",
                      "presentation.intensity_step", "presentation.intensity0",
                      "presentation.max_intensity", "presentation.min_spikes",
                      fix="use intensity_step > 0 (the papers: 1), or min_spikes: 0 to present "
                          "every image once")


def check_spike_populations(p: Any, names: tuple[str, ...]) -> None:
    """``output.spike_populations`` must name populations of the network."""
    pops = p.output.spike_populations
    for k, name in enumerate(pops or []):
        if name not in names:
            raise Invalid(f"{{0}} = {config._show(name)} is not a population of this network",
                          f"output.spike_populations[{k}]",
                          fix="choose from " + ", ".join(names) + ", or null for all")


def hidden_neurons(name: str, n: int, e: Excitatory) -> LIF:
    """The hidden layer's LIF as the authors' GeNN code runs it: forward Euler v, exact
    conductance decay after it, θ by their rule (in float32 if asked), the −100 mV floor."""
    return lif(name, n, e, integration="euler_expsyn", v_floor=e.v_floor,
               theta_rule="hao_f32" if e.theta_precision == "float32" else "hao",
               theta_init=e.theta_init, theta_plus=e.theta_plus, tau_theta=e.tau_theta,
               theta_offset=20.0)


def build(p: Params, rng: np.random.Generator) -> Network:
    """The network of Hao et al. 2020 on the biolearn engine."""
    n = p.n_exc
    pl = p.plasticity
    net = Network(dt=p.presentation.dt)
    net.add(PoissonSource(INPUT, 784, t_ref=p.poisson_t_ref))
    net.add(hidden_neurons(EXC, n, p.exc))
    net.add(lif(INH, n, p.inh, integration="euler_expsyn"))
    net.add(lif(CLS, 10, p.cls, integration="euler_expsyn"))
    pre_in, post_in = genn_race_increments(pl.trace_inc, N_INPUT, n, pl.race_fraction)
    pre_cl, post_cl = genn_race_increments(pl.trace_inc, n, 10, pl.race_fraction)
    rule_in = SymmetricSTDP(eta=pl.eta_in, tau=pl.tau_trace, inc=pre_in, inc_post=post_in,
                            w_max=pl.w_max_in)
    rule_cl = SymmetricSTDP(eta=pl.eta_class, tau=pl.tau_trace, inc=pre_cl, inc_post=post_cl,
                            w_max=pl.w_max_class)
    net.connect(connect.dense("input_exc", INPUT, EXC, rng.uniform(0, pl.w_init_in, (784, n)),
                              target="e", rule=rule_in))
    add_input_and_inhibition(net, n, pl.w_ei, pl.w_ie)
    net.connect(connect.dense("exc_class", EXC, CLS, rng.uniform(0, pl.w_init_class, (n, 10)),
                              target="e", rule=rule_cl))
    monitor_all(net)
    return net


def extendable(saved: dict, run_dir: Path) -> tuple[str, ...] | str:
    """The pass count ``--resume`` may raise (more passes of the last phase): ``params.epochs``
    when joint, ``params.class_epochs`` when layerwise with it set; else why not."""
    from biolearn.protocols.checkpoint import saved_extra
    from biolearn.runner import CHECKPOINT

    p = saved.get("params", {})
    if p.get("plasticity", {}).get("eta_final", 1.0) != 1.0:
        return "η falls over the passes given at the start (params.plasticity.eta_final)"
    if "phase_epochs" not in (saved_extra(run_dir / CHECKPOINT) or {}):
        return "its checkpoint, from an earlier version of biolearn, does not record its passes"
    if p.get("training") == "joint":
        return ("params.epochs",)
    if p.get("class_epochs") is not None:
        return ("params.class_epochs",)
    return "a layerwise run gets more passes through params.class_epochs, which it did not set"


@register("sym_stdp", Params, "Hao et al. 2020: supervised symmetric STDP on MNIST", build=build,
          extendable=extendable)
def run(cfg, ctx) -> dict:
    sim = build(cfg.params, ctx.rng).compile(seed=int(ctx.rng.integers(2**63)))
    return train_and_test(cfg, ctx, sim, {"model": "sym_stdp"})


def train_and_test(cfg, ctx, sim, attrs: dict,
                   hook: Callable[[Any, str], None] | None = None) -> dict:
    """The Hao et al. protocol on a compiled :func:`build` network (joint or layer-wise phases,
    scaling before every image, the η schedule, teacher, frozen test).

    ``hook(sim, event)`` lets synapse models outside the engine follow the weights: it is called
    with ``"pre_scaling"`` and ``"post_scaling"`` around each image's synaptic scaling and with
    ``"test"`` before the test phase (device synapses write their pulses there)."""
    p: Params = cfg.params
    pl = p.plasticity
    class_sum = pl.norm_class_factor * p.n_exc * pl.w_max_class
    teach = np.zeros(10)
    notify = hook or (lambda s, event: None)

    def before(s, label: int | None, hidden: bool = True, cls: bool = True) -> None:
        """Synaptic scaling (and the label's teacher) before a presentation."""
        notify(s, "pre_scaling")
        if hidden:
            s.normalize("input_exc", pl.norm_in)
        if cls:
            s.normalize("exc_class", class_sum)
            teach[:] = 0.0
            teach[label] = p.cls.teacher_rate
            s.set_rates(CLS, teach)
        notify(s, "post_scaling")

    def plastic(s, hidden: bool, cls: bool, teacher: bool, theta_frozen: bool) -> None:
        s.set_teacher(CLS, np.zeros(10) if teacher else None, t_ref=p.poisson_t_ref)
        s.set_plastic("input_exc", hidden)
        s.set_plastic("exc_class", cls)
        s.freeze_theta(EXC, theta_frozen)

    def test(s) -> None:
        if p.scale_before_test:  # frozen weights: scaling once is scaling before every image
            before(s, None, hidden=True, cls=False)
        notify(s, "test")
        plastic(s, False, False, False, True)

    def schedule(s, frac: float) -> None:
        for name in ("input_exc", "exc_class"):
            s.scale_learning_rate(name, 1.0 + (pl.eta_final - 1.0) * frac)

    sched = schedule if pl.eta_final != 1.0 else None
    if p.training == "joint":
        phases = [Phase("joint", p.epochs, lambda s: plastic(s, True, True, True, False),
                        before, sched)]
    else:
        phases = [Phase("hidden", p.epochs, lambda s: plastic(s, True, False, False, False),
                        lambda s, y: before(s, y, True, False), sched),
                  Phase("class", p.class_epochs or p.epochs,
                        lambda s: plastic(s, False, True, True, True),
                        lambda s, y: before(s, y, False, True), sched)]
    return run_protocol(
        cfg, ctx, sim, phases, test_setup=test, label_setup=None, n_label=0, class_pop=CLS,
        weights=lambda: {"input_exc": sim.weights("input_exc"),
                         "exc_class": sim.weights("exc_class"),
                         "theta_exc": sim.theta[sim.slice(EXC)].copy()},
        w_in=lambda: sim.weights("input_exc"),
        attrs={"n_exc": p.n_exc, "units": "conductance / leak conductance", **attrs})
