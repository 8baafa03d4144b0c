"""Declarative front of the engine: populations, projections and monitors as plain dataclasses.

Nothing here touches Numba. A neuron population is a :class:`Neurons` of any
:class:`~biolearn.engine.definitions.NeuronModel` (or a :class:`LIF`, which picks the LIF
definition of its options); a plastic projection carries a
:class:`~biolearn.engine.definitions.SynapseModel` (or a rule object with ``definition`` and
``values()``). :meth:`Network.compile` turns the description into flat arrays run by kernels
generated from the definitions (:mod:`biolearn.engine.codegen`).
Units: ms, mV, pA, Hz; LIF conductances in units of the leak conductance (dimensionless).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from biolearn.engine.definitions import NeuronModel, SynapseModel, neuron_ir
from biolearn.engine.units import to_value
from biolearn.errors import BiolearnError

# Population kinds (shared with the kernels).
KIND_NEURONS, KIND_POISSON, KIND_SPIKES = 0, 1, 2
# Short names of projection targets (LIF): "e" → ge, "i" → gi.
TARGETS = {"e": "ge", "i": "gi"}


@dataclass
class Neurons:
    """A population of ``n`` neurons of a model definition.

    ``params`` overrides the model's parameter defaults (numbers in biolearn units, or strings /
    Brian2 quantities with units); ``init`` sets initial values of variables (scalar or one per
    neuron; default: the model's ``init``)."""

    name: str
    n: int
    model: NeuronModel
    params: dict = field(default_factory=dict)
    init: dict = field(default_factory=dict)

    kind = KIND_NEURONS

    @property
    def definition(self) -> NeuronModel:
        return self.model

    def values(self) -> dict:
        ir = neuron_ir(self.model)
        out = {p.name: p.default for p in ir.params}
        dims = {p.name: p.dim for p in ir.params}
        for k, v in self.params.items():
            if k not in out:
                raise BiolearnError(f"unknown parameter '{k}'", f"in population '{self.name}'",
                                    f"{self.model.name} has " + ", ".join(out))
            out[k] = float(to_value(v, dims[k], f"in population '{self.name}'.params['{k}']"))
        return out

    def initial(self) -> dict:
        """Initial values: variable → scalar, array or expression of parameters."""
        ir = neuron_ir(self.model)
        out = {v: self.model.init.get(v, 0.0) for v in ir.variables}
        for k, v in self.init.items():
            if k not in out:
                raise BiolearnError(f"unknown variable '{k}'", f"in population '{self.name}'.init",
                                    f"{self.model.name} has " + ", ".join(out))
            out[k] = v
        return out

    def validate(self) -> None:
        neuron_ir(self.model)
        self.values()
        self.initial()


@dataclass
class LIF:
    """Leaky integrate-and-fire population.

    Current-based (``synapse="current"``, Brette et al. 2007 CUBA):
    ``τm dv/dt = v_rest − v + ge + gi`` with ``ge``, ``gi`` in mV decaying with τe, τi.
    Conductance-based (``synapse="conductance"``, COBA; Diehl & Cook 2015):
    ``τm dv/dt = (v_rest − v) + ge (e_e − v) + gi (e_i − v)``, ge, gi in units of the leak
    conductance. ``integration="exact"`` integrates CUBA exactly and COBA by exponential Euler
    (conductances frozen over a step); ``"euler"`` is forward Euler (Brian2's ``euler``);
    ``"euler_expsyn"`` is forward Euler for v with exactly decaying ge, gi (GeNN's EXPDECAY
    synapses, as in Hao et al.'s code).

    Spikes when ``v > v_thresh + θ − theta_offset`` outside the refractory period; then v = v_reset.
    Adaptive threshold: ``theta_rule="add"`` (Diehl & Cook: θ += theta_plus per spike) or ``"hao"``
    (Hao et al. 2020: θ += theta_plus·10/|θ − 10|); θ decays to 0 with tau_theta (ms).
    ``"hao_f32"``: the same with θ kept in single precision, as in Hao et al.'s GPU code
    (:func:`biolearn.engine.neurons.lif_model`).
    ``v_floor`` bounds v from below (Hao et al.: −100 mV).
    """

    name: str
    n: int
    synapse: str = "conductance"
    integration: str = "euler"
    tau_m: float = 20.0
    v_rest: float = -60.0
    v_reset: float = -60.0
    v_thresh: float = -50.0
    t_ref: float = 5.0
    tau_e: float = 5.0
    tau_i: float = 10.0
    e_e: float = 0.0
    e_i: float = -80.0
    v_floor: float = -np.inf
    i_bias: float = 0.0  # constant input R·I in mV: τm dv/dt = v_rest + i_bias − v + …
    theta_rule: str = "none"
    theta_init: float = 0.0
    theta_plus: float = 0.0
    tau_theta: float = np.inf
    theta_offset: float = 0.0
    v_init: Any = None  # scalar or array; default v_rest
    ge_init: Any = 0.0
    gi_init: Any = 0.0

    kind = KIND_NEURONS

    @property
    def definition(self) -> NeuronModel:
        """The LIF definition of these options (:func:`biolearn.engine.neurons.lif_model`)."""
        from biolearn.engine.neurons import lif_model

        same = ""
        if self.synapse == "current" and self.integration == "exact":
            same = ("e" if self.tau_e == self.tau_m else "") + (
                "i" if self.tau_i == self.tau_m else "")
        return lif_model(self.synapse, self.integration, self.theta_rule,
                         bool(np.isfinite(self.v_floor)), same)

    @property
    def model(self) -> NeuronModel:
        return self.definition

    def values(self) -> dict:
        from biolearn.engine.neurons import LIF_PARAMETERS

        out = {p.name: p.default for p in neuron_ir(self.definition).params}
        for k in LIF_PARAMETERS:
            if hasattr(self, k):
                out[k] = float(getattr(self, k))
        return out

    def initial(self) -> dict:
        return {"v": self.v_rest if self.v_init is None else self.v_init, "ge": self.ge_init,
                "gi": self.gi_init, "theta": self.theta_init}

    def validate(self) -> None:
        for key, allowed in (("synapse", ("current", "conductance")),
                             ("integration", ("euler", "exact", "euler_expsyn")),
                             ("theta_rule", ("none", "add", "hao", "hao_f32"))):
            if getattr(self, key) not in allowed:
                raise BiolearnError(f"{key}={getattr(self, key)!r} is not supported",
                                    f"in population '{self.name}'",
                                    f"use one of {', '.join(allowed)}")
        if self.tau_m <= 0 or self.tau_e <= 0 or self.tau_i <= 0:
            raise BiolearnError("time constants must be positive", f"in population '{self.name}'",
                                "set tau_m, tau_e, tau_i > 0 ms")


@dataclass
class PoissonSource:
    """Independent Poisson spike sources; ``rates`` (Hz) can be swapped between runs.

    Spikes are drawn per time step with probability ``rate·dt`` (as Brian2's PoissonGroup) but
    event-driven: the number of steps to the next spike is geometric, so silent steps cost nothing.
    ``t_ref`` (ms) is a dead time with the neurons' convention (Brian2's ``refractory``): the next
    spike comes no sooner than ``round(t_ref/dt)`` steps after the last, and the per-step draws
    resume from there. ``t_ref = 2·dt`` is GeNN 2's Poisson neuron, which blocks the step after
    each spike: it fires at a fraction p/(1 + p) per step for p = rate·dt.
    """

    name: str
    n: int
    rates: Any = 0.0
    t_ref: float = 0.0

    kind = KIND_POISSON

    def validate(self) -> None:
        r = np.broadcast_to(np.asarray(self.rates, float), (self.n,))
        if np.any(r < 0) or not np.all(np.isfinite(r)):
            raise BiolearnError("rates must be finite and ≥ 0 Hz", f"in source '{self.name}'",
                                "check the rate array")
        check_dead_time(self.t_ref, f"in source '{self.name}'")

    def dead_steps(self, dt: float) -> int:
        """The dead time in whole steps (0 or 1: none)."""
        return dead_steps(self.t_ref, dt)


def check_dead_time(t_ref: Any, where: str) -> None:
    """A Poisson dead time (ms) must be a finite number ≥ 0."""
    if not (np.ndim(t_ref) == 0 and np.isfinite(t_ref) and t_ref >= 0):
        raise BiolearnError(f"t_ref={t_ref!r} must be one finite number ≥ 0 ms", where,
                            "set a dead time ≥ 0 (0 = none)")


def dead_steps(t_ref: float, dt: float) -> int:
    """A dead time (ms) in whole steps, rounded as refractory periods are."""
    return int(np.round(t_ref / dt))


@dataclass
class SpikeSource:
    """Spikes at given times (ms) from given neuron indices (like Brian2's SpikeGeneratorGroup)."""

    name: str
    n: int
    indices: Any = field(default_factory=lambda: np.zeros(0, np.int64))
    times: Any = field(default_factory=lambda: np.zeros(0))

    kind = KIND_SPIKES

    def validate(self) -> None:
        idx = np.asarray(self.indices)
        if len(idx) != len(np.asarray(self.times)):
            raise BiolearnError("indices and times differ in length", f"in source '{self.name}'",
                                "give one time per index")
        if len(idx) and (idx.min() < 0 or idx.max() >= self.n):
            raise BiolearnError("spike index out of range", f"in source '{self.name}'",
                                f"indices must lie in [0, {self.n})")


Population = Neurons | LIF | PoissonSource | SpikeSource


@dataclass
class Projection:
    """Synapses from ``pre`` to ``post`` given as explicit arrays (local indices).

    ``delay`` is in ms per synapse (rounded to steps) or a scalar. ``target`` names the post
    model's variable a spike increments by ``w`` (``"e"``/``"i"`` are short for LIF's ``ge``/``gi``;
    ``"v"``, ``"I_syn"``, …). ``rule`` is a :class:`SynapseModel` (its defaults) or an object with
    ``definition`` and ``values()`` (e.g. :class:`biolearn.rules.stdp.SymmetricSTDP`). A plastic
    projection must have one delay for all its synapses: its pre-synaptic plasticity runs when
    spikes arrive. Use the constructors in :mod:`biolearn.engine.connect` for common patterns.
    """

    name: str
    pre: str
    post: str
    i: np.ndarray
    j: np.ndarray
    w: np.ndarray
    delay: Any = 0.0
    target: str = "e"
    rule: Any = None
    dense_shape: tuple[int, int] | None = None  # set when i, j enumerate a full matrix

    def __post_init__(self) -> None:
        self.i = np.asarray(self.i, np.int64)
        self.j = np.asarray(self.j, np.int64)
        self.w = np.broadcast_to(np.asarray(self.w, np.float64), self.i.shape).copy()
        if not isinstance(self.target, str) or not self.target.isidentifier():
            raise BiolearnError(f"target {self.target!r} is not a variable name",
                                f"in projection '{self.name}'",
                                "name a variable of the post model, e.g. 'e', 'i', 'v'")
        if not (len(self.i) == len(self.j)):
            raise BiolearnError("i and j differ in length", f"in projection '{self.name}'",
                                "give one post index per pre index")

    @property
    def target_var(self) -> str:
        return TARGETS.get(self.target, self.target)

    def rule_spec(self) -> tuple[SynapseModel, dict] | None:
        """``(definition, parameter values)`` of the rule, or ``None`` for a static projection."""
        r = self.rule
        if r is None:
            return None
        from biolearn.engine.definitions import synapse_ir

        if isinstance(r, SynapseModel):
            d, vals = r, {}
        elif hasattr(r, "definition") and hasattr(r, "values"):
            d, vals = r.definition, dict(r.values())
        else:
            raise BiolearnError(f"rule {r!r} is not a synapse model",
                                f"in projection '{self.name}'",
                                "give a SynapseModel or a rule from biolearn.rules")
        ir = synapse_ir(d)
        out = {p.name: p.default for p in ir.params}
        dims = {p.name: p.dim for p in ir.params}
        for k, v in vals.items():
            if k not in out:
                raise BiolearnError(f"unknown parameter '{k}'", f"in the rule of projection "
                                    f"'{self.name}'", f"{d.name} has " + ", ".join(out))
            out[k] = float(to_value(v, dims[k], f"in projection '{self.name}'"))
        return d, out


@dataclass
class SpikeMonitor:
    """Record spikes of the named populations (all if ``None``)."""

    populations: list[str] | None = None


@dataclass
class StateMonitor:
    """Record a variable (``v``, ``ge``, ``theta``, ``w``, …) of some neurons every ``every``
    steps."""

    population: str
    variable: str = "v"
    neurons: Any = None  # local indices; default all
    every: int = 1


@dataclass
class Network:
    """A container of populations, projections and monitors; :meth:`compile` makes it runnable."""

    dt: float = 0.1
    populations: list = field(default_factory=list)
    projections: list = field(default_factory=list)
    monitors: list = field(default_factory=list)

    def add(self, pop: Any) -> Any:
        if any(p.name == pop.name for p in self.populations):
            raise BiolearnError(f"population '{pop.name}' exists already", "in Network.add",
                                "give every population a unique name")
        pop.validate()
        self.populations.append(pop)
        return pop

    def connect(self, proj: Projection) -> Projection:
        names = {p.name: p for p in self.populations}
        for side in (proj.pre, proj.post):
            if side not in names:
                raise BiolearnError(f"unknown population '{side}'",
                                    f"in projection '{proj.name}'",
                                    "add the population to the network first")
        post = names[proj.post]
        if post.kind != KIND_NEURONS:
            raise BiolearnError(f"'{proj.post}' cannot receive synapses",
                                f"in projection '{proj.name}'", "target a neuron population")
        variables = neuron_ir(post.definition).variables
        if proj.target_var not in variables:
            raise BiolearnError(f"'{proj.post}' ({post.definition.name}) has no variable "
                                f"'{proj.target_var}'", f"in projection '{proj.name}'",
                                "target one of " + ", ".join(variables))
        proj.rule_spec()
        npre, npost = names[proj.pre].n, names[proj.post].n
        if len(proj.i) and (proj.i.min() < 0 or proj.i.max() >= npre
                            or proj.j.min() < 0 or proj.j.max() >= npost):
            raise BiolearnError("synapse index out of range", f"in projection '{proj.name}'",
                                f"pre indices must lie in [0, {npre}), post in [0, {npost})")
        self.projections.append(proj)
        return proj

    def monitor(self, mon: Any) -> Any:
        self.monitors.append(mon)
        return mon

    def population(self, name: str) -> Any:
        for p in self.populations:
            if p.name == name:
                return p
        raise BiolearnError(f"unknown population '{name}'", "in Network",
                            "use one of " + ", ".join(p.name for p in self.populations))

    def compile(self, seed: int = 0, threads: int | None = None) -> Any:
        """Build the flat arrays and return a :class:`biolearn.engine.simulation.Simulation`
        (``threads``: kernel threads; ``None``: :func:`biolearn.engine.default_threads`)."""
        from biolearn.engine.simulation import Simulation

        return Simulation(self, seed, threads=threads)
