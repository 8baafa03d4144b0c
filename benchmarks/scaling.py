"""Scaling sweep: COBA-type network at fixed in-degree (80 inputs: 64 E, 16 I) from 1k to 1M
neurons, 1 s at dt 0.1 ms. Reports seconds per simulated second, synaptic events (deliveries)
per second (and per core) and peak memory for biolearn, and for Brian2 cpp_standalone at a few
sizes; ``--threads N`` adds biolearn and Brian2 (OpenMP) on N threads. With NEST installed
(``biolearn[nest]``) a second table times biolearn against NEST with 1 thread and one thread per
core at 4k, 40k and 100k neurons over ``NEST_T_MS`` simulated ms (NEST's exact conductance
integration costs far more per step, so a shorter run keeps the sweep within minutes; costs are
given per simulated second).

Run: ``biolearn bench scaling --json`` or ``python -m biolearn.benchmarks.scaling``.
"""

from __future__ import annotations

import numpy as np

from biolearn.benchmarks._common import log, main_print, nest_engines, spawn, spawn_engine
from biolearn.registry import register_bench

SIZES = (1_000, 3_000, 10_000, 30_000, 100_000, 300_000, 1_000_000)
BRIAN2_SIZES = (10_000, 100_000, 1_000_000)
NEST_SIZES = (4_000, 40_000, 100_000)
NEST_T_MS = 250.0


@register_bench("scaling", "fixed in-degree COBA sweep 1k-100k neurons: s per simulated s, "
                           "synaptic events per s")
def run(quiet: bool = False, sizes: tuple[int, ...] = SIZES,
        brian2_sizes: tuple[int, ...] = BRIAN2_SIZES,
        nest_sizes: tuple[int, ...] = NEST_SIZES, nest_t_ms: float = NEST_T_MS,
        threads: int = 1) -> dict:
    """Sweep network size at fixed in-degree; cost should grow linearly with synaptic events.

    ``*_s_per_sim_s`` is wall time, ``biolearn_cpu_s_per_sim_s`` CPU time (robust on shared
    cores); the log-log slope of CPU cost against synaptic events is 1 for linear scaling."""
    rows = []
    for n in sizes:
        log(f"scaling: biolearn n={n}", quiet)
        r = spawn({"net": "scaling", "n": n, "engine": "biolearn", "repeats": 2})
        row = {"n": n, "synapses": r.get("synapses"), "rate_hz": r.get("rate_hz"),
               "biolearn_s_per_sim_s": r.get("s_per_sim_s"),
               "biolearn_cpu_s_per_sim_s": r.get("run_cpu_s"),
               "biolearn_syn_events_per_s": r.get("syn_events_per_s"),
               "biolearn_peak_rss_mb": r.get("peak_rss_mb"),
               "syn_events": r.get("syn_events"), "spike_digest": r.get("spike_digest")}
        if threads > 1:
            log(f"scaling: biolearn n={n}, {threads} threads", quiet)
            rt = spawn({"net": "scaling", "n": n, "engine": "biolearn", "repeats": 2,
                        "threads": threads})
            k = f"biolearn_t{threads}"
            row.update({f"{k}_s_per_sim_s": rt.get("s_per_sim_s"),
                        f"{k}_syn_events_per_s_per_core": rt.get("syn_events_per_s_per_core"),
                        f"{k}_peak_rss_mb": rt.get("peak_rss_mb"),
                        f"{k}_spikes_identical": rt.get("spike_digest") == r.get("spike_digest")})
            if rt.get("s_per_sim_s") and r.get("s_per_sim_s"):
                row[f"speedup_{k}"] = r["s_per_sim_s"] / rt["s_per_sim_s"]
        for th in dict.fromkeys((1, threads)) if n in brian2_sizes else ():
            k = "brian2_cpp" if th == 1 else f"brian2_cpp_t{th}"
            log(f"scaling: brian2 cpp_standalone n={n}, {th} thread(s)", quiet)
            c = spawn({"net": "scaling", "n": n, "engine": "brian2_cpp", "repeats": 2,
                       "threads": th})
            row.update({f"{k}_s_per_sim_s": c.get("s_per_sim_s"),
                        f"{k}_syn_events_per_s": c.get("syn_events_per_s"),
                        f"{k}_binary_cpu_s": c.get("binary_cpu_s"),
                        f"{k}_build_s": c.get("build_s"),
                        f"{k}_rate_hz": c.get("rate_hz")})
            if "error" in c:
                row[f"{k}_error"] = c["error"][-300:]
        if "error" in r:
            row["error"] = r["error"]
        rows.append(row)
    # fit only active networks: at 1k neurons the activity may die out (almost no events)
    ok = [r for r in rows if r.get("syn_events") and r.get("biolearn_cpu_s_per_sim_s")
          and (r.get("rate_hz") or 0) > 1.0]
    out: dict = {"in_degree": 80, "dt_ms": 0.1, "t_ms": 1000.0, "rows": rows}
    if len(ok) >= 2:  # log-log slope of cost vs events: 1 means linear scaling
        x = np.log([r["syn_events"] for r in ok])
        y = np.log([r["biolearn_cpu_s_per_sim_s"] for r in ok])
        out["cost_vs_events_loglog_slope"] = float(np.polyfit(x, y, 1)[0])
    if nest_engines() and nest_sizes:
        out["nest"] = nest_table(nest_sizes, nest_t_ms, quiet)
    return out


def nest_table(sizes: tuple[int, ...], t_ms: float, quiet: bool = False) -> dict:
    """biolearn vs NEST (1 thread, one thread per core) on the fixed in-degree network."""
    rows = []
    nest = nest_engines()
    for n in sizes:
        spec = {"net": "scaling", "n": n, "repeats": 1, "t_ms": t_ms}
        row: dict = {"n": n}
        for eng in ("biolearn",) + nest:
            log(f"scaling: {eng} n={n} ({t_ms:g} ms)", quiet)
            r = spawn_engine(spec, eng)
            if "error" in r:
                row[f"{eng}_error"] = r["error"][-300:]
                continue
            row["synapses"] = r["synapses"]
            row[f"{eng}_s_per_sim_s"] = r["s_per_sim_s"]
            row[f"{eng}_cpu_s_per_sim_s"] = r["run_cpu_s"] / (t_ms / 1000.0)
            row[f"{eng}_rate_hz"] = r["rate_hz"]
            if "build_s" in r:
                row[f"{eng}_build_s"] = r["build_s"]
        for eng in nest:
            if f"{eng}_s_per_sim_s" in row and "biolearn_s_per_sim_s" in row:
                row[f"{eng}/biolearn"] = row[f"{eng}_s_per_sim_s"] / row["biolearn_s_per_sim_s"]
        rows.append(row)
    return {"t_ms": t_ms, "rows": rows}


if __name__ == "__main__":
    main_print(run())
