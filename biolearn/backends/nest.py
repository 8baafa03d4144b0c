"""Run a biolearn :class:`~biolearn.engine.Network` on NEST (Gewaltig & Diesmann 2007, Scholarpedia
2:1430; NEST 3), with OpenMP threads here and MPI on clusters: the ``nest`` backend of
:mod:`biolearn.backends`.

:func:`build` resets the NEST kernel and builds the network as :mod:`biolearn.mapping.nest_models`
maps it (models, parameters, weights, delays, time conventions, and what NEST cannot express);
:func:`run_network` simulates it and returns spikes in biolearn's format; :class:`NestModel` lets
a protocol drive the built network between runs (rates, resets, recorders); :func:`run_sonata`
runs a circuit written by :func:`biolearn.io.sonata_circuit.export_circuit`.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from biolearn.backends import Backend, register_backend, write_spikes
from biolearn.engine.front import KIND_NEURONS, KIND_POISSON, KIND_SPIKES, Network, SpikeMonitor
from biolearn.errors import BiolearnError, missing_extra
from biolearn.mapping.nest_models import (
    G_LEAK_NS,
    check,
    grid_steps,
    nest_delay_steps,
    nest_neuron,
    neuron_params,
    weight_scale,
)


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
        silent run of a few ms."""
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
            steps = grid_steps(p.times, dt)
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
    t = grid_steps(p.times, dt) * dt
    keep = t < t_end - 1e-9
    return t[keep], np.asarray(p.indices, np.int64)[keep]


def run_network(net: Network, duration_ms: float, threads: int = 1,
                out_spikes_path: str | os.PathLike | None = None, seed: int = 0,
                frozen: bool = False, approximate: bool = False,
                g_leak_ns: float = G_LEAK_NS, theta: dict | None = None) -> dict:
    """Build ``net`` in NEST, simulate ``duration_ms`` and return biolearn-style results.

    Returns ``{"spikes": {pop: (times_ms, local_ids)}, "timing": {...}, "approximations": [...]}``
    (spikes as :meth:`biolearn.engine.Simulation.run`); with ``out_spikes_path`` the spikes are
    also written as a SONATA spike file (:func:`biolearn.backends.write_spikes`)."""
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
        write_spikes(out_spikes_path, net, spikes)
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


@register_backend
class NestBackend(Backend):
    """NEST (:func:`run_network`): options ``threads`` (OpenMP), ``frozen``, ``approximate``,
    ``g_leak_ns``, ``theta``."""

    name = "nest"
    description = "NEST 3 (iaf_psc_exp / iaf_cond_exp), OpenMP threads"
    module = "nest"
    package = "nest-simulator"
    extra = "nest"

    def simulate(self, net: Network, duration_ms: float, seed: int, threads: int = 1,
                 frozen: bool = False, approximate: bool = False,
                 g_leak_ns: float = G_LEAK_NS, theta: dict | None = None) -> dict:
        """:func:`run_network`."""
        return run_network(net, duration_ms, threads=threads, seed=seed, frozen=frozen,
                           approximate=approximate, g_leak_ns=g_leak_ns, theta=theta)
