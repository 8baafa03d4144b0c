"""Export a biolearn :class:`~biolearn.engine.Network` to an equivalent Brian2 network.

:func:`to_brian2` writes every population and plastic projection from the same definitions the
engine compiles (:mod:`biolearn.engine.definitions`): the model's equations, threshold, reset,
refractory period and integrator name go to a ``NeuronGroup``, its ``after_update`` statements to
a ``run_regularly`` operation right after the state update, a rule's model and ``on_pre`` /
``on_post`` statements to ``Synapses`` (Stimberg, Brette & Goodman 2019, eLife 8:e47314).
:func:`run_brian2` runs the export on a runtime target (``numpy``, ``cython``) or as C++
standalone and returns spikes in biolearn's format.

Conventions of the export:

* Values are converted from biolearn units (ms, mV, pA, nS, pF; :mod:`biolearn.engine.units`) to
  Brian2 quantities of the declared dimensions; ±inf becomes ±1e300 of the unit.
* Refractory periods and delays are passed as whole steps (biolearn rounds ``t/dt`` to the
  nearest step; Brian2 would floor the refractory period), spike-source times likewise.
* Weights stay in biolearn's numbers (``w : 1``) and are scaled on delivery
  (``ge_post += w*w_unit``, the unit of the target variable). Pre/post traces are per-synapse
  event-driven variables in Brian2, equal to biolearn's per-neuron lazily decayed traces.

Brian2 schedule within a step: groups (state update, run_regularly) → thresholds (spike
detection, also ``lastspike`` and ``not_refractory`` are set here) → synapses (all ``pre``
pathways, order −1, then all ``post`` pathways, order +1; ties by name) → resets — the order of
the generated ``run_steps``.
"""

from __future__ import annotations

import re
import resource
import shutil
import tempfile
import time
from typing import Any

import numpy as np

from biolearn.backends import Backend, register_backend
from biolearn.engine.definitions import brian2_quietly, neuron_ir, synapse_ir, value_of
from biolearn.engine.front import KIND_NEURONS, Network, PoissonSource, SpikeSource, StateMonitor
from biolearn.engine.simulation import PI_PREF, PI_REF, PI_TEACH, Simulation
from biolearn.engine.units import scale
from biolearn.errors import BiolearnError, missing_extra

_NEVER_S = -1e4  # Brian2's initial lastspike (s)
_BIG = 1e300  # stands for ±inf inside generated code (clip bounds)


def _b2() -> Any:
    try:
        return brian2_quietly()
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise missing_extra("brian2", "brian2") from e


def _steps(x: Any, dt: float) -> np.ndarray:
    return np.round(np.asarray(x, float) / dt).astype(np.int64)


def _carry_refractoriness(g: Any, last: np.ndarray, t_now: int, dt: float, ref: int) -> None:
    """Give a Brian2 group the engine's last spike steps (``last``, relative to step
    ``t_now``) and so the rest of each neuron's ``ref``-step refractory period."""
    g.lastspike = np.where(last > -(2**61), (last - t_now) * dt * 1e-3, _NEVER_S) * _b2().second
    g.not_refractory = (t_now - last) >= ref


def quantity(value: Any, dim: Any) -> Any:
    """A value in biolearn units as a Brian2 quantity of dimension ``dim`` (±inf → ±1e300)."""
    b2 = _b2()
    v = np.clip(np.asarray(value, float), -_BIG, _BIG) * scale(dim)
    return b2.Quantity(v if v.ndim else float(v), dim=dim)


def _namespace(params: list, values: dict) -> dict:
    return {p.name: quantity(values[p.name], p.dim) for p in params}


