"""Declarative front of the engine: populations, projections and monitors as plain dataclasses.

Nothing here touches Numba. :meth:`Network.compile` turns the description into flat arrays
(:mod:`biolearn.engine.compile`) run by the kernels in :mod:`biolearn.engine.kernels`.
Units: ms, mV, Hz; conductances in units of the leak conductance (dimensionless).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from biolearn.errors import BiolearnError
from biolearn.rules.stdp import STDPRule

# Population kinds (shared with the kernels).
KIND_LIF, KIND_POISSON, KIND_SPIKES = 0, 1, 2
# Synapse models and integration methods of LIF populations.
CURRENT, CONDUCTANCE = 0, 1
EULER, EXACT = 0, 1
# Threshold adaptation rules.
THETA_NONE, THETA_ADD, THETA_HAO = 0, 1, 2
# Targets of a projection.
TARGETS = {"e": 0, "i": 1, "v": 2}


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

    kind = KIND_LIF

    def validate(self) -> None:
        for key, allowed in (("synapse", ("current", "conductance")),
                             ("integration", ("euler", "exact", "euler_expsyn")),
                             ("theta_rule", ("none", "add", "hao"))):
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
    """

    name: str
    n: int
    rates: Any = 0.0

    kind = KIND_POISSON

    def validate(self) -> None:
        r = np.broadcast_to(np.asarray(self.rates, float), (self.n,))
        if np.any(r < 0) or not np.all(np.isfinite(r)):
            raise BiolearnError("rates must be finite and ≥ 0 Hz", f"in source '{self.name}'",
                                "check the rate array")


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


Population = LIF | PoissonSource | SpikeSource


@dataclass
class Projection:
    """Synapses from ``pre`` to ``post`` given as explicit arrays (local indices).

    ``delay`` is in ms per synapse (rounded to steps) or a scalar. ``target`` is ``"e"``
    (ge += w), ``"i"`` (gi += w) or ``"v"`` (v += w). A plastic projection (``rule`` set) must
    have one delay for all its synapses: its pre-synaptic plasticity runs when spikes arrive.
    Use the constructors in :mod:`biolearn.engine.connect` for common patterns.
    """

    name: str
    pre: str
    post: str
    i: np.ndarray
    j: np.ndarray
    w: np.ndarray
    delay: Any = 0.0
    target: str = "e"
    rule: STDPRule | None = None
    dense_shape: tuple[int, int] | None = None  # set when i, j enumerate a full matrix

    def __post_init__(self) -> None:
        self.i = np.asarray(self.i, np.int64)
        self.j = np.asarray(self.j, np.int64)
        self.w = np.broadcast_to(np.asarray(self.w, np.float64), self.i.shape).copy()
        if self.target not in TARGETS:
            raise BiolearnError(f"target {self.target!r} is not supported",
                                f"in projection '{self.name}'", "use 'e', 'i' or 'v'")
        if not (len(self.i) == len(self.j)):
            raise BiolearnError("i and j differ in length", f"in projection '{self.name}'",
                                "give one post index per pre index")


@dataclass
class SpikeMonitor:
    """Record spikes of the named populations (all if ``None``)."""

    populations: list[str] | None = None


@dataclass
class StateMonitor:
    """Record ``v``, ``ge``, ``gi`` or ``theta`` of some neurons every ``every`` steps."""

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
        if not isinstance(names[proj.post], LIF):
            raise BiolearnError(f"'{proj.post}' cannot receive synapses",
                                f"in projection '{proj.name}'", "target a LIF population")
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

    def compile(self, seed: int = 0) -> Any:
        """Build the flat arrays and return a :class:`biolearn.engine.simulation.Simulation`."""
        from biolearn.engine.simulation import Simulation

        return Simulation(self, seed)
