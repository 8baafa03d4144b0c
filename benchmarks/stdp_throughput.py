"""Training throughput of the Diehl & Cook 400-neuron STDP network: biolearn vs Brian2.

The same network (:func:`biolearn.models.diehl_cook.build`, exported with
:func:`biolearn.backends.brian2.to_brian2`) is trained on the same MNIST images with the same
presentation time in biolearn and in Brian2 (runtime/Cython and C++ standalone). To keep Brian2 on
its fastest path, every image is one segment of a single ``run``: input rates come from a
``TimedArray`` and the neuron state is reset at each image start by ``run_regularly``; biolearn
does the same per image (exact reset, new rates, 350 ms at dt 0.5 ms). Per-image weight
normalisation and the re-presentation rule are left out on both sides so the work is identical.

Run: ``biolearn bench stdp_throughput --json`` (``python -m biolearn.benchmarks.stdp_throughput``).
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from typing import Any

import numpy as np

from biolearn.registry import register_bench

N_EXC = 400
T_PRESENT_MS = 350.0


def _images(n: int) -> np.ndarray:
    from biolearn.data import load_mnist

    x, _, _, _ = load_mnist(n_train=n, n_test=1, quiet=True)
    return x.reshape(n, -1).astype(np.float64) / 4.0  # Diehl & Cook: pixel/4 Hz


def _input_spikes(rates: np.ndarray, dt: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Poisson input of all images as one spike list (per-step Bernoulli, rate·dt), image k
    occupying [k·350, (k+1)·350) ms: both simulators receive exactly the same input spikes."""
    rng = np.random.default_rng(seed)
    steps = int(round(T_PRESENT_MS / dt))
    idx, times = [], []
    for k, r in enumerate(rates):
        s, i = np.nonzero(rng.random((steps, r.size)) < r * dt / 1000.0)
        idx.append(i)
        times.append(k * T_PRESENT_MS + s * dt)
    return np.concatenate(idx), np.concatenate(times)


def _network(rates: np.ndarray, seed: int = 0, n_hidden: int | None = None) -> Any:
    """Diehl & Cook's network (``models.diehl_cook``, 400 neurons), or with ``n_hidden`` Hao et
    al.'s (``models.sym_stdp``), its Poisson input replaced by the pre-drawn input spikes."""
    from biolearn.engine import SpikeSource
    from biolearn.models import diehl_cook, sym_stdp

    recipe = diehl_cook if n_hidden is None else sym_stdp
    p = recipe.Params()
    p.n_exc = N_EXC if n_hidden is None else n_hidden
    net = recipe.build(p, np.random.default_rng(seed))
    idx, times = _input_spikes(rates, p.presentation.dt, seed)
    net.populations[0] = SpikeSource("input", 784, idx, times)
    net.monitors.clear()
    return net, p


def run_biolearn(rates: np.ndarray, threads: int = 1, n_hidden: int | None = None,
                 labels: np.ndarray | None = None) -> dict:
    """Images per second of biolearn training (first image excluded: JIT / cache load) of
    Diehl & Cook's network, or with ``n_hidden`` of Hao et al.'s (the label's class neuron
    driven by the 200 Hz teacher), on ``threads`` kernel threads."""
    net, p = _network(rates, n_hidden=n_hidden)
    t0 = time.perf_counter()
    sim = net.compile(seed=1, threads=threads)
    steps = int(round(T_PRESENT_MS / p.presentation.dt))
    seen = [0]

    def present() -> None:
        sim.reset_state()
        if n_hidden is not None:
            teach = np.zeros(10)
            teach[int(labels[seen[0]]) if labels is not None else seen[0] % 10] = 200.0
            sim.set_teacher("class", teach)
        seen[0] += 1
        sim.run(steps=steps)

    present()
    first = time.perf_counter() - t0
    sim.reset_counts()
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in rates[1:]:
        present()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    n = len(rates) - 1
    return {"images": n, "wall_s": wall, "cpu_s": cpu, "images_per_s": n / wall,
            "cpu_images_per_s": n / cpu, "first_image_s": first, "threads": threads,
            "exc_spikes": int(sim.spike_counts("exc").sum()),
            "weights_digest": _digest(sim)}


def _digest(sim: Any) -> str:
    """SHA-1 of every weight: equal digests, identical training."""
    import hashlib

    return hashlib.sha1(np.ascontiguousarray(sim.syn_w).tobytes()).hexdigest()


