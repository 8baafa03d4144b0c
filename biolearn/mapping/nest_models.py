"""How a biolearn :class:`~biolearn.engine.Network` maps onto NEST models (Gewaltig & Diesmann
2007, Scholarpedia 2:1430; NEST 3). Needs no NEST: the NEST backend
(:mod:`biolearn.backends.nest`) builds from it, the SONATA circuit export
(:mod:`biolearn.io.sonata_circuit`) writes its parameters.

Model mapping (biolearn units: ms, mV, Hz; conductances in units of the leak conductance g_L).
Neuron populations are mapped by their model definition (:data:`NEST_NEURONS`): every LIF variant
of :func:`biolearn.engine.neurons.lif_model`, as a :class:`~biolearn.engine.LIF` or as
``Neurons(..., lif_model(...))``; any other model (AdEx, Izhikevich, a user definition) is an error
naming the population and its model.

* current-based LIF → ``iaf_psc_exp`` (exact integration, Rotter & Diesmann 1999). With the leak
  conductance ``g_L`` (``g_leak_ns``, default 10 nS), ``C_m = g_L·τm`` (pF) keeps τm; an input
  of ``w`` mV in biolearn (``τm dv/dt = … + ge``) is a current jump of ``w·g_L`` pA; ``i_bias`` mV
  becomes ``I_e = i_bias·g_L`` pA.
* conductance-based LIF → ``iaf_cond_exp`` (Kumar et al. 2008 neuron, RK45 integration):
  ``g_L``, ``C_m = g_L·τm``, conductance jumps ``w·g_L`` nS (``target="i"`` as a negative NEST
  weight, which selects the inhibitory channel), ``I_e = i_bias·g_L``.
* adaptive threshold: frozen, ``V_th = v_thresh + θ − theta_offset`` per neuron (θ from
  ``theta_init`` or the trained values passed in).
* PoissonSource → ``poisson_generator`` → ``parrot_neuron`` (one parrot per source neuron, so all
  targets see the same train, as in biolearn); SpikeSource → ``spike_generator``.

Time conventions. biolearn step ``t`` integrates v, detects spikes, then delivers spikes whose
delay ``d`` (steps) has elapsed, so a spike at step ``t`` first moves v at step ``t + d + 1``. NEST
stamps a spike emitted in step ``s`` with ``(s+1)·dt`` and adds it to the synaptic state at the end
of step ``s + D``, so ``D = d`` reproduces biolearn exactly for ``d ≥ 1``; NEST's minimum delay is
one step, so ``d = 0`` between neurons becomes ``D = 1`` (an approximation, allowed with
``approximate=True``). Generator spikes at step ``t`` are placed at ``t·dt`` with ``D = d + 1``,
which is exact for every ``d``. Recorded NEST times are written as ``stamp − dt`` (biolearn's
step time). Refractoriness: biolearn holds v for ``round(t_ref/dt) − 1`` steps after the spike
step; NEST holds it for ``t_ref/dt`` steps, so NEST gets ``t_ref = (round(t_ref/dt) − 1)·dt``.
Threshold: biolearn ``v > θ``, NEST ``V ≥ θ`` (differs only on exact ties).

Not expressible (error naming the feature): voltage-jump targets (``target="v"``), current-based
projections whose weight sign disagrees with their channel when τe ≠ τi, negative conductance
jumps, state monitors, plasticity and threshold adaptation during the run (``frozen=True``
evaluates with weights and θ frozen). Approximations (error unless ``approximate=True``):
non-exact integration (``euler``, ``euler_expsyn``: NEST integrates exactly), ``v_floor`` (ignored;
it is inert for a conductance neuron whose floor lies below every reversal and reset potential, and
then needs no flag), zero delays between neurons, generator spikes at t = 0.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from biolearn.engine.front import (
    KIND_NEURONS,
    KIND_POISSON,
    KIND_SPIKES,
    LIF,
    TARGETS,
    Network,
    Projection,
    StateMonitor,
)
from biolearn.errors import BiolearnError
from biolearn.mapping.lif_family import as_lif, cannot_map, lif_options

G_LEAK_NS = 10.0  # default leak conductance (nS): Brette et al. 2007 COBA (10 nS, 200 pF)


def grid_steps(x: Any, dt: float) -> np.ndarray:
    """Times (ms) as whole steps of ``dt``, rounded to the nearest (biolearn's grid)."""
    return np.round(np.asarray(x, float) / dt).astype(np.int64)


@dataclass(frozen=True)
class NestNeuron:
    """How a family of neuron definitions maps onto one NEST model.

    Mapped populations are read as LIF options (:func:`biolearn.mapping.lif_family.as_lif`);
    ``params`` gives the parameters of ``model`` beyond those every LIF mapping shares
    (:func:`neuron_params`), ``synaptic_state`` the NEST state variables holding ``ge``, ``gi``
    (``None``: NEST cannot set them) and ``weight`` the NEST weight of a biolearn weight of 1 per
    target variable, in units of the leak conductance."""

    model: str
    params: Callable[[LIF, float], dict]
    synaptic_state: tuple[str, str] | None
    weight: dict[str, float]


#: Neuron definitions NEST maps, by family (:func:`neuron_family`): the LIF variants of
#: :func:`biolearn.engine.neurons.lif_model` (``lif_cuba_*``, ``lif_coba_*``). Add an entry here
#: to map another family; every other model is rejected by :func:`nest_neuron`.
NEST_NEURONS: dict[str, NestNeuron] = {
    "lif_cuba": NestNeuron("iaf_psc_exp", lambda p, g_l: {"tau_m": p.tau_m}, None,
                           {"ge": 1.0, "gi": 1.0}),
    "lif_coba": NestNeuron("iaf_cond_exp",
                           lambda p, g_l: {"g_L": g_l, "E_ex": p.e_e, "E_in": p.e_i},
                           ("g_ex", "g_in"), {"ge": 1.0, "gi": -1.0}),
}


def neuron_family(definition: Any) -> str | None:
    """The :data:`NEST_NEURONS` key of a neuron definition, ``None`` if it has none."""
    opts = lif_options(definition)
    if opts is None:
        return None
    return "lif_cuba" if opts["synapse"] == "current" else "lif_coba"


def nest_neuron(p: Any) -> tuple[NestNeuron, LIF]:
    """The mapping of a neuron population and the population as LIF options; a one-line
    :class:`BiolearnError` naming the population and its model if :data:`NEST_NEURONS` has no
    entry for it. Needs no NEST."""
    entry = NEST_NEURONS.get(neuron_family(p.definition))
    if entry is None:
        raise cannot_map(p, "the NEST backend", "in biolearn.mapping.nest_models",
                         "use a LIF population (" + ", ".join(f"{k}_*" for k in NEST_NEURONS)
                         + "), add its NEST model to NEST_NEURONS, or run the network on the "
                         "biolearn engine")
    return entry, as_lif(p)


def neuron_params(p: Any, dt: float, g_leak_ns: float = G_LEAK_NS,
                  theta: Any = None) -> tuple[str, dict]:
    """NEST model name and scalar parameters of a neuron population (module docstring mapping).

    ``V_th`` uses θ = ``theta`` (or ``theta_init``), its maximum when given per neuron (per-neuron
    thresholds are then set by :func:`build`)."""
    entry, p = nest_neuron(p)
    ref = int(np.round(p.t_ref / dt))
    th = p.theta_init if theta is None else theta
    th = float(np.max(th)) if np.size(th) else 0.0
    common = {"C_m": g_leak_ns * p.tau_m, "E_L": p.v_rest, "V_reset": p.v_reset,
              "V_th": p.v_thresh + th - p.theta_offset,
              "t_ref": max(ref - 1, 0) * dt, "I_e": p.i_bias * g_leak_ns,
              "tau_syn_ex": p.tau_e, "tau_syn_in": p.tau_i}
    return entry.model, {**common, **entry.params(p, g_leak_ns)}


def weight_scale(post: Any, target: str, g_leak_ns: float = G_LEAK_NS) -> float:
    """Factor from a biolearn weight to a NEST weight (pA for current, ±nS for conductance);
    ``target`` is a projection's target (``"e"``, ``"i"`` or a variable name)."""
    entry, _ = nest_neuron(post)
    factor = entry.weight.get(TARGETS.get(target, target))
    if factor is None:
        raise BiolearnError(f"target '{target}' cannot be mapped onto {entry.model}",
                            "in the NEST backend", "target " + " or ".join(entry.weight))
    return factor * g_leak_ns


def nest_delay_steps(q: Projection, dt: float, from_generator: bool) -> np.ndarray:
    """NEST delays (steps) of a projection: ``d`` between neurons (min 1), ``d + 1`` from a
    spike generator (module docstring)."""
    d = grid_steps(q.delay, dt)
    return d + 1 if from_generator else np.maximum(d, 1)


def _v_floor_inert(p: LIF) -> bool:
    """A conductance neuron never falls below min(E_i, E_e, rest, reset, v_init) when integrated
    exactly, so a floor below that bound changes nothing."""
    if p.synapse != "conductance" or not np.isfinite(p.v_floor):
        return not np.isfinite(p.v_floor)
    lows = [p.e_i, p.e_e, p.v_rest + p.i_bias, p.v_reset]
    if p.v_init is not None:
        lows.append(float(np.min(p.v_init)))
    return p.v_floor <= min(lows)


def _rule_name(q: Projection) -> str:
    d, _ = q.rule_spec()
    cls = type(q.rule).__name__
    return f"'{d.name}'" + ("" if cls == "SynapseModel" else f" ({cls})")


def check(net: Network, frozen: bool = False, approximate: bool = False) -> list[str]:
    """Approximations this mapping makes; raises :class:`BiolearnError` naming every feature NEST
    cannot express (and every approximation unless ``approximate``). A population whose model
    has no NEST mapping (:data:`NEST_NEURONS`) raises at once. Needs no NEST."""
    views = {p.name: nest_neuron(p) for p in net.populations if p.kind == KIND_NEURONS}
    hard, approx = [], []
    for entry, p in views.values():
        if p.integration != "exact":
            approx.append(f"integration='{p.integration}' of '{p.name}' (NEST integrates exactly)")
        if not _v_floor_inert(p):
            approx.append(f"v_floor={p.v_floor} of '{p.name}' (no voltage floor in NEST)")
        if entry.synaptic_state is None and (np.any(np.asarray(p.ge_init) != 0)
                                             or np.any(np.asarray(p.gi_init) != 0)):
            hard.append(f"nonzero ge_init/gi_init of '{p.name}' ({entry.model} "
                        "synaptic currents cannot be set)")
        if p.theta_rule != "none" and not frozen:
            hard.append(f"adaptive threshold theta_rule='{p.theta_rule}' of '{p.name}' "
                        "(pass frozen=True to use θ as fixed per-neuron thresholds)")
    pops = {p.name: p for p in net.populations}
    for p in pops.values():
        if p.kind == KIND_POISSON and p.dead_steps(net.dt) > 1:
            hard.append(f"dead time t_ref={p.t_ref} ms of source '{p.name}' "
                        "(NEST's poisson_generator has none)")
    for q in net.projections:
        entry, post = views[q.post]
        pre = pops[q.pre]
        if q.rule is not None and not frozen:
            hard.append(f"plasticity rule {_rule_name(q)} on '{q.name}' "
                        "(pass frozen=True to evaluate with frozen weights)")
        if q.target_var == "v":
            hard.append(f"target='v' (voltage jumps) of '{q.name}'")
        elif q.target_var not in entry.weight:
            hard.append(f"target='{q.target}' of '{q.name}' ({entry.model} receives only "
                        + ", ".join(entry.weight) + ")")
        elif post.synapse == "current" and post.tau_e != post.tau_i and len(q.w):
            bad = q.w < 0 if q.target_var == "ge" else q.w > 0
            if np.any(bad):
                hard.append(f"{'negative' if q.target_var == 'ge' else 'positive'} weights on "
                            f"target='{q.target}' of '{q.name}' (NEST picks the synaptic "
                            "channel by the weight's sign and τe ≠ τi)")
        elif post.synapse == "conductance" and len(q.w) and np.any(q.w < 0):
            hard.append(f"negative conductance weights of '{q.name}'")
        d = grid_steps(q.delay, net.dt)
        if pre.kind == KIND_NEURONS and len(q.i) and np.any(d == 0):
            approx.append(f"zero delay of '{q.name}' (NEST's minimum delay is one step)")
        if pre.kind == KIND_SPIKES and len(pre.times) and np.any(
                grid_steps(pre.times, net.dt) == 0):
            approx.append(f"spikes at t = 0 of '{pre.name}' (shifted to the first step)")
    for m in net.monitors:
        if isinstance(m, StateMonitor):
            hard.append(f"StateMonitor of '{m.population}.{m.variable}'")
    if not approximate:
        hard.extend(approx)
    if hard:
        raise BiolearnError("NEST cannot express " + "; ".join(dict.fromkeys(hard)),
                            "in the NEST backend",
                            "change these features, or pass approximate=True for the "
                            "approximations" if approx else "change these features")
    return list(dict.fromkeys(approx))
