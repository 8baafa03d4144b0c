"""AdEx network benchmark: biolearn vs Brian2 (Cython runtime and C++ standalone) on the same
4000-neuron network of adaptive exponential integrate-and-fire neurons, 1 s at dt 0.1 ms.

Network: the built-in :data:`~biolearn.engine.neurons.ADEX` definition with the values of Brette &
Gerstner 2005 (C 281 pF, g_L 30 nS, E_L −70.6 mV, V_T −50.4 mV, Δ_T 2 mV, τw 144 ms, a 4 nS,
b 80.5 pA, V_r −70.6 mV, spike cut V_peak = V_T + 5 Δ_T, forward Euler), a constant drive of
650 pA (just above the 627 pA rheobase) and an exponential synaptic current (τ 5 ms). As in
Brette et al. 2007: one population ``P``, 3200 excitatory and 800 inhibitory neurons, connection
probability 0.02 (self-connections allowed), one weight per projection (+60 pA, −300 pA onto
``I_syn``); v0 ~ U(E_L, V_T), w0 ~ U(0, 100 pA). It fires at about 8 Hz.

Every engine runs in a fresh subprocess (:mod:`biolearn.benchmarks._common`): biolearn cold (empty
Numba cache) and warm (a second process reusing it), Brian2 with Cython and Brian2
``cpp_standalone`` (code generation and C++ build time apart from run time); timings are the
minimum over repeats. ``same_spikes`` compares the spike trains (step, neuron) of biolearn and
Brian2 C++ standalone through a digest; ``ratio_vs_*`` is biolearn time / Brian2 time (< 1:
biolearn is faster), as in the other benchmarks.

Run: ``biolearn bench adex --json`` or ``python -m biolearn.benchmarks.adex``; the last printed
line is the JSON result.
"""

from __future__ import annotations

import tempfile
from typing import Any

import numpy as np

from biolearn.benchmarks._common import (
    DT,
    N_E,
    N_I,
    P_CONN,
    T_MS,
    _random_edges,
    log,
    main_print,
    spawn,
    spawn_engine,
)
from biolearn.engine import Network, Neurons, SpikeMonitor
from biolearn.engine.front import Projection
from biolearn.engine.neurons import ADEX
from biolearn.registry import register_bench

W_E, W_I = 60.0, -300.0  # pA onto I_syn
I_EXT = 650.0  # pA


def adex_network(seed: int = 1, n_e: int = N_E, n_i: int = N_I) -> Network:
    """The benchmark's AdEx network (see the module docstring)."""
    rng = np.random.default_rng(seed)
    n = n_e + n_i
    net = Network(dt=DT)
    e_l, v_t = -70.6, -50.4
    net.add(Neurons("P", n, ADEX, params={"I_ext": I_EXT},
                    init={"v": rng.uniform(e_l, v_t, n), "w": rng.uniform(0.0, 100.0, n)}))
    i, j = _random_edges(rng, range(0, n_e), n, P_CONN)
    net.connect(Projection("exc", "P", "P", i, j, W_E, target="I_syn"))
    i, j = _random_edges(rng, range(n_e, n), n, P_CONN)
    net.connect(Projection("inh", "P", "P", i, j, W_I, target="I_syn"))
    net.monitor(SpikeMonitor())
    return net


@register_bench("adex", "4000 AdEx (Brette & Gerstner 2005), p 0.02, 1 s: biolearn vs Brian2 "
                        "cython/cpp")
def run(quiet: bool = False, repeats: int = 3) -> dict:
    """AdEx network side by side with Brian2 (runtime Cython and cpp_standalone)."""
    spec = {"net": "adex", "seed": 1, "repeats": repeats}
    res: dict[str, Any] = {"network": "AdEx (Brette & Gerstner 2005), E/I 3200/800, p 0.02",
                           "n": N_E + N_I, "dt_ms": DT, "t_ms": T_MS}
    with tempfile.TemporaryDirectory(prefix="biolearn_numba_") as cache:
        log("adex: biolearn cold (empty Numba cache)", quiet)
        cold = spawn({**spec, "engine": "biolearn"}, cache_dir=cache)
        log("adex: biolearn warm (second process, cached)", quiet)
        warm = spawn({**spec, "engine": "biolearn"}, cache_dir=cache)
    engines = {"biolearn": {**warm, "cold_first_run_s": cold.get("first_run_s"),
                            "cold_process_wall_s": cold.get("process_wall_s"),
                            "cold_spikes": cold.get("spikes")}}
    if "error" in cold:
        engines["biolearn"]["cold_error"] = cold["error"]
    try:
        import brian2  # noqa: F401
    except ImportError:
        engines["brian2"] = "not installed (pip install 'biolearn[brian2]')"
    else:
        for eng in ("brian2_cython", "brian2_cpp"):
            log(f"adex: {eng}", quiet)
            engines[eng] = spawn_engine(spec, eng)
    b = engines["biolearn"]
    cpp = engines.get("brian2_cpp", {})
    cy = engines.get("brian2_cython", {})
    out: dict[str, Any] = {
        **res,
        "biolearn_s": b.get("run_s"),
        "biolearn_cpu_s": b.get("run_cpu_s"),
        "biolearn_cold_first_run_s": b.get("cold_first_run_s"),
        "biolearn_warm_first_run_s": b.get("first_run_s"),
        "brian2_standalone_s": cpp.get("run_s"),
        "brian2_standalone_build_s": cpp.get("build_s"),
        "brian2_cython_s": cy.get("run_s"),
        "biolearn_spikes": b.get("spikes"),
        "brian2_standalone_spikes": cpp.get("spikes"),
        "brian2_cython_spikes": cy.get("spikes"),
        "biolearn_rate_hz": b.get("rate_hz"),
        "brian2_standalone_rate_hz": cpp.get("rate_hz"),
        "same_spikes": "spike_digest" in b and b.get("spike_digest") == cpp.get("spike_digest"),
        "same_spikes_cython": "spike_digest" in b and b.get("spike_digest") == cy.get(
            "spike_digest"),
    }
    for key, r in (("brian2_standalone", cpp), ("brian2_cython", cy)):
        if r.get("run_s") and b.get("run_s"):
            out[f"ratio_vs_{key}"] = b["run_s"] / r["run_s"]
        cpu = r.get("run_cpu_s", r.get("binary_cpu_s"))
        if cpu and b.get("run_cpu_s"):  # CPU time: robust when the cores are shared
            out[f"cpu_ratio_vs_{key}"] = b["run_cpu_s"] / cpu
    out["engines"] = engines
    return out


if __name__ == "__main__":
    main_print(run())
