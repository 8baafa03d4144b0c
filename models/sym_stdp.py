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
from typing import Any

import numpy as np

from biolearn.config import param
from biolearn.engine import Network, PoissonSource, connect
from biolearn.models._mnist_stdp import (
    CLS,
    EXC,
    INH,
    INPUT,
    Output,
    Phase,
    Presentation,
    add_input_and_inhibition,
    lif,
    monitor_all,
    run_protocol,
)
from biolearn.registry import register
from biolearn.rules.stdp import SymmetricSTDP


@dataclass
class Excitatory:
    """Hidden excitatory LIF (Hao et al. code: forward Euler, GeNN exponential synapses)."""

    tau_m: float = param(100.0, "membrane time constant (ms)", min=0.1)
    v_rest: float = param(-65.0, "rest (mV)")
    v_reset: float = param(-65.0, "reset (mV)")
    v_thresh: float = param(-52.0, "threshold before adaptation (mV)")
    t_ref: float = param(2.0, "refractory period (ms)", min=0.0)
    tau_e: float = param(1.0, "excitatory conductance decay (ms)", min=0.01)
    tau_i: float = param(2.0, "inhibitory conductance decay (ms)", min=0.01)
    e_e: float = param(0.0, "excitatory reversal (mV)")
    e_i: float = param(-100.0, "inhibitory reversal (mV)")
    v_floor: float = param(-100.0, "voltage floor (mV)")
    theta_init: float = param(20.0, "initial θ (mV); spike when v > v_thresh + θ − 20")
    theta_plus: float = param(0.07, "θ₊: θ += θ₊·10/|θ − 10| per spike (0.07 for ≤1600 neurons)",
                              min=0.0)
    tau_theta: float = param(8e6, "θ decay (ms): 6e6 (100/400 in the paper), 8e6 (code)", min=1.0)


@dataclass
class Inhibitory:
    """Inhibitory LIF (Diehl & Cook 2015 / Hao et al.)."""

    tau_m: float = param(10.0, "membrane time constant (ms)", min=0.1)
    v_rest: float = param(-60.0, "rest (mV)")
    v_reset: float = param(-45.0, "reset (mV)")
    v_thresh: float = param(-40.0, "threshold (mV)")
    t_ref: float = param(2.0, "refractory period (ms)", min=0.0)
    tau_e: float = param(1.0, "E→I conductance decay (ms)", min=0.01)
    tau_i: float = param(2.0, "conductance decay (ms)", min=0.01)
    e_e: float = param(0.0, "excitatory reversal (mV)")
    e_i: float = param(-85.0, "inhibitory reversal (mV)")


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


@dataclass
class Plasticity:
    """Symmetric STDP and synaptic scaling constants (Hao et al. 2020, REFERENCES)."""

    eta_in: float = param(0.005, "input→E learning rate η (0.005 for 100/400 neurons, 0.02 "
                          "for 1600, 0.01 for 6400)", min=0.0)
    eta_class: float = param(0.04, "E→class learning rate η (0.08 for 1600 neurons in the "
                             "authors' code, 0.04 for the other sizes)", min=0.0)
    eta_final: float = param(1.0, "both learning rates fall linearly to this fraction of η over "
                             "each training phase (1 = constant, as in the paper)", min=0.0)
    trace_inc: float = param(0.1, "trace increment per spike", min=0.0)
    tau_trace: float = param(20.0, "trace time constant (ms)", min=0.1)
    w_max_in: float = param(1.0, "input→E weight bound", min=0.0)
    w_max_class: float = param(8.0, "E→class weight bound", min=0.0)
    w_init_in: float = param(0.3, "input→E initial weights U[0, w]", min=0.0)
    w_init_class: float = param(0.3, "E→class initial weights U[0, w]", min=0.0)
    norm_in: float = param(78.4, "each hidden neuron's input weights are scaled to this sum "
                           "before every image", min=0.0)
    norm_class_factor: float = param(0.1, "class neuron input sum = factor·N_exc·w_max_class",
                                     min=0.0)
    w_ei: float = param(10.4, "E→I weight (fixed)", min=0.0)
    w_ie: float = param(17.0, "I→E weight (fixed)", min=0.0)


@dataclass
class Params:
    n_exc: int = param(400, "hidden excitatory neurons (= inhibitory neurons)", min=1)
    training: str = param("joint", "joint: both layers learn together; layerwise: hidden layer "
                          "first, then E→class with the hidden layer frozen",
                          choices=["joint", "layerwise"])
    epochs: int = param(1, "passes over the training set (per phase when layerwise)", min=1)
    exc: Excitatory = param(factory=Excitatory)
    inh: Inhibitory = param(factory=Inhibitory)
    cls: ClassLayer = param(factory=ClassLayer)
    plasticity: Plasticity = param(factory=Plasticity)
    presentation: Presentation = param(factory=Presentation)
    output: Output = param(factory=Output)


def build(p: Params, rng: np.random.Generator) -> Network:
    """The network of Hao et al. 2020 on the biolearn engine."""
    n = p.n_exc
    pl = p.plasticity
    net = Network(dt=p.presentation.dt)
    net.add(PoissonSource(INPUT, 784))
    e = p.exc
    net.add(lif(EXC, n, e, integration="euler_expsyn", v_floor=e.v_floor, theta_rule="hao",
                theta_init=e.theta_init, theta_plus=e.theta_plus, tau_theta=e.tau_theta,
                theta_offset=20.0))
    net.add(lif(INH, n, p.inh, integration="euler_expsyn"))
    net.add(lif(CLS, 10, p.cls, integration="euler_expsyn"))
    rule_in = SymmetricSTDP(eta=pl.eta_in, tau=pl.tau_trace, inc=pl.trace_inc, w_max=pl.w_max_in)
    rule_cl = SymmetricSTDP(eta=pl.eta_class, tau=pl.tau_trace, inc=pl.trace_inc,
                            w_max=pl.w_max_class)
    net.connect(connect.dense("input_exc", INPUT, EXC, rng.uniform(0, pl.w_init_in, (784, n)),
                              target="e", rule=rule_in))
    add_input_and_inhibition(net, n, pl.w_ei, pl.w_ie)
    net.connect(connect.dense("exc_class", EXC, CLS, rng.uniform(0, pl.w_init_class, (n, 10)),
                              target="e", rule=rule_cl))
    monitor_all(net)
    return net


@register("sym_stdp", Params, "Hao et al. 2020: supervised symmetric STDP on MNIST")
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

    def before(s, label: int, hidden: bool = True, cls: bool = True) -> None:
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
        s.set_teacher(CLS, np.zeros(10) if teacher else None)
        s.set_plastic("input_exc", hidden)
        s.set_plastic("exc_class", cls)
        s.freeze_theta(EXC, theta_frozen)

    def test(s) -> None:
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
                  Phase("class", p.epochs, lambda s: plastic(s, False, True, True, True),
                        lambda s, y: before(s, y, False, True), sched)]
    return run_protocol(
        cfg, ctx, sim, phases, test_setup=test, label_setup=None, n_label=0, class_pop=CLS,
        weights=lambda: {"input_exc": sim.weights("input_exc"),
                         "exc_class": sim.weights("exc_class"),
                         "theta_exc": sim.theta[sim.slice(EXC)].copy()},
        w_in=lambda: sim.weights("input_exc"),
        attrs={"n_exc": p.n_exc, "units": "conductance / leak conductance", **attrs})
