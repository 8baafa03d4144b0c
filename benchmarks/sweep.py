"""Sweep benchmark: what ``biolearn sweep`` costs per run and gains from parallel workers.

Four seeds of ``configs/stdp_mnist_smoke.yaml`` (a few seconds each) are run

* ``serial_warm``: one after another in this process through :func:`biolearn.runner.execute`
  (the code a sweep run executes), after one warm-up run that fills the Numba cache;
* ``serial_cli``: one after another as separate ``biolearn run`` processes (what a user without
  sweeps would type);
* ``sweep_1``: ``biolearn sweep --seeds 4 --workers 1`` (Dask local cluster included):
  ``overhead_per_run_s`` = (sweep_1 − serial_warm) / 4 and ``overhead_fraction`` relative to one
  warm run;
* ``sweep_2``: the same with ``--workers 2``: ``ratio_sweep2_vs_serial_cli`` (< 1: faster).

Every timing is wall time of the whole step, from the same invocation. Needs MNIST
(``$BIOLEARN_DATA``) and the checkout's ``configs/`` (run it from the repository root, or pass
``config=`` to :func:`run`).

Run: ``biolearn bench sweep --json`` from the repository root; the last line is the JSON result.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from biolearn.benchmarks._common import log, main_print
from biolearn.errors import BiolearnError
from biolearn.registry import register_bench

CONFIG = Path("configs") / "stdp_mnist_smoke.yaml"


def _timed(fn: Any) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


@register_bench("sweep", "biolearn sweep: overhead per run and 2-worker speed-up, 4 smoke runs")
def run(quiet: bool = False, config: str | Path = CONFIG, n_runs: int = 4,
        workers: int = 2) -> dict[str, Any]:
    """Time ``n_runs`` seeds of ``config`` serially and as sweeps (see the module docstring)."""
    from biolearn.config import load_config
    from biolearn.runner import execute
    from biolearn.sweep import run_sweep

    config = Path(config)
    if not config.is_file():
        raise BiolearnError(f"config '{config}' not found", "benchmark sweep",
                            "run it from the repository root (it uses configs/)")
    seeds = list(range(n_runs))
    env = {**os.environ, "BIOLEARN_THREADS": "1"}
    with tempfile.TemporaryDirectory(prefix="biolearn-bench-sweep-") as tmp:
        root = Path(tmp)
        log("warm-up run", quiet)
        execute(load_config(config, ["seed=99"]), out_dir=root / "warm", quiet=True, threads=1)

        def serial_warm() -> None:
            for s in seeds:
                execute(load_config(config, [f"seed={s}"]), out_dir=root / f"w{s}", quiet=True,
                        threads=1)

        def serial_cli() -> None:
            for s in seeds:
                subprocess.run([sys.executable, "-m", "biolearn.cli", "run", str(config),
                                "--seed", str(s), "--out", str(root / f"c{s}"), "-q"],
                               check=True, env=env, capture_output=True)

        def sweep(n: int) -> None:
            run_sweep(config, seeds=seeds, out=root / f"sweep{n}", workers=n, quiet=True,
                      figures=False)

        log(f"{n_runs} runs in this process", quiet)
        t_warm = _timed(serial_warm)
        log(f"{n_runs} runs as biolearn run processes", quiet)
        t_cli = _timed(serial_cli)
        log("sweep, 1 worker", quiet)
        t_s1 = _timed(lambda: sweep(1))
        log(f"sweep, {workers} workers", quiet)
        t_s2 = _timed(lambda: sweep(workers))
    per_run = t_warm / n_runs
    overhead = (t_s1 - t_warm) / n_runs
    return {
        "config": str(config), "n_runs": n_runs, "workers": workers,
        "cores": os.cpu_count(),
        "serial_warm_s": round(t_warm, 3), "serial_cli_s": round(t_cli, 3),
        "sweep_1_s": round(t_s1, 3), f"sweep_{workers}_s": round(t_s2, 3),
        "run_s": round(per_run, 3), "overhead_per_run_s": round(overhead, 3),
        "overhead_fraction": round(overhead / per_run, 3),
        f"ratio_sweep{workers}_vs_serial_cli": round(t_s2 / t_cli, 3),
        f"ratio_sweep{workers}_vs_serial_warm": round(t_s2 / t_warm, 3),
    }


if __name__ == "__main__":
    main_print(run())