def run_brian2(rates: np.ndarray, target: str) -> dict:
    """Images per second of the exported network in Brian2 (build time reported separately)."""
    import resource

    import brian2 as b2

    from biolearn.backends.brian2 import to_brian2

    net, p = _network(rates)
    tmp = None
    old = b2.prefs.codegen.target
    try:
        if target == "cpp_standalone":
            tmp = tempfile.mkdtemp(prefix="biolearn_bench_")
            b2.set_device("cpp_standalone", directory=tmp, build_on_run=False)
        else:
            b2.prefs.codegen.target = target
        t_build = time.perf_counter()
        network, h = to_brian2(net)
        for name in ("exc", "inh"):  # exact state reset at every image start, as biolearn
            g = h["groups"][name]
            g.namespace["v_start"] = net.population(name).v_rest * b2.mV
            g.run_regularly("v = v_start\nge = 0\ngi = 0", dt=T_PRESENT_MS * b2.ms,
                            when="start", name=f"bench_reset_{name}")
        duration = len(rates) * T_PRESENT_MS * b2.ms
        if target == "cpp_standalone":
            network.run(duration)
            b2.device.build(directory=tmp, compile=True, run=True)
            run_s = float(b2.device._last_run_time)
            build_s = time.perf_counter() - t_build - float(b2.device.timers["run_binary"])
            c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            b2.device.run(directory=tmp, with_output=False, run_args=[])
            c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu_s = (c1.ru_utime - c0.ru_utime) + (c1.ru_stime - c0.ru_stime)
            run_s = min(run_s, float(b2.device._last_run_time))
            n = len(rates)
        else:
            network.run(T_PRESENT_MS * b2.ms)  # first image: code generation + compilation
            build_s = time.perf_counter() - t_build
            t0, c0 = time.perf_counter(), time.process_time()
            network.run(duration - T_PRESENT_MS * b2.ms)
            run_s, cpu_s = time.perf_counter() - t0, time.process_time() - c0
            n = len(rates) - 1
        spikes = int(h["spikes"]["exc"].num_spikes)
    finally:
        if target == "cpp_standalone":
            b2.device.reinit()
            b2.set_device("runtime")
            if tmp:
                shutil.rmtree(tmp, ignore_errors=True)
        b2.prefs.codegen.target = old
    return {"images": n, "run_s": run_s, "cpu_s": cpu_s, "build_s": build_s,
            "images_per_s": n / run_s, "cpu_images_per_s": n / cpu_s, "exc_spikes": spikes}


@register_bench("stdp_throughput", "Diehl & Cook 400-neuron STDP training: images/s vs Brian2 "
                                   "(--threads: also 1 vs N threads, and Hao et al. at 6400)")
def run(quiet: bool = False, n_images: int = 101, n_images_brian2: int = 21, threads: int = 1,
        n_hidden_large: int = 6400, n_images_large: int = 21) -> dict:
    """Training throughput; with ``threads`` > 1 also on that many threads (images/s, speed-up,
    identical weights) and Hao et al.'s network at ``n_hidden_large`` on 1 and N threads."""
    rates = _images(max(n_images, n_images_brian2, n_images_large))
    out: dict[str, Any] = {"bench": "stdp_throughput", "network": f"Diehl & Cook {N_EXC}",
                           "presentation_ms": T_PRESENT_MS, "dt_ms": 0.5}
    bl = run_biolearn(rates[:n_images])
    out["biolearn_images_per_s"] = bl["images_per_s"]
    out["biolearn_cpu_images_per_s"] = bl["cpu_images_per_s"]
    out["biolearn_first_image_s"] = bl["first_image_s"]
    if threads > 1:
        log = (lambda m: None) if quiet else (lambda m: print(m, file=sys.stderr, flush=True))
        log(f"stdp_throughput: biolearn on {threads} threads")
        bt = run_biolearn(rates[:n_images], threads=threads)
        out[f"biolearn_t{threads}_images_per_s"] = bt["images_per_s"]
        out[f"speedup_biolearn_t{threads}"] = bt["images_per_s"] / bl["images_per_s"]
        out[f"biolearn_t{threads}_weights_identical"] = bt["weights_digest"] == bl[
            "weights_digest"]
        for th in (1, threads):
            log(f"stdp_throughput: Hao et al. {n_hidden_large} hidden, {th} thread(s)")
            r = run_biolearn(rates[:n_images_large], threads=th, n_hidden=n_hidden_large)
            key = f"sym_stdp_{n_hidden_large}" + ("" if th == 1 else f"_t{th}")
            out[f"{key}_images_per_s"] = r["images_per_s"]
            out[f"{key}_weights_digest"] = r["weights_digest"]
        k1, kt = f"sym_stdp_{n_hidden_large}", f"sym_stdp_{n_hidden_large}_t{threads}"
        out[f"speedup_{kt}"] = out[f"{kt}_images_per_s"] / out[f"{k1}_images_per_s"]
        out[f"{kt}_weights_identical"] = (out.pop(f"{kt}_weights_digest")
                                          == out.pop(f"{k1}_weights_digest"))
    try:
        import brian2  # noqa: F401
    except ImportError:
        out["brian2"] = "not installed (pip install 'biolearn[brian2]')"
        return out
    for target, key in (("cython", "brian2_runtime"), ("cpp_standalone", "brian2_standalone")):
        r = run_brian2(rates[:n_images_brian2], target)
        out[f"{key}_images_per_s"] = r["images_per_s"]
        out[f"{key}_cpu_images_per_s"] = r["cpu_images_per_s"]
        out[f"{key}_build_s"] = r["build_s"]
        out[f"ratio_vs_{key}"] = bl["images_per_s"] / r["images_per_s"]
        out[f"cpu_ratio_vs_{key}"] = bl["cpu_images_per_s"] / r["cpu_images_per_s"]
    return out


if __name__ == "__main__":  # pragma: no cover
    print(json.dumps(run(quiet="--quiet" in sys.argv)))
