"""Export a biolearn :class:`~biolearn.engine.Network` to an equivalent Brian2 network.

:func:`to_brian2` writes the same equations, connectivity, delays, initial state and plasticity
rules in Brian2 (Stimberg, Brette & Goodman 2019, eLife 8:e47314), for validation and for users
who want Brian2's devices; :func:`run_brian2` runs the export on a runtime target (``numpy``,
``cython``) or as C++ standalone and returns spikes in biolearn's format.

Mapping (biolearn units are ms, mV, Hz; conductances in units of the leak conductance):

* LIF current based: ``dv/dt = (v_rest + i_bias − v + ge + gi)/τm : volt (unless refractory)``,
  ``dge/dt = −ge/τe : volt``; conductance based: ``dv/dt = ((v_rest + i_bias − v) +
  ge (E_e − v) + gi (E_i − v))/τm`` with dimensionless ``ge``, ``gi``. ``integration="euler"`` →
  Brian2 ``euler``; ``"exact"`` → ``exact`` (current) or ``exponential_euler`` (conductance);
  ``"euler_expsyn"`` → ``euler`` for v, with ge, gi as parameters multiplied by exp(−dt/τ) after
  the state update (a ``run_regularly``).
* θ is a parameter decayed by ``θ ← θ·exp(−dt/τθ)`` every step (``run_regularly``, exact like
  biolearn; Brian2's ``euler`` would give ``θ(1 − dt/τθ)``); the spike condition is
  ``v > v_thresh + θ − theta_offset``; the reset adds θ₊ (``add``) or θ₊·10 mV/|θ − 10 mV|
  (``hao``). ``v_floor`` is a ``clip`` run after the state update.
* Refractory period and delays are passed as whole steps (biolearn rounds ``t/dt`` to the nearest
  step; Brian2 would floor the refractory period), spike-source times likewise.
* Weights stay in biolearn's numbers (``w : 1``) and are scaled on delivery
  (``ge_post += w*mV`` for volt targets). STDP rules use per-synapse event-driven traces, which
  equal biolearn's per-neuron lazily decayed traces.

Brian2 schedule within a step: groups (state update, run_regularly) → thresholds (spike
detection, also ``lastspike`` and ``not_refractory`` are set here) → synapses (all ``pre``
pathways, order −1, then all ``post`` pathways, order +1; ties by name) → resets — the order of
:func:`biolearn.engine.kernels.run_steps`.
"""

from __future__ import annotations

import resource
import shutil
import tempfile
import time
from typing import Any

import numpy as np

from biolearn.engine.front import LIF, Network, PoissonSource, SpikeSource, StateMonitor
from biolearn.engine.kernels import PI_FREEZE, PI_TEACH
from biolearn.errors import BiolearnError, missing_extra
from biolearn.rules.stdp import DiehlCookSTDP, PairSTDP, STDPRule, SymmetricSTDP

_NEVER_S = -1e4  # Brian2's initial lastspike (s)
_BIG = 1e300  # stands for ±inf inside generated code (clip bounds)


def _b2() -> Any:
    try:
        import brian2
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise missing_extra("brian2", "brian2") from e
    return brian2


def _steps(x: Any, dt: float) -> np.ndarray:
    return np.round(np.asarray(x, float) / dt).astype(np.int64)