def _neuron_group(b2: Any, p: Any, values: dict, dt_q: Any, ref_steps: int, name: str) -> Any:
    """NeuronGroup of one population, from its model definition."""
    model = p.definition
    ir = neuron_ir(model)
    eqs = model.equations
    if ref_steps == 0:  # no refractory period: the flag has no effect
        eqs = re.sub(r"\(\s*unless refractory\s*\)", "", eqs)
    g = b2.NeuronGroup(p.n, eqs, threshold=model.threshold, reset=model.reset or None,
                       refractory=(ref_steps * dt_q if ref_steps > 0 else False),
                       method=model.method, namespace=_namespace(ir.params, values), dt=dt_q,
                       name=name)
    if model.after_update.strip():  # order 1: right after the state updater
        g.run_regularly(model.after_update, when="groups", order=1, name=name + "_after")
    return g


def _synapses(b2: Any, q: Any, groups: dict, net: Network, w_now: np.ndarray, dt_q: Any,
              kw: dict) -> tuple[Any, bool, dict]:
    """Synapses of one projection; returns ``(synapses, constant weight?, names)`` where
    ``names`` maps biolearn's synaptic variable names to the exported ones (a synaptic variable
    that shares its name with a variable of the pre or post group, such as AdEx's ``w``, gets
    the suffix ``_syn``: Brian2 does not allow the clash)."""
    from brian2.utils.stringtools import word_substitute

    post = net.population(q.post)
    tv = q.target_var
    dim = neuron_ir(post.definition).dims[tv]
    ns: dict[str, Any] = {"w_unit": quantity(1.0, dim)}
    spec = q.rule_spec()
    const = spec is None and len(w_now) > 0 and bool(np.all(w_now == w_now[0]))
    if const:  # one weight for all synapses: a constant, as in Brian2's own benchmarks
        model, on_pre, on_post = "", f"{tv}_post += w_const*w_unit", None
        ns["w_const"] = float(w_now[0])
    else:
        model, on_pre, on_post = "w : 1\n", f"{tv}_post += w*w_unit", None
    syn_vars = {"w"}
    if spec is not None:
        d, values = spec
        ir = synapse_ir(d)
        model = d.model
        on_pre += "\n" + d.on_pre
        on_post = d.on_post or None
        ns.update(_namespace(ir.params, values))
        syn_vars |= set(ir.traces) | set(ir.syn_vars)
    group_vars: set[str] = set()
    for name in (q.pre, q.post):
        p = net.population(name)
        if p.kind == KIND_NEURONS:
            group_vars |= set(neuron_ir(p.definition).variables)
    names = {v: (f"{v}_syn" if v in group_vars else v) for v in syn_vars}
    subst = {k: v for k, v in names.items() if k != v}
    if subst:
        model = word_substitute(model, subst)
        on_pre = word_substitute(on_pre, subst).replace(f"{tv}_post_syn", f"{tv}_post")
        on_post = word_substitute(on_post, subst) if on_post else None
    s = b2.Synapses(groups[q.pre], groups[q.post], model=model or None, on_pre=on_pre,
                    on_post=on_post, namespace=ns, name=f"bl_syn_{q.name}", dt=dt_q, **kw)
    return s, const, names


