"""Shared machinery of the COBA / CUBA / scaling / AdEx benchmarks.

Networks: Brette et al. 2007 (J Comput Neurosci 23:349), benchmarks 1 (COBA) and 2 (CUBA), after
Vogels & Abbott 2005: 4000 LIF neurons (3200 excitatory, 800 inhibitory), connection probability
0.02, dt 0.1 ms, 1 s simulated, no external input (activity is started by the random initial
state). One population ``P`` with an excitatory projection from its first 3200 neurons and an
inhibitory one from the last 800, as in Brian2's example scripts.

Each engine runs in its own subprocess (``python -m biolearn.benchmarks._common worker ...``) so
that JIT caches, Brian2's device state and memory do not leak between measurements; the worker
prints one JSON line. Timings are the minimum over repeats (the machine may be shared).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

import numpy as np

from biolearn.engine import LIF, Network, SpikeMonitor
from biolearn.engine.front import Projection

N_E, N_I, P_CONN = 3200, 800, 0.02
DT, T_MS = 0.1, 1000.0


def _random_edges(rng: np.random.Generator, pre: range, n_post: int, p: float):
    """Bernoulli(p) connectivity from the neurons ``pre`` to ``n_post`` targets (self allowed)."""
    ii, jj = [], []
    step = 400  # rows per block: bounded memory
    for a in range(pre.start, pre.stop, step):
        b = min(a + step, pre.stop)
        r, c = np.nonzero(rng.random((b - a, n_post)) < p)
        ii.append(r + a)
        jj.append(c)
    return np.concatenate(ii).astype(np.int64), np.concatenate(jj).astype(np.int64)


def brette_network(kind: str, seed: int = 1, integration: str | None = None,
                   n_e: int = N_E, n_i: int = N_I) -> Network:
    """The COBA (``kind="coba"``) or CUBA (``"cuba"``) network of Brette et al. 2007.

    COBA: τm 20, τe 5, τi 10 ms; rest −60, threshold −50, reset −60 mV; refractory 5 ms;
    E_e 0, E_i −80 mV; we 0.6, wi 6.7 (units of the 10 nS leak); v0 ~ N(−65, 5) mV,
    ge0 ~ N(4, 1.5), gi0 ~ N(20, 12). CUBA: τm 20, τe 5, τi 10 ms; V_t −50, V_r −60,
    E_l −49 mV; refractory 5 ms; we 1.62 mV, wi −9 mV; v0 = V_r + U(0,1)·(V_t − V_r).
    Integration: Euler for COBA, exact for CUBA unless given.
    """
    rng = np.random.default_rng(seed)
    n = n_e + n_i
    net = Network(dt=DT)
    if kind == "coba":
        v0 = -60.0 + (rng.standard_normal(n) * 5.0 - 5.0)
        ge0 = rng.standard_normal(n) * 1.5 + 4.0
        gi0 = rng.standard_normal(n) * 12.0 + 20.0
        net.add(LIF("P", n, synapse="conductance", integration=integration or "euler",
                    tau_m=20.0, tau_e=5.0, tau_i=10.0, v_rest=-60.0, v_reset=-60.0,
                    v_thresh=-50.0, t_ref=5.0, e_e=0.0, e_i=-80.0,
                    v_init=v0, ge_init=ge0, gi_init=gi0))
        we, wi = 0.6, 6.7
    elif kind == "cuba":
        v0 = -60.0 + rng.random(n) * 10.0
        net.add(LIF("P", n, synapse="current", integration=integration or "exact",
                    tau_m=20.0, tau_e=5.0, tau_i=10.0, v_rest=-49.0, v_reset=-60.0,
                    v_thresh=-50.0, t_ref=5.0, v_init=v0))
        we, wi = 1.62, -9.0
    else:
        raise ValueError(kind)
    i, j = _random_edges(rng, range(0, n_e), n, P_CONN)
    net.connect(Projection("exc", "P", "P", i, j, we, target="e"))
    i, j = _random_edges(rng, range(n_e, n), n, P_CONN)
    net.connect(Projection("inh", "P", "P", i, j, wi, target="i"))
    net.monitor(SpikeMonitor())
    return net


def indegree_network(n: int, k: int = 80, seed: int = 1) -> Network:
    """Scaling sweep: the COBA neuron and weights with fixed in-degree ``k`` (80% excitatory)
    instead of fixed probability, so synaptic events grow linearly with ``n``."""
    rng = np.random.default_rng(seed)
    n_e = int(0.8 * n)
    ke = int(0.8 * k)
    net = Network(dt=DT)
    net.add(LIF("P", n, synapse="conductance", integration="euler", tau_m=20.0, tau_e=5.0,
                tau_i=10.0, v_rest=-60.0, v_reset=-60.0, v_thresh=-50.0, t_ref=5.0,
                e_e=0.0, e_i=-80.0, v_init=-60.0 + (rng.standard_normal(n) * 5.0 - 5.0),
                ge_init=rng.standard_normal(n) * 1.5 + 4.0,
                gi_init=rng.standard_normal(n) * 12.0 + 20.0))
    post = np.repeat(np.arange(n, dtype=np.int64), ke)
    pre = rng.integers(0, n_e, size=n * ke)
    # same total drive as Brette's network: in-degree 80 with 64 E / 16 I inputs
    net.connect(Projection("exc", "P", "P", pre, post, 0.6, target="e"))
    post = np.repeat(np.arange(n, dtype=np.int64), k - ke)
    pre = rng.integers(n_e, n, size=n * (k - ke))
    net.connect(Projection("inh", "P", "P", pre, post, 6.7, target="i"))
    net.monitor(SpikeMonitor())
    return net


def spike_stats(times_ms: np.ndarray, ids: np.ndarray, n: int, t_ms: float) -> dict:
    """Mean rate (Hz) and mean coefficient of variation of the ISIs (neurons with ≥ 3 spikes)."""
    order = np.lexsort((times_ms, ids))
    t, i = np.asarray(times_ms)[order], np.asarray(ids)[order]
    cvs = []
    if len(t):
        bounds = np.flatnonzero(np.diff(i)) + 1
        for seg in np.split(t, bounds):
            if len(seg) >= 3:
                isi = np.diff(seg)
                cvs.append(isi.std() / isi.mean())
    return {"spikes": int(len(t)), "rate_hz": float(len(t) / n / (t_ms / 1000.0)),
            "cv_isi": float(np.mean(cvs)) if cvs else float("nan")}


def spike_digest(times_ms: np.ndarray, ids: np.ndarray, dt: float) -> str:
    """SHA-1 of the spike train as sorted (step, neuron) pairs: equal digests, identical spikes."""
    import hashlib

    steps = np.round(np.asarray(times_ms, float) / dt).astype(np.int64)
    ids = np.asarray(ids, np.int64)
    order = np.lexsort((ids, steps))
    pairs = np.stack([steps[order], ids[order]], axis=1)
    return hashlib.sha1(np.ascontiguousarray(pairs).tobytes()).hexdigest()


def _net_for(spec: dict) -> Network:
    if spec["net"] == "scaling":
        return indegree_network(spec["n"], spec.get("k", 80), spec.get("seed", 1))
    if spec["net"] == "adex":
        from biolearn.benchmarks.adex import adex_network

        return adex_network(spec.get("seed", 1))
    return brette_network(spec["net"], spec.get("seed", 1), spec.get("integration"))


def _n_syn(net: Network) -> int:
    return int(sum(len(q.i) for q in net.projections))


def worker(spec: dict) -> dict:
    """Run one engine on one network; returns timings (s), spike statistics and sizes."""
    engine, reps = spec["engine"], int(spec.get("repeats", 3))
    t_ms = float(spec.get("t_ms", T_MS))
    t0 = time.perf_counter()
    net = _net_for(spec)
    n = net.populations[0].n
    out: dict[str, Any] = {"engine": engine, "n": n, "synapses": _n_syn(net),
                           "build_net_s": time.perf_counter() - t0}
    threads = int(spec.get("threads", 1))
    if engine == "biolearn":
        out["threads"] = threads
        t0 = time.perf_counter()
        sim = net.compile(seed=spec.get("seed", 1), threads=threads)
        res = sim.run(t_ms)  # first call: JIT compilation or cache load included
        out["first_run_s"] = time.perf_counter() - t0
        runs, cpus = [], []
        for _ in range(reps):  # fresh state, same network, already compiled
            sim2 = net.compile(seed=spec.get("seed", 1), threads=threads)
            t0, c0 = time.perf_counter(), time.process_time()
            sim2.run(t_ms)
            runs.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
        out["run_s"], out["run_cpu_s"] = min(runs), min(cpus)
        t, i = res["spikes"]["P"]
    elif engine == "nest":
        from biolearn.backends.nest import run_network

        runs = [run_network(net, t_ms, threads=int(spec.get("threads", 1)),
                            seed=spec.get("seed", 1), approximate=True) for _ in range(reps)]
        out["approximations"] = runs[0]["approximations"]
        out["threads"] = int(spec.get("threads", 1))
        out["build_s"] = min(r["timing"]["build_s"] for r in runs)
        out["run_s"] = min(r["timing"]["simulate_s"] for r in runs)
        out["run_cpu_s"] = min(r["timing"]["simulate_cpu_s"] for r in runs)
        t, i = runs[0]["spikes"]["P"]
    else:
        from biolearn.backends.brian2 import run_brian2

        target = {"brian2_cython": "cython", "brian2_cpp": "cpp_standalone",
                  "brian2_numpy": "numpy"}[engine]
        if target == "cpp_standalone":
            out["threads"] = threads  # OpenMP threads of the standalone binary
            r = run_brian2(net, t_ms, target=target, repeats=reps, threads=threads)
            out["build_s"] = r["timing"]["build_s"]  # code generation + C++ compilation
            out["run_s"], out["binary_s"] = r["timing"]["run_s"], r["timing"]["binary_s"]
            if "binary_cpu_s" in r["timing"]:  # whole binary incl. loading/saving arrays
                out["binary_cpu_s"] = r["timing"]["binary_cpu_s"]
        else:
            r = run_brian2(net, t_ms, target=target)
            out["first_run_s"] = r["timing"]["run_s"]  # includes code generation/compilation
            tims = [run_brian2(net, t_ms, target=target)["timing"] for _ in range(reps)]
            out["run_s"] = min(x["run_s"] for x in tims)
            out["run_cpu_s"] = min(x["run_cpu_s"] for x in tims)
        t, i = r["spikes"]["P"]
    out.update(spike_stats(t, i, n, t_ms))
    out["spike_digest"] = spike_digest(t, i, net.dt)
    out_deg = sum(np.bincount(q.i, minlength=n) for q in net.projections)
    out["syn_events"] = int(out_deg[np.asarray(i, np.int64)].sum())  # deliveries made
    out["syn_events_per_s"] = out["syn_events"] / out["run_s"]
    out["syn_events_per_s_per_core"] = out["syn_events_per_s"] / max(1, threads)
    out["s_per_sim_s"] = out["run_s"] / (t_ms / 1000.0)
    import resource

    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kB
    return out


def spawn(spec: dict, cache_dir: str | None = None, timeout: float = 3600.0) -> dict:
    """Run :func:`worker` in a fresh Python process; ``cache_dir`` sets NUMBA_CACHE_DIR."""
    env = dict(os.environ)
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = cache_dir
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "biolearn.benchmarks._common", json.dumps(spec)],
                       capture_output=True, text=True, env=env, timeout=timeout)
    wall = time.perf_counter() - t0
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if p.returncode != 0 or not lines:
        return {"engine": spec["engine"], "error": (p.stderr or p.stdout)[-2000:]}
    res = json.loads(lines[-1])
    res["process_wall_s"] = wall
    return res


def log(msg: str, quiet: bool) -> None:
    if not quiet:
        print(msg, file=sys.stderr, flush=True)


def nest_available() -> bool:
    """Whether the optional NEST peer (``biolearn[nest]``) can be imported."""
    import importlib.util

    return importlib.util.find_spec("nest") is not None


def nest_engines() -> tuple[str, ...]:
    """NEST columns: one thread and one thread per core (``nest_t<threads>``)."""
    if not nest_available():
        return ()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return tuple(dict.fromkeys(f"nest_t{t}" for t in (1, max(1, cores or 1))))


def spawn_engine(spec: dict, eng: str, timeout: float = 3600.0,
                 cache_dir: str | None = None) -> dict:
    """:func:`spawn` for an engine name; ``<engine>_t<k>`` runs it on k threads (biolearn's
    kernels, Brian2 C++ standalone's OpenMP, NEST's local threads)."""
    base, _, k = eng.rpartition("_t")
    if base and k.isdigit():
        return spawn({**spec, "engine": base, "threads": int(k)}, cache_dir=cache_dir,
                     timeout=timeout)
    return spawn({**spec, "engine": eng}, cache_dir=cache_dir, timeout=timeout)


def thread_engines(threads: int) -> tuple[str, ...]:
    """The engines run again on ``threads`` threads by ``bench --threads``."""
    if threads <= 1:
        return ()
    return (f"biolearn_t{threads}", f"brian2_cpp_t{threads}") + (
        (f"nest_t{threads}",) if nest_available() else ())


def thread_ratios(res: dict, threads: int) -> dict:
    """Speed-ups over one thread and biolearn against its peers at ``threads`` threads."""
    out: dict[str, float] = {}
    bt = res.get(f"biolearn_t{threads}", {})
    for eng in ("biolearn", "brian2_cpp", "nest"):
        one = res.get(eng if eng != "nest" else "nest_t1", {})
        many = res.get(f"{eng}_t{threads}", {})
        if "run_s" in one and "run_s" in many:
            out[f"speedup_{eng}_t{threads}"] = one["run_s"] / many["run_s"]
    for eng in (f"brian2_cpp_t{threads}", f"nest_t{threads}"):
        if "run_s" in bt and "run_s" in res.get(eng, {}):
            out[f"biolearn_t{threads}/{eng}_run"] = bt["run_s"] / res[eng]["run_s"]
    if "spike_digest" in bt and "spike_digest" in res.get("biolearn", {}):
        out[f"biolearn_t{threads}_spikes_identical"] = float(
            bt["spike_digest"] == res["biolearn"]["spike_digest"])
    return out


def brette_bench(kind: str, quiet: bool = False, repeats: int = 3,
                 engines: tuple[str, ...] | None = None, threads: int = 1) -> dict:
    """Side-by-side run of the Brette et al. 2007 ``kind`` network; see the module docstring.

    Default engines: biolearn, Brian2 Cython and C++ standalone, and NEST with 1 thread and
    with one thread per core when ``nest`` is installed (it integrates exactly with ≥ 1-step
    delays, so its spike trains differ; rate and ISI CV are compared instead). ``threads`` > 1
    adds biolearn, Brian2 C++ standalone (OpenMP) and NEST on that many threads, with the
    speed-ups over one thread and the ratios at equal thread counts (``thread_ratios``)."""
    if engines is None:
        engines = ("biolearn", "brian2_cython", "brian2_cpp") + nest_engines()
        engines += tuple(e for e in thread_engines(threads) if e not in engines)
    spec = {"net": kind, "seed": 1, "repeats": repeats}
    res: dict[str, Any] = {"network": f"Brette et al. 2007 {kind.upper()}", "n": N_E + N_I,
                           "dt_ms": DT, "t_ms": T_MS}
    if "biolearn" in engines:
        with tempfile.TemporaryDirectory(prefix="biolearn_numba_") as cache:
            log(f"{kind}: biolearn cold (empty Numba cache)", quiet)
            cold = spawn({**spec, "engine": "biolearn"}, cache_dir=cache)
            log(f"{kind}: biolearn warm (second process, cached)", quiet)
            warm = spawn({**spec, "engine": "biolearn"}, cache_dir=cache)
        res["biolearn"] = {**warm, "cold_first_run_s": cold.get("first_run_s"),
                           "cold_process_wall_s": cold.get("process_wall_s"),
                           "warm_first_run_s": warm.get("first_run_s"),
                           "cold_spikes": cold.get("spikes")}
        if "error" in cold:
            res["biolearn"]["cold_error"] = cold["error"]
    for eng in engines:
        if eng == "biolearn":
            continue
        log(f"{kind}: {eng}", quiet)
        res[eng] = spawn_engine(spec, eng)
    b = res.get("biolearn", {})
    res["thread_ratios"] = thread_ratios(res, threads) if threads > 1 else {}
    ratios = {}
    for eng in engines:
        if eng != "biolearn" and "run_s" in res.get(eng, {}) and "run_s" in b:
            ratios[f"biolearn/{eng}_run"] = b["run_s"] / res[eng]["run_s"]
            cpu = res[eng].get("run_cpu_s", res[eng].get("binary_cpu_s"))
            if cpu and "run_cpu_s" in b:  # CPU time: robust when the cores are shared
                ratios[f"biolearn/{eng}_run_cpu"] = b["run_cpu_s"] / cpu
            ratios[f"biolearn/{eng}_rate"] = b["rate_hz"] / res[eng]["rate_hz"]
            ratios[f"biolearn/{eng}_cv_isi"] = b["cv_isi"] / res[eng]["cv_isi"]
    if "build_s" in res.get("brian2_cpp", {}) and "process_wall_s" in b:
        c = res["brian2_cpp"]  # end to end: whole warm biolearn process vs build + binary
        ratios["biolearn_warm_process/brian2_cpp_build+binary"] = (
            b["process_wall_s"] / (c["build_s"] + c["binary_s"]))
    res["ratios"] = ratios
    return res


def main_print(res: dict) -> None:
    print(json.dumps(res, default=float))


if __name__ == "__main__":
    print(json.dumps(worker(json.loads(sys.argv[1])), default=float))
