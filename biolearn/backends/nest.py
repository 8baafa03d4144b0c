"""Run a biolearn :class:`~biolearn.engine.Network` on NEST (Gewaltig & Diesmann 2007, Scholarpedia
2:1430; NEST 3), with OpenMP threads here and MPI on clusters.

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

import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from biolearn.backends.lif import as_lif, cannot_map, lif_options
from biolearn.engine.front import (
    KIND_NEURONS,
    KIND_POISSON,
    KIND_SPIKES,
    LIF,
    TARGETS,
    Network,
    Projection,
    SpikeMonitor,
    StateMonitor,
)
from biolearn.errors import BiolearnError, missing_extra

G_LEAK_NS = 10.0  # default leak conductance (nS): Brette et al. 2007 COBA (10 nS, 200 pF)


def _nest() -> Any:
    os.environ.setdefault("PYNEST_QUIET", "1")  # no banner on import
    if "torch" in sys.modules and "nest" not in sys.modules:
        # Both ship an OpenMP runtime; loading NEST after torch crashes the process.
        raise BiolearnError("NEST cannot be loaded into a process that has imported torch",
                            "in biolearn.backends.nest",
                            "run NEST evaluations in a separate Python process")
    try:
        import nest
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise missing_extra("nest-simulator", "nest") from e
    return nest


def _quiet(nest: Any) -> None:
    if hasattr(nest, "VerbosityLevel"):
        nest.verbosity = nest.VerbosityLevel.ERROR
    else:  # pragma: no cover - NEST < 3.9
        nest.set_verbosity("M_ERROR")


def _steps(x: Any, dt: float) -> np.ndarray:
    return np.round(np.asarray(x, float) / dt).astype(np.int64)


# --------------------------------------------------------------------------------------- mapping
@dataclass(frozen=True)
class NestNeuron:
    """How a family of neuron definitions maps onto one NEST model.

    Mapped populations are read as LIF options (:func:`biolearn.backends.lif.as_lif`); ``params``
    gives the parameters of ``model`` beyond those every LIF mapping shares (:func:`neuron_params`),
    ``synaptic_state`` the NEST state variables holding ``ge``, ``gi`` (``None``: NEST cannot set
    them) and ``weight`` the NEST weight of a biolearn weight of 1 per target variable, in units
    of the leak conductance."""

    model: str
    params: Callable[[LIF, float], dict]
    synaptic_state: tuple[str, str] | None
    weight: dict[str, float]


#: Neuron definitions the backend maps, by family (:func:`neuron_family`): the LIF variants of
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
        raise cannot_map(p, "the NEST backend", "in biolearn.backends.nest",
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
    d = _steps(q.delay, dt)
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
        d = _steps(q.delay, net.dt)
        if pre.kind == KIND_NEURONS and len(q.i) and np.any(d == 0):
            approx.append(f"zero delay of '{q.name}' (NEST's minimum delay is one step)")
        if pre.kind == KIND_SPIKES and len(pre.times) and np.any(
                _steps(pre.times, net.dt) == 0):
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


# --------------------------------------------------------------------------------------- build
@dataclass
class NestModel:
    """A network built in the current NEST kernel."""

    net: Network
    nest: Any
    nodes: dict = field(default_factory=dict)  # population → NodeCollection (parrots for Poisson)
    generators: dict = field(default_factory=dict)  # Poisson source → poisson_generators
    recorders: dict = field(default_factory=dict)  # population → spike_recorder
    approximations: list = field(default_factory=list)
    build_s: float = 0.0
    seen: dict = field(default_factory=dict)  # recorder events already returned

    @property
    def dt(self) -> float:
        return float(self.net.dt)

    def set_rates(self, name: str, rates: Any) -> None:
        """Rates (Hz) of a Poisson source between runs."""
        g = self.generators[name]
        g.set(rate=np.broadcast_to(np.asarray(rates, float), (len(g),)).tolist())

    def reset_state(self) -> None:
        """v = v_rest and zero conductances for every neuron population (as
        :meth:`biolearn.engine.Simulation.reset_state`). NEST cannot set the synaptic currents
        of ``iaf_psc_exp``, nor refractory counters and spikes in flight: follow with a short
        silent run (see :func:`evaluate_stdp_run`)."""
        for p in self.net.populations:
            if p.kind != KIND_NEURONS:
                continue
            entry, lif = nest_neuron(p)
            syn = dict.fromkeys(entry.synaptic_state or (), 0.0)
            self.nodes[p.name].set({"V_m": lif.v_rest, **syn})

    def take_spikes(self) -> dict:
        """Spikes recorded since the last call as ``{pop: (times_ms, local_ids)}`` in biolearn's
        time convention (stamp − dt)."""
        out = {}
        for name, rec in self.recorders.items():
            ev = rec.get("events")
            first, a = self.nodes[name][0].global_id, self.seen.get(name, 0)
            t, s = np.asarray(ev["times"], float), np.asarray(ev["senders"], np.int64)
            self.seen[name] = len(t)
            out[name] = (t[a:] - self.dt, s[a:] - first)
        return out

    def clear_recorders(self) -> None:
        """Drop recorded events (outside a Prepare/Run/Cleanup context only)."""
        for rec in self.recorders.values():
            rec.n_events = 0
        self.seen.clear()

    def take_counts(self, names: list[str] | None = None) -> dict:
        """Spike counts per neuron since the last call (clears the recorders)."""
        sp = self.take_spikes()
        return {k: np.bincount(v[1], minlength=len(self.nodes[k])) for k, v in sp.items()
                if names is None or k in names}


def build(net: Network, threads: int = 1, seed: int = 0, frozen: bool = False,
          approximate: bool = False, g_leak_ns: float = G_LEAK_NS, theta: dict | None = None,
          record: list[str] | None = None) -> NestModel:
    """Reset the NEST kernel and build ``net`` in it (module docstring for the mapping).

    ``theta`` maps population → per-neuron θ (e.g. trained values) overriding ``theta_init``;
    ``record`` lists populations to record (default: those of the network's spike monitors)."""
    approx = check(net, frozen, approximate)  # before importing NEST: mapping errors first
    nest = _nest()
    t0 = time.perf_counter()
    dt = float(net.dt)
    _quiet(nest)
    nest.ResetKernel()
    nest.SetKernelStatus({"resolution": dt, "local_num_threads": int(threads),
                          "rng_seed": int(seed) % (2**31 - 1) + 1, "print_time": False})
    m = NestModel(net, nest, approximations=approx)
    theta = theta or {}
    for p in net.populations:
        if p.kind == KIND_NEURONS:
            model, params = neuron_params(p, dt, g_leak_ns, theta.get(p.name))
            entry, p = nest_neuron(p)
            try:
                nodes = nest.Create(model, p.n, params=params)
                th = theta.get(p.name, p.theta_init)
                per = {}
                if np.ndim(th):  # per-neuron (e.g. trained) thresholds
                    per["V_th"] = (p.v_thresh + np.asarray(th, float) - p.theta_offset).tolist()
                v0 = p.v_rest if p.v_init is None else p.v_init
                per["V_m"] = np.broadcast_to(np.asarray(v0, float), (p.n,)).tolist()
                if entry.synaptic_state is not None:
                    for var, x in zip(entry.synaptic_state, (p.ge_init, p.gi_init), strict=True):
                        per[var] = (np.broadcast_to(np.asarray(x, float), (p.n,))
                                    * g_leak_ns).tolist()
                nodes.set(per)
            except nest.NESTError as e:
                raise BiolearnError(f"NEST rejected the parameters of '{p.name}': {e}",
                                    "in the NEST backend",
                                    "keep v_reset below the (θ-shifted) threshold") from e
            m.nodes[p.name] = nodes
        elif p.kind == KIND_POISSON:
            gens = nest.Create("poisson_generator", p.n)
            m.generators[p.name] = gens
            m.set_rates(p.name, p.rates)
            parrots = nest.Create("parrot_neuron", p.n)
            nest.Connect(gens, parrots, "one_to_one", {"delay": dt})
            m.nodes[p.name] = parrots
        elif p.kind == KIND_SPIKES:
            steps = _steps(p.times, dt)
            steps = np.maximum(steps, 1)  # t = 0 cannot be emitted (check() flagged it)
            idx = np.asarray(p.indices, np.int64)
            order = np.lexsort((steps, idx))
            idx, steps = idx[order], steps[order]
            bounds = np.searchsorted(idx, np.arange(p.n + 1))
            gens = nest.Create("spike_generator", p.n)
            gens.set([{"spike_times": (np.unique(steps[a:b]) * dt).tolist()}
                      for a, b in zip(bounds[:-1], bounds[1:], strict=True)])
            mult = [np.unique(steps[a:b], return_counts=True)[1]
                    for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
            if any(np.any(c > 1) for c in mult):
                gens.set([{"spike_multiplicities": c.tolist()} for c in mult])
            m.nodes[p.name] = gens
    pops = {p.name: p for p in net.populations}
    for q in net.projections:
        post = pops[q.post]
        pre_nodes, post_nodes = m.nodes[q.pre], m.nodes[q.post]
        d = nest_delay_steps(q, dt, pops[q.pre].kind == KIND_SPIKES)
        d = np.broadcast_to(d, q.i.shape)
        w = q.w * weight_scale(post, q.target, g_leak_ns)
        if len(q.i) == 0:
            continue
        src = np.asarray(pre_nodes.tolist())[q.i]
        tgt = np.asarray(post_nodes.tolist())[q.j]
        nest.Connect(src, tgt, "one_to_one",
                     {"synapse_model": "static_synapse", "weight": w, "delay": d * dt})
    if record is None:
        record = []
        for mon in net.monitors:
            if isinstance(mon, SpikeMonitor):
                record += mon.populations or [p.name for p in net.populations]
    for name in dict.fromkeys(record):
        if pops[name].kind == KIND_SPIKES:
            continue  # written from the source definition
        rec = nest.Create("spike_recorder")
        nest.Connect(m.nodes[name], rec)
        m.recorders[name] = rec
    m.build_s = time.perf_counter() - t0
    return m


# --------------------------------------------------------------------------------------- running
def _source_spikes(p: Any, dt: float, t_end: float) -> tuple[np.ndarray, np.ndarray]:
    t = _steps(p.times, dt) * dt
    keep = t < t_end - 1e-9
    return t[keep], np.asarray(p.indices, np.int64)[keep]


def run_network(net: Network, duration_ms: float, threads: int = 1,
                out_spikes_path: str | os.PathLike | None = None, seed: int = 0,
                frozen: bool = False, approximate: bool = False,
                g_leak_ns: float = G_LEAK_NS, theta: dict | None = None) -> dict:
    """Build ``net`` in NEST, simulate ``duration_ms`` and return biolearn-style results.

    Returns ``{"spikes": {pop: (times_ms, local_ids)}, "timing": {...}, "approximations": [...]}``
    (spikes as :meth:`biolearn.engine.Simulation.run`); with ``out_spikes_path`` the spikes are
    also written as a SONATA spike file with :class:`biolearn.io.sonata.SpikeWriter`."""
    m = build(net, threads, seed, frozen, approximate, g_leak_ns, theta)
    nest = m.nest
    n_steps = int(np.round(duration_ms / net.dt))
    t0, c0 = time.perf_counter(), time.process_time()
    nest.Simulate(n_steps * net.dt)
    sim_s, sim_cpu_s = time.perf_counter() - t0, time.process_time() - c0
    spikes = m.take_spikes()
    for mon in net.monitors:
        if isinstance(mon, SpikeMonitor):
            for name in mon.populations or [p.name for p in net.populations]:
                p = net.population(name)
                if p.kind == KIND_SPIKES:
                    spikes[name] = _source_spikes(p, net.dt, n_steps * net.dt)
    for name, (t, i) in spikes.items():
        o = np.lexsort((i, t))
        spikes[name] = (t[o], i[o])
    if out_spikes_path is not None:
        from biolearn.io.sonata import SpikeWriter

        sizes = {name: net.population(name).n for name in spikes}
        with SpikeWriter(out_spikes_path, sizes, sorting="by_time") as wr:
            for name, (t, i) in spikes.items():
                if len(t):
                    wr.write(name, t, i)
    return {"spikes": spikes, "approximations": m.approximations,
            "timing": {"build_s": m.build_s, "simulate_s": sim_s, "simulate_cpu_s": sim_cpu_s,
                       "threads": int(threads)}}


def run_sonata(circuit_dir: str | os.PathLike, threads: int | None = None) -> dict:
    """Load a circuit exported by :func:`biolearn.io.sonata_circuit.export_circuit` with
    ``nest.SonataNetwork`` (needs NEST built with HDF5, and pandas) and simulate it.

    Returns ``{pop: (times_ms, local_ids)}`` in NEST's time stamps."""
    nest = _nest()
    base = Path(circuit_dir)
    sim_cfg = json.loads((base / "simulation_config.json").read_text())
    _quiet(nest)
    nest.ResetKernel()
    th = threads or sim_cfg["run"].get("nest", {}).get("local_num_threads", 1)
    nest.SetKernelStatus({"local_num_threads": int(th)})
    sn = nest.SonataNetwork(base / "circuit_config.json", base / "simulation_config.json")
    nodes = sn.BuildNetwork()
    recs = {}
    for name, nc in nodes.items():
        recs[name] = nest.Create("spike_recorder")
        nest.Connect(nc, recs[name])
    sn.Simulate()
    out = {}
    for name, rec in recs.items():
        ev = rec.get("events")
        out[name] = (np.asarray(ev["times"]), np.asarray(ev["senders"]) - nodes[name][0].global_id)
    return out


# --------------------------------------------------------------------------------------- evaluation
def evaluate_stdp_run(run_dir: str | os.PathLike, threads: int = 1, n_test: int | None = None,
                      data_root: str | None = None, compare: bool = True, seed: int = 0,
                      gap_ms: float = 20.0, spikes_images: int = 20,
                      progress: Any = None, first: int = 0) -> dict:
    """Evaluate a trained ``sym_stdp`` run (its ``weights.h5``) on the MNIST test set in NEST.

    The network of :func:`biolearn.models.sym_stdp.build` is built with the trained input→E and
    E→class weights and θ frozen into per-neuron thresholds; each test image is shown with the
    recipe's protocol (350 ms Poisson input at pixel/8 × intensity Hz, shown again with intensity
    + 1 while the hidden layer fires fewer than ``min_spikes``), the prediction is the most active
    class neuron (Hao et al. 2020). Between images every neuron is reset to rest, the network runs
    ``gap_ms`` silent (refractory periods and spikes in flight expire; NEST cannot clear them)
    and is reset again. With ``compare`` biolearn's own test phase runs on the same images and
    weights for the accuracy agreement and the speed ratio. ``first`` skips that many test images
    (to split an evaluation over processes). Writes ``nest_eval.json`` and
    ``spikes_nest.h5`` (first ``spikes_images`` presentations) into ``run_dir``.
    """
    from biolearn.analysis import readout
    from biolearn.config import load_config
    from biolearn.data import load_mnist
    from biolearn.io.store import load_weights, write_json_atomic
    from biolearn.models import _mnist_stdp as ms
    from biolearn.models.sym_stdp import build as build_sym
    from biolearn.runner import RESOLVED, resolve_data_root

    run = Path(run_dir)
    if not (run / RESOLVED).exists() or not (run / "weights.h5").exists():
        raise BiolearnError(f"no trained run in {run}", "in evaluate_stdp_run",
                            f"give a run directory with {RESOLVED} and weights.h5 "
                            "(biolearn run configs/stdp_mnist.yaml --out DIR)")
    cfg = load_config(run / RESOLVED)
    if cfg.model != "sym_stdp":
        raise BiolearnError(f"model '{cfg.model}' has no NEST evaluation",
                            "in evaluate_stdp_run", "use a sym_stdp run")
    p = cfg.params
    w, _ = load_weights(run / "weights.h5")
    net = build_sym(p, np.random.default_rng(seed))
    for q in net.projections:
        if q.name in ("input_exc", "exc_class"):
            q.w = np.asarray(w[q.name], float).reshape(-1).copy()
    theta = {ms.EXC: np.asarray(w["theta_exc"], float)}
    _, _, x_te, y_te = load_mnist(root=resolve_data_root(data_root, cfg.data.root),
                                  dataset=cfg.data.dataset, n_train=1,
                                  n_test=None if n_test is None else first + n_test, quiet=True)
    pres = p.presentation
    x_te, y_te = pres.images(x_te[first:]), y_te[first:]
    y = y_te.astype(np.int64)
    out: dict[str, Any] = {"n_test": int(len(y)), "first": int(first), "threads": int(threads),
                           "n_exc": p.n_exc}

    if compare:  # biolearn's test phase on the same images (as run_protocol's test)
        sim = net.compile(seed=seed)
        sim.theta[sim.slice(ms.EXC)] = theta[ms.EXC]
        sim.set_teacher(ms.CLS, None)
        sim.set_plastic("input_exc", False)
        sim.set_plastic("exc_class", False)
        sim.freeze_theta(ms.EXC, True)
        tr = ms.Trainer(sim, pres, p.output)
        tr.present(x_te[0])  # JIT warm-up, not timed
        cls_b = np.zeros((len(y), 10), np.int64)
        t0 = time.perf_counter()
        for k in range(len(y)):
            cls_b[k] = tr.present(x_te[k])[1][ms.CLS]
        out["biolearn_test_s"] = time.perf_counter() - t0
        pred_b = readout.argmax_or_silent(cls_b)
        out["biolearn_accuracy"] = float(np.mean(pred_b == y))

    m = build(net, threads, seed, frozen=True, approximate=True, theta=theta,
              record=[ms.EXC, ms.INH, ms.CLS])
    out["nest_build_s"] = m.build_s
    out["approximations"] = m.approximations
    nest = m.nest
    n_present, n_gap = int(round(pres.t_present_ms / net.dt)), int(round(gap_ms / net.dt))
    cls_n = np.zeros((len(y), 10), np.int64)
    recs: list = []
    presentations = 0
    from biolearn.io.sonata import SpikeWriter

    sizes = {name: net.population(name).n for name in (ms.EXC, ms.INH, ms.CLS)}
    t0 = time.perf_counter()
    # One Simulate per phase: poisson_generator reads its rate only when a run is prepared.
    for k in range(len(y)):
        pixels = x_te[k].reshape(-1).astype(np.float64)
        intensity = pres.intensity0
        while True:
            m.reset_state()
            m.set_rates(ms.INPUT, 0.0)
            nest.Simulate(n_gap * net.dt)
            m.reset_state()
            m.clear_recorders()
            m.set_rates(ms.INPUT, pixels * (intensity / 8.0))
            nest.Simulate(n_present * net.dt)
            presentations += 1
            spikes = m.take_spikes()
            if len(spikes[ms.EXC][0]) >= pres.min_spikes or intensity >= pres.max_intensity:
                break
            intensity += pres.intensity_step
        cls_n[k] = np.bincount(spikes[ms.CLS][1], minlength=10)
        if k < spikes_images:
            t_start = nest.biological_time - n_present * net.dt
            recs.append({name: (t + net.dt - t_start, i) for name, (t, i) in spikes.items()})
        if progress is not None:
            progress(k + 1, len(y))
    out["nest_test_s"] = time.perf_counter() - t0
    pred_n = readout.argmax_or_silent(cls_n)
    out["nest_accuracy"] = float(np.mean(pred_n == y))
    out["nest_presentations_per_image"] = presentations / max(1, len(y))
    if compare:
        out["accuracy_difference_points"] = 100.0 * (out["nest_accuracy"]
                                                     - out["biolearn_accuracy"])
        out["prediction_agreement"] = float(np.mean(pred_n == pred_b))
        out["speed_ratio_biolearn_over_nest"] = out["biolearn_test_s"] / out["nest_test_s"]
    with SpikeWriter(run / "spikes_nest.h5", sizes) as wr:
        for k, rec in enumerate(recs):
            for name, (t, i) in rec.items():
                if len(t):
                    wr.write(name, k * pres.t_present_ms + t, i)
        wr.write_presentations("test", np.arange(len(recs)) * pres.t_present_ms,
                               y[:len(recs)], {"duration_ms": np.full(len(recs),
                                                                       pres.t_present_ms)})
    write_json_atomic(run / "nest_eval.json", out)
    return out


def evaluate_run(run_dir: str | os.PathLike, threads: int = 1, n_test: int | None = None,
                 data_root: str | None = None, quiet: bool = False) -> dict:
    """CLI hook for ``biolearn run CONFIG --backend nest``: after biolearn trained the run in
    ``run_dir``, evaluate it in NEST (:func:`evaluate_stdp_run`) and print a summary."""
    bar = None
    if not quiet:
        from tqdm import tqdm

        bar = tqdm(total=n_test, desc="nest test", unit="img")

    def progress(k: int, n: int) -> None:
        if bar is not None:
            bar.total = n
            bar.update(1)

    try:
        res = evaluate_stdp_run(run_dir, threads=threads, n_test=n_test, data_root=data_root,
                                progress=progress)
    finally:
        if bar is not None:
            bar.close()
    if not quiet:
        print(json.dumps({k: v for k, v in res.items() if not isinstance(v, list)}, indent=1))
    return res