def to_brian2(net: Network, sim_state: Any = None) -> tuple[Any, dict]:
    """Build the Brian2 equivalent of ``net``; returns ``(brian2.Network, handles)``.

    ``handles`` maps ``"groups"`` / ``"synapses"`` / ``"spikes"`` / ``"states"`` to dicts of the
    Brian2 objects keyed by biolearn name. With ``sim_state`` (a compiled
    :class:`~biolearn.engine.Simulation`) the current state is exported instead of the initial
    one: variables, parameters (a frozen θ too), time since the last spike, weights, rates and
    traces (decayed to now). Brian2 time restarts at 0; spikes still in flight in delays are not
    carried over. Call under the Brian2 device you want (runtime by default; see
    :func:`run_brian2`).
    """
    b2 = _b2()
    ms = b2.ms
    dt = float(net.dt)
    dt_q = dt * ms
    sim = sim_state
    t_now = int(sim.t) if sim is not None else 0
    objs: list = []
    groups: dict[str, Any] = {}
    for k, p in enumerate(net.populations):
        gname = f"bl_{p.name}"
        if p.kind == KIND_NEURONS:
            if sim is not None and sim.pop_i[k, PI_TEACH] != 0:
                raise BiolearnError(f"population '{p.name}' is in teacher mode", "in to_brian2",
                                    "call sim.set_teacher(name, None) before exporting")
            ir = neuron_ir(p.definition)
            if sim is not None:
                values = dict(zip(ir.param_names, sim.pop_f[k, :len(ir.params)].tolist(),
                                  strict=True))
                ref = int(sim.pop_i[k, PI_REF])
            else:
                values = p.values()
                ref = Simulation.refractory_steps(ir, values, dt, p.name)
            g = _neuron_group(b2, p, values, dt_q, ref, gname)
            if sim is not None:
                sl = sim.slice(p.name)
                for v in ir.variables:
                    setattr(g, v, quantity(sim.S[sim.slots[v], sl], ir.dims[v]))
                if ref > 0:
                    _carry_refractoriness(g, sim.last_spike[sl], t_now, dt, ref)
            else:
                for v, x in p.initial().items():
                    val = value_of(x, values, f"in population '{p.name}'.init")
                    setattr(g, v, quantity(np.broadcast_to(val, (p.n,)), ir.dims[v]))
        elif isinstance(p, PoissonSource):
            r = np.broadcast_to(np.asarray(sim.rate[sim.slice(p.name)] if sim is not None
                                           else p.rates, float), (p.n,))
            dead = int(sim.pop_i[k, PI_PREF]) if sim is not None else p.dead_steps(dt)
            if dead > 1:  # a dead time: Brian2's refractory on per-step Bernoulli draws
                g = b2.NeuronGroup(p.n, "rates : Hz", threshold="rand() < rates*dt",
                                   refractory=dead * dt_q, dt=dt_q, name=gname)
                g.rates = r * b2.Hz
                if sim is not None:
                    _carry_refractoriness(g, sim.last_spike[sim.slice(p.name)], t_now, dt,
                                          dead)
            else:
                g = b2.PoissonGroup(p.n, r * b2.Hz, dt=dt_q, name=gname)
        elif isinstance(p, SpikeSource):
            st = _steps(p.times, dt)
            idx = np.asarray(p.indices, np.int64)
            keep = st >= t_now
            st, idx = st[keep] - t_now, idx[keep]
            g = b2.SpikeGeneratorGroup(p.n, idx, st * dt_q, dt=dt_q, name=gname)
        else:  # pragma: no cover - front validates kinds
            raise BiolearnError(f"cannot export population {p!r}", "in to_brian2", "")
        groups[p.name] = g
        objs.append(g)
    synapses: dict[str, Any] = {}
    syn_names: dict[str, dict] = {}
    for k, q in enumerate(net.projections):
        d = np.broadcast_to(_steps(q.delay, dt), q.i.shape)
        homog = len(d) == 0 or bool(np.all(d == d[0]))
        w_now = sim.weights(q.name).reshape(-1) if sim is not None else q.w
        kw: dict[str, Any] = {}
        if homog:
            kw["delay"] = (int(d[0]) if len(d) else 0) * dt_q
        s, const, names = _synapses(b2, q, groups, net, w_now, dt_q, kw)
        syn_names[q.name] = names
        if sim is not None and q.rule is not None:  # current rule parameters (schedules)
            ir = synapse_ir(q.rule_spec()[0])
            vals = dict(zip(ir.param_names, sim.pr_par[k, :len(ir.params)].tolist(),
                            strict=True))
            s.namespace.update(_namespace(ir.params, vals))
        s.connect(i=q.i, j=q.j)
        if not const:
            setattr(s, names["w"], w_now)
        if not homog:
            s.delay = d * dt_q
        if q.rule is not None and sim is not None:
            _export_traces(sim, k, q, s, names)
        synapses[q.name] = s
        objs.append(s)
    spikes = {name: b2.SpikeMonitor(g, name=f"bl_spk_{name}") for name, g in groups.items()}
    objs += list(spikes.values())
    states: dict[str, Any] = {}
    for m in net.monitors:
        if isinstance(m, StateMonitor):  # biolearn records at the end of a step
            rec = True if m.neurons is None else np.asarray(m.neurons, np.int64)
            sm = b2.StateMonitor(groups[m.population], m.variable, record=rec, when="end",
                                 dt=m.every * dt_q)
            states[f"{m.population}.{m.variable}"] = sm
            objs.append(sm)
    network = b2.Network(*objs)
    return network, {"groups": groups, "synapses": synapses, "spikes": spikes, "states": states,
                     "synapse_names": syn_names}