def _lif_group(b2: Any, p: LIF, dt_q: Any, ref_steps: int, name: str) -> Any:
    """NeuronGroup for one LIF population (equations of :class:`biolearn.engine.LIF`)."""
    mV, ms = b2.mV, b2.ms
    flag = " (unless refractory)" if ref_steps > 0 else ""
    if p.synapse == "current":
        eqs = f"dv/dt = (v_rest + i_bias - v + ge + gi)/tau_m : volt{flag}\n"
        gunit = "volt"
        method = "exact" if p.integration == "exact" else "euler"
    else:
        eqs = (f"dv/dt = ((v_rest + i_bias - v) + ge*(e_e - v) + gi*(e_i - v))/tau_m : volt{flag}"
               "\n")
        gunit = "1"
        method = "exponential_euler" if p.integration == "exact" else "euler"
    expsyn = p.integration == "euler_expsyn"
    if expsyn:  # Euler for v, exact decay of ge, gi after it (GeNN EXPDECAY): no ODE for g
        eqs += f"ge : {gunit}\ngi : {gunit}\n"
    else:
        eqs += f"dge/dt = -ge/tau_e : {gunit}\ndgi/dt = -gi/tau_i : {gunit}\n"
    eqs += "theta : volt\n"
    ns = {"v_rest": p.v_rest * mV, "i_bias": p.i_bias * mV, "tau_m": p.tau_m * ms,
          "tau_e": p.tau_e * ms, "tau_i": p.tau_i * ms, "e_e": p.e_e * mV, "e_i": p.e_i * mV,
          "v_thresh": p.v_thresh * mV, "v_reset": p.v_reset * mV,
          "theta_offset": p.theta_offset * mV, "theta_plus": p.theta_plus * mV,
          "theta_ten": 10.0 * mV, "theta_eps": 1e-3 * mV, "theta_big": _BIG * mV,
          "theta_decay": float(np.exp(-float(dt_q / ms) / p.tau_theta)),
          "decay_e": float(np.exp(-float(dt_q / ms) / p.tau_e)),
          "decay_i": float(np.exp(-float(dt_q / ms) / p.tau_i)),
          "v_floor": (p.v_floor if np.isfinite(p.v_floor) else -_BIG) * mV,
          "v_big": _BIG * mV}
    reset = "v = v_reset"
    if p.theta_rule == "add":
        reset += "\ntheta += theta_plus"
    elif p.theta_rule == "hao":  # Hao et al. 2020: θ += θ+·10/|θ − 10| (mV)
        reset += ("\ntheta += theta_plus*theta_ten"
                  "/clip(abs(theta - theta_ten), theta_eps, theta_big)")
    g = b2.NeuronGroup(p.n, eqs, threshold="v > v_thresh + theta - theta_offset", reset=reset,
                       refractory=(ref_steps * dt_q if ref_steps > 0 else False), method=method,
                       namespace=ns, dt=dt_q, name=name)
    if expsyn:  # order 1: after the state updater, which reads the conductances of step start
        g.run_regularly("ge = ge*decay_e\ngi = gi*decay_i", when="groups", order=1,
                        name=name + "_expsyn")
    if p.theta_rule != "none":
        g.run_regularly("theta = theta*theta_decay", when="groups", order=1, name=name + "_theta")
    if np.isfinite(p.v_floor):  # after the state updater (order 0), as biolearn floors each step
        g.run_regularly("v = clip(v, v_floor, v_big)", when="groups", order=2,
                        name=name + "_floor")
    return g


def _rule_code(rule: STDPRule) -> tuple[str, str, str, dict]:
    """Brian2 model / on_pre / on_post of an STDP rule, matching :mod:`biolearn.rules.stdp`."""
    p = rule.params()
    from biolearn.rules.stdp import (
        P_ETA_POST,
        P_ETA_PRE,
        P_INC_POST,
        P_INC_PRE,
        P_SET,
        P_TAU_POST1,
        P_TAU_POST2,
        P_TAU_PRE,
        P_WMAX,
        P_WMIN,
    )

    ns = {"tau_pre": p[P_TAU_PRE], "tau_post1": p[P_TAU_POST1], "tau_post2": p[P_TAU_POST2],
          "inc_pre": p[P_INC_PRE], "inc_post": p[P_INC_POST], "eta_pre": p[P_ETA_PRE],
          "eta_post": p[P_ETA_POST], "w_min": max(p[P_WMIN], -_BIG), "w_max": min(p[P_WMAX], _BIG)}
    model = ("dapre/dt = -apre/tau_pre : 1 (event-driven)\n"
             "dapost1/dt = -apost1/tau_post1 : 1 (event-driven)\n")
    setm = p[P_SET] != 0.0
    pre_tr = "apre = inc_pre" if setm else "apre += inc_pre"
    if isinstance(rule, SymmetricSTDP):
        on_pre = "w = clip(w + eta_pre*apost1, w_min, w_max)"
        on_post = "w = clip(w + eta_post*apre, w_min, w_max)"
        post_tr = "apost1 += inc_post"
    elif isinstance(rule, DiehlCookSTDP):
        model += "dapost2/dt = -apost2/tau_post2 : 1 (event-driven)\n"
        on_pre = "w = clip(w - eta_pre*apost1, w_min, w_max)"
        on_post = "w = clip(w + eta_post*apre*apost2, w_min, w_max)"  # post2 before its update
        post_tr = "apost1 = inc_post\napost2 = inc_post"
    elif isinstance(rule, PairSTDP) and rule.multiplicative:
        on_pre = "w = clip(w - eta_pre*apost1*(w - w_min), w_min, w_max)"
        on_post = "w = clip(w + eta_post*apre*(w_max - w), w_min, w_max)"
        post_tr = "apost1 = inc_post" if setm else "apost1 += inc_post"
    elif isinstance(rule, PairSTDP):
        on_pre = "w = clip(w - eta_pre*apost1, w_min, w_max)"
        on_post = "w = clip(w + eta_post*apre, w_min, w_max)"
        post_tr = "apost1 = inc_post" if setm else "apost1 += inc_post"
    else:
        raise BiolearnError(f"rule {type(rule).__name__} has no Brian2 export", "in to_brian2",
                            "use PairSTDP, DiehlCookSTDP or SymmetricSTDP")
    ns = {k: (v * _b2().ms if k.startswith("tau") else v) for k, v in ns.items()}
    return model, on_pre + "\n" + pre_tr, on_post + "\n" + post_tr, ns


