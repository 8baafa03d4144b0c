"""The whole image-presentation STDP experiment (Diehl & Cook 2015; Hao et al. 2020).

:func:`run_protocol` trains through the recipe's :class:`Phase` list, keeps a running accuracy
(:class:`Curve`), checkpoints for ``--resume``, optionally labels the hidden neurons, tests
(:mod:`biolearn.protocols.evaluation`) and writes ``results.json`` metrics, ``weights.h5``,
``spikes.h5`` and the figures.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

from biolearn.analysis import readout
from biolearn.errors import BiolearnError
from biolearn.protocols.checkpoint import load_checkpoint, save_checkpoint
from biolearn.protocols.evaluation import (
    StreamedTestSpikes,
    epoch_test,
    hidden_theta,
    run_test,
    warn_if_silent,
)
from biolearn.protocols.image_stdp import EXC, Output, Presenter
from biolearn.runner import Diverged, check_finite


@dataclass
class Phase:
    """One training phase: how many passes, and how to switch plasticity/teachers for it."""

    name: str
    epochs: int
    setup: Callable[[Any], None]
    before_image: Callable[[Any, int], None]
    schedule: Callable[[Any, float], None] | None = None  # called with the phase's progress 0..1


def _extend(pos: dict, before: list | None, phases: list, n_images: int) -> bool:
    """A run resumed with more passes of its last phase (``--resume`` with a larger pass count,
    which the recipe allows only where the result equals a run given those passes from the
    start): a run that had trained all its passes continues with the last phase's next pass.
    Returns whether it had trained them all. ``before``: the phases' passes saved in the
    checkpoint; ``n_images``: the images of a pass."""
    now = [ph.epochs for ph in phases]
    if before is None or list(before) == now:
        return False
    if len(before) != len(now) or list(before[:-1]) != now[:-1] or before[-1] > now[-1]:
        raise BiolearnError(
            f"the checkpoint's passes per phase {list(before)} cannot continue as {now}",
            "on --resume", "resume with the passes of the run, or more of its last phase only")
    last = len(phases) - 1
    trained = pos["phase"] > last or (pos["phase"] == last and pos["epoch"] == before[-1] - 1
                                      and pos["index"] >= n_images)
    if not trained:
        return False  # the loop simply runs the further passes
    pos.update(phase=last, epoch=before[-1], index=0)
    return True


def run_protocol(cfg: Any, ctx: Any, sim: Any, phases: list, test_setup: Callable[[Any], None],
                 label_setup: Callable[[Any], None] | None, n_label: int,
                 class_pop: str | None, weights: Callable[[], dict], w_in: Callable[[], Any],
                 attrs: dict) -> dict:
    """Train through ``phases``, optionally label hidden neurons, test; write every output.

    ``cfg.params`` has the ``presentation`` and ``output`` sections
    (:class:`~biolearn.protocols.image_stdp.Presentation`,
    :class:`~biolearn.protocols.image_stdp.Output`); ``sim`` is the compiled network, its
    populations named as in :mod:`biolearn.protocols.image_stdp`. ``test_setup(sim)`` freezes it
    for testing (after a per-pass test the phase's ``setup`` restores training). With
    ``label_setup`` the first ``n_label`` training images, presented frozen, assign a class to each
    hidden neuron (Diehl & Cook 2015); otherwise the running curve's last assignment is used.
    ``class_pop`` names the class layer whose most active neuron is the prediction (Hao et al.
    2020); ``None`` classifies by the hidden neurons' vote. ``weights()`` gives the arrays of
    ``weights.h5`` (with ``attrs``), ``w_in()`` the input weights drawn as receptive fields.
    Returns the metrics."""
    from biolearn.data import load_for_run

    p = cfg.params
    pres, out = p.presentation, p.output
    x_tr, y_tr, x_te, y_te = load_for_run(cfg, ctx)
    x_tr, x_te = pres.images(x_tr), pres.images(x_te)
    pr = Presenter(sim, pres)
    n_hidden = sim.slice(EXC).stop - sim.slice(EXC).start
    curve = Curve(out.curve_every, n_hidden)
    pos = {"phase": 0, "epoch": 0, "index": 0, "train_s": 0.0, "presentations": 0}
    epoch_tests: list = []
    ckpt = ctx.checkpoint_path
    extended = False
    if ctx.resume and ckpt.exists():
        extra = load_checkpoint(ckpt, sim)
        # a checkpoint written before the count was kept: the count stays unknown to the end
        pos.update({"presentations": None, **extra["pos"]})
        pr.presentations = int(pos["presentations"] or 0)
        curve.restore(extra["curve"])
        epoch_tests.extend(extra.get("epoch_tests", []))
        if epoch_tests:  # so that a resumed run stopped again still reports them
            ctx.metrics["epoch_tests"] = epoch_tests
        extended = _extend(pos, extra.get("phase_epochs"), phases, len(x_tr))
    total = sum(ph.epochs for ph in phases) * len(x_tr)
    done = sum(ph.epochs for ph in phases[:pos["phase"]]) * len(x_tr) \
        + pos["epoch"] * len(x_tr) + pos["index"]
    bar = ctx.progress(total, "train")
    bar.update(done)
    t_start = time.perf_counter() - pos["train_s"]
    since_ckpt = 0

    def checkpoint(at: str | None = None, **where: int) -> None:
        # a diverged state is never saved: the last finite checkpoint stays for inspection
        check_finite(sim, at or f"at training image {done} of {total}")
        pos.update(where, train_s=time.perf_counter() - t_start,
                   presentations=None if pos["presentations"] is None else pr.presentations)
        save_checkpoint(ckpt, sim, {"pos": pos, "curve": curve.state(),
                                    "epoch_tests": epoch_tests,
                                    "phase_epochs": [ph.epochs for ph in phases]})

    def test_now(ph: Phase, e: int, nxt: tuple) -> None:
        """A test of a frozen copy during training (every pass or every ``test_every`` images),
        followed by a checkpoint so that ``--resume`` does not repeat it."""
        nonlocal t_start, since_ckpt
        if any(r["images_trained"] == done for r in epoch_tests):
            return
        t_eval = time.perf_counter()
        n_ev = min(out.epoch_test_images or len(x_te), len(x_te))
        r = epoch_test(ctx, sim, pr, x_te[:n_ev], y_te[:n_ev], test_setup, ph.setup,
                       class_pop, curve.assignments, cfg.seed, out.test_workers)
        t_start += time.perf_counter() - t_eval  # training time excludes these tests
        theta = hidden_theta(sim)
        epoch_tests.append({"phase": ph.name, "epoch": e + 1, "images_trained": done,
                            "n_test_images": n_ev, **r,
                            **({"hidden_theta": theta} if theta else {})})
        ctx.metrics["epoch_tests"] = epoch_tests
        checkpoint(phase=nxt[0], epoch=nxt[1], index=nxt[2])
        since_ckpt = 0
        if out.figures:  # the curve so far, for a run that is watched, stopped or killed
            from biolearn.analysis import plots

            t_plot = time.perf_counter()
            ctx.save_figure(plots.training_tests(epoch_tests, pass_length=len(x_tr)),
                            "training_tests")
            t_start += time.perf_counter() - t_plot

    try:
        if extended and (out.test_every_epoch or (out.test_every and done % out.test_every == 0)):
            # the test a run with these passes from the start takes here; the finished run
            # took its final test instead
            test_now(phases[-1], pos["epoch"] - 1, (pos["phase"], pos["epoch"], 0))
        for k in range(pos["phase"], len(phases)):
            ph = phases[k]
            ph.setup(sim)
            for e in range(pos["epoch"] if k == pos["phase"] else 0, ph.epochs):
                order = (np.arange(len(x_tr)) if pres.order == "file"
                         else np.random.default_rng([cfg.seed, k, e]).permutation(len(x_tr)))
                start = pos["index"] if (k == pos["phase"] and e == pos["epoch"]) else 0
                last = k == len(phases) - 1 and e == ph.epochs - 1
                for i in range(start, len(order)):
                    idx = order[i]
                    label = int(y_tr[idx])
                    if ph.schedule is not None:
                        ph.schedule(sim, (e * len(order) + i) / (ph.epochs * len(order)))
                    _, counts = pr.present(x_tr[idx], partial(ph.before_image, sim, label))
                    curve.add(counts[EXC], label, done + 1)
                    done += 1
                    since_ckpt += 1
                    bar.update(1)
                    if curve.points and done % 200 == 0:
                        bar.set_postfix(acc=f"{curve.points[-1][1]:.3f}")
                    if out.test_every and done % out.test_every == 0 and not (
                            last and i + 1 == len(order)):
                        test_now(ph, e, (k, e, i + 1))
                    if since_ckpt >= out.checkpoint_every:
                        checkpoint(phase=k, epoch=e, index=i + 1)
                        since_ckpt = 0
                if out.test_every_epoch and not last:
                    test_now(ph, e, (k + 1, 0, 0) if e + 1 == ph.epochs else (k, e + 1, 0))
    finally:
        bar.close()
    checkpoint(f"at the end of training ({done} images)", phase=len(phases), epoch=0, index=0)
    train_s = pos["train_s"]

    # ---- labelling pass (hidden neurons → classes) with frozen weights
    assignments = curve.assignments
    if label_setup is not None and n_label > 0:
        label_setup(sim)
        n_lab = min(n_label, len(x_tr))
        cnts = np.zeros((n_lab, n_hidden), np.int32)
        bar = ctx.progress(n_lab, "label")
        for i in range(n_lab):
            _, c = pr.present(x_tr[i])
            cnts[i] = c[EXC]
            bar.update(1)
        bar.close()
        assignments = readout.assign_labels(cnts, y_tr[:n_lab])

    # ---- test: blocks of images, each with its own RNG stream, spread over worker processes;
    # the recorded presentations stream into spikes.h5 as they are done
    theta = hidden_theta(sim)  # as training left it
    test_setup(sim)
    n_te = len(x_te)
    pops = out.spike_populations or list(sim.pop_index)
    y = y_te.astype(np.int64)
    sizes = {name: sim.slice(name).stop - sim.slice(name).start for name in pops}
    t0 = time.perf_counter()
    spike_file = StreamedTestSpikes(ctx.path("spikes.h5"), sizes, pres.t_present_ms, y)
    try:
        hid, cls, _ = run_test(ctx, sim, pr, x_te, pops, class_pop, out.spikes_test_images,
                               cfg.seed, out.test_workers, on_record=spike_file.add)
    finally:
        spike_file.close()
    test_s = time.perf_counter() - t0
    written = spike_file.written
    check_finite(sim, f"at the end of the test phase ({n_te} images)")
    if assignments is None:
        assignments = readout.assign_labels(hid, y)  # only if training gave none
    vote = readout.classification_metrics(readout.vote(hid, assignments), y)
    extra = {}
    if class_pop is not None:
        main = readout.classification_metrics(readout.argmax_or_silent(cls), y)
        extra["test_accuracy_silent_as_0"] = float(np.mean(readout.argmax_first(cls) == y))
    else:
        main = vote
    warn_if_silent(ctx, hid, main, n_te, class_pop)
    metrics = {
        "test_accuracy": main["accuracy"],
        "per_class_accuracy": main["per_class_accuracy"],
        "confusion_matrix": main["confusion_matrix"],
        "silent_fraction": main["silent_fraction"],
        **extra,
        "test_accuracy_vote": vote["accuracy"],
        "test_accuracy_vote_in_sample": float(np.mean(readout.vote_in_sample(hid, y) == y)),
        "hidden_allocation": readout.class_allocation(hid, y, assignments),
        **({"hidden_theta": theta} if theta else {}),
        "train_curve": [{"images": a, "accuracy": b} for a, b in curve.points],
        "n_train_images": int(len(x_tr)),
        "n_test_images": int(n_te),
        "train_images_per_s": (done / train_s) if train_s > 0 else None,
        "test_images_per_s": n_te / test_s if test_s > 0 else None,
        "train_time_s": train_s,
        "test_time_s": test_s,
        "presentations_per_image": (None if pos["presentations"] is None
                                    else pr.presentations / max(1, done + n_te)),
        "spikes_written": written,
        "peak_rss_mb": _peak_rss_mb(),
        "epoch_tests": epoch_tests,
        "epochs_trained": sum(ph.epochs for ph in phases),
    }
    if epoch_tests:
        # the best test during training or at the end: a reading of a periodically tested run
        best = max([*epoch_tests, {"images_trained": done, **metrics}],
                   key=lambda r: r.get("test_accuracy") or 0.0)
        metrics["best_test"] = {"images_trained": best["images_trained"],
                                "test_accuracy": best["test_accuracy"]}
    final = weights()
    for name, arr in final.items():
        a = np.asarray(arr)
        if a.dtype.kind in "fc" and not np.isfinite(a).all():
            raise Diverged(f"array '{name}' (for weights.h5)", "at the end of the run",
                           f" ({a.size - int(np.count_nonzero(np.isfinite(a)))} of {a.size} "
                           "values)")
    _write_outputs(ctx, out, metrics, w_in(), curve, main["confusion_matrix"], spike_file.first,
                   final, attrs)
    return metrics


@dataclass
class Curve:
    """Running training accuracy: hidden-layer vote with labels assigned on the previous block."""

    every: int
    n_hidden: int
    counts: list = field(default_factory=list)
    labels: list = field(default_factory=list)
    assignments: Any = None
    points: list = field(default_factory=list)  # (images seen, accuracy)

    def add(self, counts: np.ndarray, label: int, seen: int) -> None:
        self.counts.append(counts.astype(np.int32))
        self.labels.append(label)
        if len(self.labels) >= self.every:
            c, y = np.array(self.counts), np.array(self.labels)
            if self.assignments is not None:
                acc = float(np.mean(readout.vote(c, self.assignments) == y))
                self.points.append((seen, acc))
            self.assignments = readout.assign_labels(c, y)
            self.counts, self.labels = [], []

    def state(self) -> dict:
        return {"points": self.points,
                "assignments": None if self.assignments is None else self.assignments.tolist(),
                "counts": np.array(self.counts).tolist(), "labels": self.labels}

    def restore(self, d: dict) -> None:
        self.points = [tuple(x) for x in d["points"]]
        self.assignments = None if d["assignments"] is None else np.array(d["assignments"])
        self.counts = [np.array(c, np.int32) for c in d["counts"]]
        self.labels = list(d["labels"])


def _write_outputs(ctx: Any, out: Output, metrics: dict, w_in: np.ndarray, curve: Curve,
                   cm: Any, rec0: Any, weights: dict, attrs: dict) -> None:
    """Weights, figures, and a compact record of what was written."""
    from biolearn.analysis import plots
    from biolearn.io.store import save_weights

    save_weights(ctx.path("weights.h5"), weights, attrs)
    if out.figures:
        ctx.save_figure(plots.receptive_fields(w_in), "receptive_fields")
        ctx.save_figure(plots.confusion_matrix(np.array(cm)), "confusion_matrix")
        if curve.points:
            xs, ys = zip(*curve.points, strict=True)
            tests = [(r["images_trained"], r["test_accuracy"])
                     for r in metrics.get("epoch_tests", []) if r.get("test_accuracy") is not None]
            tests.append((metrics["n_train_images"] * metrics.get("epochs_trained", 1),
                          metrics["test_accuracy"]))
            ctx.save_figure(plots.accuracy_curve(list(xs), list(ys), test_points=tests),
                            "accuracy_curve")
        if metrics.get("epoch_tests"):
            final = {"images_trained": metrics["n_train_images"] * metrics["epochs_trained"],
                     **metrics}
            ctx.save_figure(plots.training_tests([*metrics["epoch_tests"], final],
                                                 pass_length=metrics["n_train_images"]),
                            "training_tests")
        if rec0 is not None:
            ctx.save_figure(plots.raster(rec0["spikes"], "test presentation 0", t0=rec0["t0"],
                                         sizes=rec0.get("sizes"),
                                         duration=rec0.get("duration_ms")), "raster")
    metrics.setdefault("files", sorted(p.name for p in ctx.out_dir.iterdir() if p.is_file()))


def _peak_rss_mb() -> dict:
    """Peak resident memory in MiB of this run (:func:`biolearn.alloc.peak_rss_mb`) and of the
    largest child process (test workers) this process has waited for."""
    import resource

    from biolearn.alloc import peak_rss_mb

    kb = 1024.0  # ru_maxrss is in KiB on Linux
    return {"main": peak_rss_mb(),
            "workers": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / kb}