def _export_traces(sim: Any, k: int, q: Any, s: Any, names: dict) -> None:
    """Per-synapse Brian2 traces from biolearn's per-neuron traces, decayed to the current step."""
    ir = sim.rules[sim.pr_rule[k] - 1]
    t = sim.t
    lo_p, lo_o = int(sim.tp_off[k]), int(sim.to_off[k])
    n_pre = sim.net.population(q.pre).n
    n_post = sim.net.population(q.post).n
    npre = len(ir.pre_traces)
    for c, v in enumerate(ir.pre_traces):
        sl = slice(lo_p, lo_p + n_pre)
        x = sim.trp[c, sl] * np.exp(-(t - sim.trp_t[sl]) * sim.dt / (sim.tau_s[k, c] * sim.dt))
        setattr(s, names[v], x[q.i])
    for c, v in enumerate(ir.post_traces):
        sl = slice(lo_o, lo_o + n_post)
        x = sim.tro[c, sl] * np.exp(-(t - sim.tro_t[sl]) / sim.tau_s[k, npre + c])
        setattr(s, names[v], x[q.j])
    seg = slice(sim.syn_off[k], sim.syn_off[k + 1])
    for c, v in enumerate(ir.syn_vars + ir.syn_traces):
        x = sim.syn_x[c, seg].copy()
        if v in ir.syn_traces:
            cc = len(ir.pre_traces) + len(ir.post_traces) + ir.syn_traces.index(v)
            x *= np.exp(-(t - sim.syn_t[seg]) / sim.tau_s[k, cc])
        out = np.empty_like(x)
        out[q._order] = x
        setattr(s, names[v], out)