def to_brian2(net: Network, sim_state: Any = None) -> tuple[Any, dict]:
    """Build the Brian2 equivalent of ``net``; returns ``(brian2.Network, handles)``.

    ``handles`` maps ``"groups"`` / ``"synapses"`` / ``"spikes"`` / ``"states"`` to dicts of the
    Brian2 objects keyed by biolearn name. With ``sim_state`` (a compiled
    :class:`~biolearn.engine.Simulation`) the current state is exported instead of the initial
    one: v, ge, gi, θ, time since the last spike, weights, rates and traces (decayed to now).
    Brian2 time restarts at 0; spikes still in flight in delays are not carried over.
    Call under the Brian2 device you want (runtime by default; see :func:`run_brian2`).
    """
    b2 = _b2()
    ms, mV = b2.ms, b2.mV
    dt = float(net.dt)
    dt_q = dt * ms
    sim = sim_state
    t_now = int(sim.t) if sim is not None else 0
    objs: list = []
    groups: dict[str, Any] = {}
    for k, p in enumerate(net.populations):
        gname = f"bl_{p.name}"
        if isinstance(p, LIF):
            if sim is not None and sim.pop_i[k, PI_TEACH] != 0:
                raise BiolearnError(f"population '{p.name}' is in teacher mode", "in to_brian2",
                                    "call sim.set_teacher(name, None) before exporting")
            ref = int(np.round(p.t_ref / dt))
            g = _lif_group(b2, p, dt_q, ref, gname)
            if sim is not None:
                sl = sim.slice(p.name)
                g.v = sim.v[sl] * mV
                g.ge = sim.ge[sl] * (mV if p.synapse == "current" else 1)
                g.gi = sim.gi[sl] * (mV if p.synapse == "current" else 1)
                g.theta = sim.theta[sl] * mV
                last = sim.last_spike[sl]
                if ref > 0:
                    ls = np.where(last > -(2**61), (last - t_now) * dt * 1e-3, _NEVER_S)
                    g.lastspike = ls * b2.second
                    g.not_refractory = (t_now - last) >= ref
                if sim.pop_i[k, PI_FREEZE] != 0:  # frozen θ: no decay, no increment
                    g.namespace["theta_decay"] = 1.0
                    g.namespace["theta_plus"] = 0.0 * mV
            else:
                unit = mV if p.synapse == "current" else 1
                g.v = (p.v_rest if p.v_init is None else np.asarray(p.v_init, float)) * mV
                g.ge = np.asarray(p.ge_init, float) * unit
                g.gi = np.asarray(p.gi_init, float) * unit
                g.theta = np.asarray(p.theta_init, float) * mV
        elif isinstance(p, PoissonSource):
            r = sim.rate[sim.slice(p.name)] if sim is not None else p.rates
            g = b2.PoissonGroup(p.n, np.broadcast_to(np.asarray(r, float), (p.n,)) * b2.Hz,
                                dt=dt_q, name=gname)
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
    for k, q in enumerate(net.projections):
        post = net.population(q.post)
        tv = {"e": "ge", "i": "gi", "v": "v"}[q.target]
        unit = mV if (q.target == "v" or post.synapse == "current") else 1
        d = np.broadcast_to(_steps(q.delay, dt), q.i.shape)
        homog = len(d) == 0 or bool(np.all(d == d[0]))
        w_now = sim.weights(q.name).reshape(-1) if sim is not None else q.w
        ns: dict[str, Any] = {"w_unit": unit}
        const = (q.rule is None and len(w_now) > 0 and bool(np.all(w_now == w_now[0])))
        if const:  # one weight for all synapses: a constant, as in Brian2's own benchmarks
            model, on_pre, on_post = "", f"{tv}_post += w_const*w_unit", None
            ns["w_const"] = float(w_now[0])
        else:
            model, on_pre, on_post = "w : 1\n", f"{tv}_post += w*w_unit", None
        if q.rule is not None:
            rmodel, rpre, rpost, rns = _rule_code(q.rule)
            model += rmodel
            on_pre += "\n" + rpre
            on_post = rpost
            ns.update(rns)
        kw: dict[str, Any] = {}
        if homog:
            kw["delay"] = (int(d[0]) if len(d) else 0) * dt_q
        s = b2.Synapses(groups[q.pre], groups[q.post], model=model or None, on_pre=on_pre,
                        on_post=on_post, namespace=ns, name=f"bl_syn_{q.name}", dt=dt_q, **kw)
        s.connect(i=q.i, j=q.j)
        if not const:
            s.w = w_now
        if not homog:
            s.delay = d * dt_q
        if q.rule is not None and sim is not None:
            _export_traces(sim, k, q, s)
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
    return network, {"groups": groups, "synapses": synapses, "spikes": spikes, "states": states}


