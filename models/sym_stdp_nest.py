"""The sym-STDP network (:mod:`biolearn.models.sym_stdp`, Hao et al. 2020) evaluated in NEST.

:func:`evaluate_stdp_run` rebuilds a trained run's network in NEST (:mod:`biolearn.backends.nest`)
with its trained weights and θ frozen into thresholds, presents the test images with the recipe's
protocol and compares with biolearn's own test phase on the same images.
``biolearn run CONFIG --backend nest`` calls it after training (:func:`evaluate_run`).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from biolearn.analysis import readout
from biolearn.backends import register_evaluation
from biolearn.backends.nest import build
from biolearn.config import load_config
from biolearn.data import load_mnist
from biolearn.errors import BiolearnError
from biolearn.io.sonata import SpikeWriter
from biolearn.io.store import load_weights, write_json_atomic
from biolearn.models.sym_stdp import build as build_sym
from biolearn.protocols.image_stdp import CLS, EXC, INH, INPUT, Presenter
from biolearn.runner import RESOLVED, resolve_data_root


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
    (to split an evaluation over processes); ``n_test`` (default: the run's ``data.n_test``, all
    when that is unset) limits the images evaluated. Writes ``nest_eval.json`` and
    ``spikes_nest.h5`` (first ``spikes_images`` presentations) into ``run_dir``.
    """
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
    if n_test is None:
        n_test = cfg.data.n_test
    w, _ = load_weights(run / "weights.h5")
    net = build_sym(p, np.random.default_rng(seed))
    for q in net.projections:
        if q.name in ("input_exc", "exc_class"):
            q.w = np.asarray(w[q.name], float).reshape(-1).copy()
    theta = {EXC: np.asarray(w["theta_exc"], float)}
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
        sim.theta[sim.slice(EXC)] = theta[EXC]
        sim.set_teacher(CLS, None)
        sim.set_plastic("input_exc", False)
        sim.set_plastic("exc_class", False)
        sim.freeze_theta(EXC, True)
        pr = Presenter(sim, pres)
        pr.present(x_te[0])  # JIT warm-up, not timed
        cls_b = np.zeros((len(y), 10), np.int64)
        t0 = time.perf_counter()
        for k in range(len(y)):
            cls_b[k] = pr.present(x_te[k])[1][CLS]
        out["biolearn_test_s"] = time.perf_counter() - t0
        pred_b = readout.argmax_or_silent(cls_b)
        out["biolearn_accuracy"] = float(np.mean(pred_b == y))

    m = build(net, threads, seed, frozen=True, approximate=True, theta=theta,
              record=[EXC, INH, CLS])
    out["nest_build_s"] = m.build_s
    out["approximations"] = m.approximations
    nest = m.nest
    n_present, n_gap = int(round(pres.t_present_ms / net.dt)), int(round(gap_ms / net.dt))
    cls_n = np.zeros((len(y), 10), np.int64)
    recs: list = []
    presentations = 0
    sizes = {name: net.population(name).n for name in (EXC, INH, CLS)}
    t0 = time.perf_counter()
    # One Simulate per phase: poisson_generator reads its rate only when a run is prepared.
    for k in range(len(y)):
        pixels = x_te[k].reshape(-1).astype(np.float64)
        intensity = pres.intensity0
        while True:
            m.reset_state()
            m.set_rates(INPUT, 0.0)
            nest.Simulate(n_gap * net.dt)
            m.reset_state()
            m.clear_recorders()
            m.set_rates(INPUT, pixels * (intensity / 8.0))
            nest.Simulate(n_present * net.dt)
            presentations += 1
            spikes = m.take_spikes()
            if len(spikes[EXC][0]) >= pres.min_spikes or intensity >= pres.max_intensity:
                break
            intensity += pres.intensity_step
        cls_n[k] = np.bincount(spikes[CLS][1], minlength=10)
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


@register_evaluation("nest", "sym_stdp")
def evaluate_run(run_dir: str | os.PathLike, *, threads: int = 1, n_test: int | None = None,
                 data_root: str | None = None, quiet: bool = False) -> dict:
    """``biolearn run CONFIG --backend nest``: after biolearn trained the run in ``run_dir``,
    evaluate it in NEST (:func:`evaluate_stdp_run`) with a progress bar and print a summary."""
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
