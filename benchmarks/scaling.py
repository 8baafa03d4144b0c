"""Scaling sweep: COBA-type network at fixed in-degree (80 inputs: 64 E, 16 I) from 1k to 100k
neurons, 1 s at dt 0.1 ms. Reports seconds per simulated second and synaptic events (deliveries)
per second for biolearn, and for Brian2 cpp_standalone at a few sizes.

Run: ``biolearn bench scaling --json`` or ``python -m biolearn.benchmarks.scaling``.
"""

from __future__ import annotations

import numpy as np

from biolearn.benchmarks._common import log, main_print, spawn
from biolearn.registry import register_bench

SIZES = (1_000, 3_000, 10_000, 30_000, 100_000)
BRIAN2_SIZES = (10_000, 100_000)


@register_bench("scaling", "fixed in-degree COBA sweep 1k-100k neurons: s per simulated s, "
                           "synaptic events per s")
def run(quiet: bool = False, sizes: tuple[int, ...] = SIZES,
        brian2_sizes: tuple[int, ...] = BRIAN2_SIZES) -> dict:
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
               "syn_events": r.get("syn_events")}
        if n in brian2_sizes:
            log(f"scaling: brian2 cpp_standalone n={n}", quiet)
            c = spawn({"net": "scaling", "n": n, "engine": "brian2_cpp", "repeats": 2})
            row.update({"brian2_cpp_s_per_sim_s": c.get("s_per_sim_s"),
                        "brian2_cpp_syn_events_per_s": c.get("syn_events_per_s"),
                        "brian2_cpp_binary_cpu_s": c.get("binary_cpu_s"),
                        "brian2_cpp_build_s": c.get("build_s"),
                        "brian2_cpp_rate_hz": c.get("rate_hz")})
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
    return out


if __name__ == "__main__":
    main_print(run())