def _export_traces(sim: Any, k: int, q: Any, s: Any) -> None:
    """Per-synapse Brian2 traces from biolearn's per-neuron traces, decayed to the current step."""
    par = sim.pr_par[k]
    t = sim.t
    lo_p, lo_o = int(sim.tp_off[k]), int(sim.to_off[k])
    n_pre = sim.net.population(q.pre).n
    n_post = sim.net.population(q.post).n
    xp = sim.tr_pre[lo_p:lo_p + n_pre] * np.exp(
        -(t - sim.tr_pre_t[lo_p:lo_p + n_pre]) * sim.dt / par[0])
    sl = slice(lo_o, lo_o + n_post)
    age = (t - sim.tr_post_t[sl]) * sim.dt
    x1 = sim.tr_post1[sl] * np.exp(-age / par[1])
    x2 = sim.tr_post2[sl] * np.exp(-age / par[2])
    s.apre = xp[q.i]
    s.apost1 = x1[q.j]
    if "apost2" in s.variables:
        s.apost2 = x2[q.j]


def run_brian2(net: Network, duration_ms: float, target: str = "numpy", seed: int | None = None,
               sim_state: Any = None, build_dir: str | None = None, repeats: int = 1) -> dict:
    """Export ``net`` and run it for ``duration_ms`` in Brian2.

    ``target``: ``"numpy"`` or ``"cython"`` (runtime code generation) or ``"cpp_standalone"``
    (C++ project built in ``build_dir`` or a temporary directory, removed afterwards).
    Returns ``{"spikes": {pop: (times_ms, ids)}, "weights": {proj: w}, "states": {...},
    "timing": {...}}``; weights are flat, in the projection's synapse order. For
    ``cpp_standalone`` the timing splits code generation + compilation (``build_s``) from the
    simulation itself (``run_s``, measured inside the binary) and the binary's wall time; with
    ``repeats`` > 1 the compiled binary is run again (also timing its CPU use) and the minimum
    times are reported.
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
        if "w" in s.variables:
            weights[q.name] = np.asarray(s.w[:], float)
    states = {}
    for key, m in h["states"].items():
        var = key.split(".", 1)[1]
        arr = np.asarray(getattr(m, var)).T  # [time, neuron]
        pop = net.population(key.split(".", 1)[0])
        if var in ("v", "theta") or pop.synapse == "current":
            arr = arr * 1e3  # volt → mV
        states[key] = arr
    return {"spikes": spikes, "weights": weights, "states": states}


def spike_steps(times_ms: np.ndarray, dt: float) -> np.ndarray:
    """Spike times (ms) → integer steps, for spike-for-spike comparisons."""
    return np.round(np.asarray(times_ms) / dt).astype(np.int64)
