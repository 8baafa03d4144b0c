"""Unsupervised STDP on MNIST — Diehl & Cook, Front. Comput. Neurosci. 9:99 (2015).

784 Poisson inputs (rate = pixel/4 Hz) → N_exc conductance LIF with adaptive threshold ⇄ N_inh LIF
(E→I one-to-one, I→E all-but-self). Input→E learns with the Diehl & Cook pre/post trace rule;
column sums are normalised to 78 before each image. After training, each excitatory neuron is
labelled with the class it responds to most (a labelling pass with frozen weights) and a test
image is classified by the mean rate of each class's neurons. Constants from the authors' Brian
code (peter-u-diehl/stdp-mnist), cited per field.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from biolearn.config import param, require_below
from biolearn.engine import Network, PoissonSource, connect
from biolearn.models.sym_stdp import (
    N_INPUT,
    Inhibitory,
    check_lif,
    check_memory,
    check_norm,
    check_presentation,
    check_spike_populations,
)
from biolearn.protocols.image_stdp import (
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
from biolearn.rules.stdp import DiehlCookSTDP


@dataclass
class Excitatory:
    """Excitatory LIF of Diehl & Cook 2015 (Brian 'euler' integration)."""

    tau_m: float = param(100.0, "membrane time constant (ms)", min=0.1)
    v_rest: float = param(-65.0, "rest (mV)")
    v_reset: float = param(-65.0, "reset (mV)")
    v_thresh: float = param(-52.0, "threshold before adaptation (mV); spike at v > v_thresh + θ "
                            "− 20")
    t_ref: float = param(5.0, "refractory period (ms)", min=0.0)
    tau_e: float = param(1.0, "excitatory conductance decay (ms)", min=0.01)
    tau_i: float = param(2.0, "inhibitory conductance decay (ms)", min=0.01)
    e_e: float = param(0.0, "excitatory reversal (mV)")
    e_i: float = param(-100.0, "inhibitory reversal (mV)")
    v_floor: float = param(-100.0, "voltage floor (mV). Forward Euler at dt 0.5 ms is unstable "
                           "under strong inhibition: many I spikes at once make v oscillate "
                           "around E_i with growing amplitude and fire spuriously, which runs "
                           "away; flooring at E_i, as Hao et al.'s code does, removes that "
                           "artefact. -inf restores the unbounded equation", allow_inf=True)
    theta_init: float = param(20.0, "initial θ (mV)")
    theta_plus: float = param(0.05, "θ += theta_plus per spike (mV)", min=0.0)
    tau_theta: float = param(1e7, "θ decay (ms); inf: no decay", min=1.0, allow_inf=True)

    def validate(self) -> None:
        check_lif(self, theta_rule="add")


@dataclass
class Plasticity:
    nu_pre: float = param(1e-4, "depression on a pre spike: w −= nu_pre·x_post1", min=0.0)
    nu_post: float = param(1e-2, "potentiation on a post spike: w += nu_post·x_pre·x_post2",
                           min=0.0)
    tau_pre: float = param(20.0, "pre trace (ms)", min=0.1)
    tau_post1: float = param(20.0, "post1 trace (ms)", min=0.1)
    tau_post2: float = param(40.0, "post2 trace (ms)", min=0.1)
    w_max: float = param(1.0, "weight bound", min=0.0)
    w_init: float = param(0.3, "initial weights U[0, w]", min=0.0)
    norm: float = param(78.0, "column sum of input→E weights before each image", min=0.0)
    w_ei: float = param(10.4, "E→I weight", min=0.0)
    w_ie: float = param(17.0, "I→E weight", min=0.0)

    def validate(self) -> None:
        require_below(self, "w_init", "w_max", strict=False,
                      why="initial weights are drawn from U[0, w_init]")
        check_norm(self, "norm", "w_max", N_INPUT)


@dataclass
class Params:
    n_exc: int = param(400, "excitatory neurons (= inhibitory neurons)", min=1)
    epochs: int = param(1, "passes over the training set", min=1)
    n_label: int = param(10000, "training images used to label neurons (frozen weights)", min=0)
    exc: Excitatory = param(factory=Excitatory)
    inh: Inhibitory = param(factory=Inhibitory)
    plasticity: Plasticity = param(factory=Plasticity)
    presentation: Presentation = param(factory=Presentation)
    output: Output = param(factory=Output)

    def validate(self) -> None:
        check_presentation(self)
        check_spike_populations(self, (INPUT, EXC, INH))
        check_memory(self.n_exc, 0)


def build(p: Params, rng: np.random.Generator) -> Network:
    """The network of Diehl & Cook 2015 on the biolearn engine."""
    n, pl, e = p.n_exc, p.plasticity, p.exc
    net = Network(dt=p.presentation.dt)
    net.add(PoissonSource(INPUT, 784))
    net.add(lif(EXC, n, e, integration="euler", v_floor=e.v_floor, theta_rule="add",
                theta_init=e.theta_init,
                theta_plus=e.theta_plus, tau_theta=e.tau_theta, theta_offset=20.0))
    net.add(lif(INH, n, p.inh, integration="euler"))
    rule = DiehlCookSTDP(nu_pre=pl.nu_pre, nu_post=pl.nu_post, tau_pre=pl.tau_pre,
                         tau_post1=pl.tau_post1, tau_post2=pl.tau_post2, w_max=pl.w_max)
    net.connect(connect.dense("input_exc", INPUT, EXC, rng.uniform(0, pl.w_init, (784, n)),
                              target="e", rule=rule))
    add_input_and_inhibition(net, n, pl.w_ei, pl.w_ie)
    monitor_all(net)
    return net


@register("diehl_cook", Params, "Diehl & Cook 2015: unsupervised STDP on MNIST, label read-out",
          build=build)
def run(cfg, ctx) -> dict:
    p: Params = cfg.params
    sim = build(p, ctx.rng).compile(seed=int(ctx.rng.integers(2**63)))

    def train(s) -> None:
        s.set_plastic("input_exc", True)
        s.freeze_theta(EXC, False)

    def frozen(s) -> None:
        s.set_plastic("input_exc", False)
        s.freeze_theta(EXC, True)

    def before(s, label: int) -> None:
        s.normalize("input_exc", p.plasticity.norm)

    return run_protocol(
        cfg, ctx, sim, [Phase("train", p.epochs, train, before)], test_setup=frozen,
        label_setup=frozen, n_label=p.n_label, class_pop=None,
        weights=lambda: {"input_exc": sim.weights("input_exc"),
                         "theta_exc": sim.theta[sim.slice(EXC)].copy()},
        w_in=lambda: sim.weights("input_exc"),
        attrs={"model": "diehl_cook", "n_exc": p.n_exc})