def run_brian2(net: Network, duration_ms: float, target: str = "numpy", seed: int | None = None,
               sim_state: Any = None, build_dir: str | None = None, repeats: int = 1,
               threads: int = 1) -> dict:
    """Export ``net`` and run it for ``duration_ms`` in Brian2.

    ``target``: ``"numpy"`` or ``"cython"`` (runtime code generation) or ``"cpp_standalone"``
    (C++ project built in ``build_dir`` or a temporary directory, removed afterwards).
    Returns ``{"spikes": {pop: (times_ms, ids)}, "weights": {proj: w}, "states": {...},
    "timing": {...}}``; weights are flat, in the projection's synapse order. For
    ``cpp_standalone`` the timing splits code generation + compilation (``build_s``) from the
    simulation itself (``run_s``, measured inside the binary) and the binary's wall time; with
    ``repeats`` > 1 the compiled binary is run again (also timing its CPU use) and the minimum
    times are reported. ``threads`` > 1 sets ``devices.cpp_standalone.openmp_threads``
    (``cpp_standalone`` only: Brian2's runtime targets use one thread).
    """
    b2 = _b2()
    if target not in ("numpy", "cython", "cpp_standalone"):
        raise BiolearnError(f"unknown Brian2 target '{target}'", "in run_brian2",
                            "use numpy, cython or cpp_standalone")
    timing: dict[str, float] = {}
    old_target = b2.prefs.codegen.target
    tmp = None
    try:
        if target == "cpp_standalone":
            tmp = build_dir or tempfile.mkdtemp(prefix="biolearn_b2_")
            b2.set_device("cpp_standalone", directory=tmp, build_on_run=False)
            b2.prefs.devices.cpp_standalone.openmp_threads = int(threads) if threads > 1 else 0
        else:
            b2.prefs.codegen.target = target
        if seed is not None:
            b2.seed(seed)
        t0 = time.perf_counter()
        network, h = to_brian2(net, sim_state)
        timing["export_s"] = time.perf_counter() - t0
        t0, c0 = time.perf_counter(), time.process_time()
        network.run(duration_ms * b2.ms)
        if target == "cpp_standalone":
            b2.device.build(directory=tmp, compile=True, run=True, debug=False)
            total = time.perf_counter() - t0
            timing["run_s"] = float(b2.device._last_run_time)
            timing["binary_s"] = float(b2.device.timers["run_binary"])
            timing["build_s"] = total - timing["binary_s"]
            for _ in range(repeats - 1):  # same binary again: no code generation, no compiler
                c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
                b2.device.run(directory=tmp, with_output=False, run_args=[])
                c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu = (c1.ru_utime - c0.ru_utime) + (c1.ru_stime - c0.ru_stime)
                timing["binary_cpu_s"] = min(timing.get("binary_cpu_s", np.inf), cpu)
                timing["run_s"] = min(timing["run_s"], float(b2.device._last_run_time))
                timing["binary_s"] = min(timing["binary_s"],
                                         float(b2.device.timers["run_binary"]))
        else:
            timing["run_s"] = time.perf_counter() - t0
            timing["run_cpu_s"] = time.process_time() - c0
        out = _collect(b2, net, h)
    finally:
        if target == "cpp_standalone":
            b2.device.reinit()
            b2.set_device("runtime")
            b2.prefs.devices.cpp_standalone.openmp_threads = 0
            if tmp is not None and build_dir is None:
                shutil.rmtree(tmp, ignore_errors=True)
        b2.prefs.codegen.target = old_target
    out["timing"] = timing
    return out


def _collect(b2: Any, net: Network, h: dict) -> dict:
    spikes = {}
    for name, m in h["spikes"].items():
        spikes[name] = (np.asarray(m.t / b2.ms, float), np.asarray(m.i[:], np.int64))
    weights = {}
    for q in net.projections:
        s = h["synapses"][q.name]
        wname = h["synapse_names"][q.name]["w"]
        if wname in s.variables:
            weights[q.name] = np.asarray(getattr(s, wname)[:], float)
    states = {}
    for key, m in h["states"].items():
        var = key.split(".", 1)[1]
        arr = np.asarray(getattr(m, var)).T  # [time, neuron]
        pop = net.population(key.split(".", 1)[0])
        states[key] = arr / scale(neuron_ir(pop.definition).dims[var])  # → biolearn units
    return {"spikes": spikes, "weights": weights, "states": states}


def spike_steps(times_ms: np.ndarray, dt: float) -> np.ndarray:
    """Spike times (ms) → integer steps, for spike-for-spike comparisons."""
    return np.round(np.asarray(times_ms) / dt).astype(np.int64)


@register_backend
class Brian2Backend(Backend):
    """Brian2 (:func:`run_brian2`): options ``target`` (``numpy``, ``cython``,
    ``cpp_standalone``), ``sim_state``, ``build_dir``, ``repeats``, ``threads``."""

    name = "brian2"
    description = "Brian2 export: numpy, cython or C++ standalone"
    module = "brian2"
    package = "brian2"
    extra = "brian2"

    def simulate(self, net: Network, duration_ms: float, seed: int, target: str = "numpy",
                 sim_state: Any = None, build_dir: str | None = None, repeats: int = 1,
                 threads: int = 1) -> dict:
        """:func:`run_brian2`."""
        return run_brian2(net, duration_ms, target=target, seed=seed, sim_state=sim_state,
                          build_dir=build_dir, repeats=repeats, threads=threads)
