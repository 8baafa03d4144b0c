"""Shared protocol of the STDP-on-MNIST recipes (Diehl & Cook 2015; Hao et al. 2020).

Network pieces, the presentation protocol (350 ms image, exact reset instead of the 150 ms rest
unless ``t_rest_ms`` > 0, "fewer than 5 spikes → raise intensity and present again"), checkpoints
for ``--resume``, read-outs, figures and the spike file. The recipes in ``sym_stdp.py`` and
``diehl_cook.py`` only choose populations, rules and constants.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

from biolearn.analysis import readout
from biolearn.config import param
from biolearn.engine import LIF, Network, SpikeMonitor, connect
from biolearn.runner import Diverged, check_finite

INPUT, EXC, INH, CLS = "input", "exc", "inh", "class"


@dataclass
class Presentation:
    """Image presentation protocol (Diehl & Cook 2015; Hao et al. 2020, their code)."""

    dt: float = param(0.5, "time step (ms)", min=0.01, max=1.0)
    t_present_ms: float = param(350.0, "image presentation (ms)", min=1.0)
    t_rest_ms: float = param(150.0, "silent rest between presentations (ms), as in the papers",
                             min=0.0)
    rest: str = param("reset", "how the rest is run. reset: exact rest state (v, conductances, "
                      "traces), θ decays over t_rest_ms; fastest. relax: the neurons are "
                      "simulated through the rest (v relaxes only partly), then the STDP traces "
                      "are cleared. simulate: everything is simulated (the papers' protocol, "
                      "slowest). docs/sym_stdp.md compares them",
                      choices=["reset", "relax", "simulate"])
    min_spikes: int = param(5, "present again with higher intensity if the hidden layer fired "
                            "fewer spikes than this", min=0)
    intensity0: float = param(2.0, "initial input intensity: rate = pixel/8 × intensity Hz "
                              "(2 ⇒ pixel/4, max 63.75 Hz)", min=0.0)
    intensity_step: float = param(1.0, "intensity increment on a re-presentation", min=0.0)
    max_intensity: float = param(32.0, "give up raising the intensity here", min=0.0)
    pixel_mean: float | None = param(None, "scale every image to this mean pixel first (rounded, "
                                     "saturating at 255); Hao et al. use 30 for Fashion-MNIST "
                                     "and raw pixels for MNIST (None)", min=1.0, max=255.0)

    def images(self, x: np.ndarray) -> np.ndarray:
        """The images as presented: scaled to ``pixel_mean`` when it is set."""
        from biolearn.data import scale_to_mean

        return x if self.pixel_mean is None else scale_to_mean(x, self.pixel_mean)


@dataclass
class Output:
    """What a run leaves on disk besides results.json."""

    spikes_test_images: int = param(100, "test presentations written to spikes.h5", min=0)
    spike_populations: list | None = param(None, "populations in spikes.h5 (None = all)")
    checkpoint_every: int = param(5000, "training images between checkpoints (--resume)", min=1)
    curve_every: int = param(2000, "training images per point of the running-accuracy curve",
                             min=10)
    figures: bool = param(True, "write PNG figures")
    test_workers: int = param(2, "processes sharing the test phase (results do not depend on it)",
                              min=1)
    test_every_epoch: bool = param(False, "also test after every pass but the last (frozen "
                                   "copy; training is unchanged); adds epoch_tests to the metrics")
    epoch_test_images: int | None = param(None, "test images for those tests (None = all)",
                                          min=1)


def lif(name: str, n: int, p: Any, **extra: Any) -> LIF:
    """A conductance LIF population from a params dataclass with the usual field names."""
    keys = ("tau_m", "v_rest", "v_reset", "v_thresh", "t_ref", "tau_e", "tau_i", "e_e", "e_i")
    kw = {k: getattr(p, k) for k in keys if hasattr(p, k)}
    kw.update(extra)
    return LIF(name, n, synapse="conductance", **kw)


def add_input_and_inhibition(net: Network, n_exc: int, w_ei: float, w_ie: float) -> None:
    """E→I one-to-one and I→E to all excitatory neurons but the partner (Diehl & Cook 2015)."""
    net.connect(connect.one_to_one("exc_inh", EXC, INH, n_exc, w_ei, target="e"))
    net.connect(connect.all_but_self("inh_exc", INH, EXC, n_exc, w_ie, target="i"))


def dense_uniform(rng: np.random.Generator, shape: tuple, w_max: float) -> np.ndarray:
    return rng.uniform(0.0, w_max, size=shape)


def monitor_all(net: Network) -> None:
    net.monitor(SpikeMonitor([p.name for p in net.populations]))


class Trainer:
    """Runs presentations on a compiled network and keeps what the run must save."""

    def __init__(self, sim: Any, pres: Presentation, out: Output, hidden: str = EXC):
        self.sim, self.pres, self.out, self.hidden = sim, pres, out, hidden
        self.n_present = int(round(pres.t_present_ms / pres.dt))
        self.n_rest = int(round(pres.t_rest_ms / pres.dt))
        self.sim.set_recording(None, False)
        self.presentations = 0  # including re-presentations
        self.events = 0

    def present(self, image: np.ndarray, before: Callable[[], None] | None = None
                ) -> tuple[np.ndarray, dict]:
        """Show one image; repeat with higher intensity while the hidden layer is too quiet.

        Returns the counts of every population (dict) of the accepted presentation."""
        sim, p = self.sim, self.pres
        intensity = p.intensity0
        hid = sim.slice(self.hidden)
        pixels = image.reshape(-1).astype(np.float64)
        while True:
            if p.rest == "reset":
                sim.reset_state()
                sim.decay_theta(self.n_rest)
            else:  # inputs and teachers silent, as in the papers
                sim.silence()
                sim.run(steps=self.n_rest)
                if p.rest == "relax":
                    sim.clear_traces()
            if before is not None:
                before()
            sim.reset_counts()
            sim.set_rates(INPUT, pixels * (intensity / 8.0))
            t0 = sim.t * sim.dt
            rec = sim.run(steps=self.n_present)
            rec["t0"] = t0
            self.presentations += 1
            n_hid = int(sim.counts[hid].sum())
            if n_hid >= p.min_spikes or intensity >= p.max_intensity:
                return rec, {name: sim.spike_counts(name) for name in sim.pop_index}
            intensity += p.intensity_step


def save_checkpoint(path: Any, sim: Any, extra: dict) -> None:
    """Atomically write the simulation state and loop position (a failed write leaves the previous
    checkpoint and no temporary file)."""
    from pathlib import Path

    from biolearn.io.store import atomic_path

    path = Path(path)
    state = sim.state_dict()
    rng = json.dumps(state.pop("rng"))
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, _rng=np.array(rng), _extra=np.array(json.dumps(extra)),
                     t=state.pop("t"), **state)
    except OSError as e:  # name the checkpoint, not its temporary file
        raise OSError(e.errno, e.strerror or str(e), str(path)) from e


def load_checkpoint(path: Any, sim: Any) -> dict:
    """Restore a :func:`save_checkpoint` file into ``sim``; returns the loop position.

    A file that is not a complete checkpoint (cut short, overwritten, another format) gives a
    one-line :class:`BiolearnError` saying how to start again."""
    import zipfile

    from biolearn.errors import BiolearnError

    try:
        with np.load(path, allow_pickle=False) as z:
            d = {k: z[k] for k in z.files if not k.startswith("_")}
            d["rng"] = json.loads(str(z["_rng"]))
            d["t"] = int(d["t"])
            extra = json.loads(str(z["_extra"]))
        if not isinstance(extra, dict) or "pos" not in extra:
            raise ValueError("no loop position")
    except (OSError, EOFError, ValueError, KeyError, TypeError, zipfile.BadZipFile,
            zipfile.LargeZipFile, AttributeError) as e:
        reason = " ".join(str(e).split())[:120] or type(e).__name__
        if "allow_pickle" in reason or "pickle" in reason:
            reason = "not a checkpoint written by biolearn"
        raise BiolearnError(
            f"the checkpoint is unreadable ({type(e).__name__}: {reason})", f"file {path}",
            "the run cannot continue from it: start it again with --overwrite (same --out), or "
            "restore the file") from None
    sim.load_state_dict(d)
    return extra


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


class StreamedTestSpikes:
    """``spikes.h5`` of the test phase, written as the recorded presentations come in.

    Presentation k starts at k·t_present ms; ``/presentations/test`` holds start times, labels and
    durations. The SONATA writer flushes every few seconds and on :meth:`close`, so a run stopped
    during the test phase keeps a readable file with the presentations recorded so far."""

    def __init__(self, path: Any, sizes: dict, t_present: float, labels: np.ndarray):
        from biolearn.io.sonata import SpikeWriter

        self.sizes, self.t_present, self.labels = sizes, float(t_present), labels
        self.written = {p: 0 for p in sizes}
        self.first: dict | None = None
        self.n = 0
        self.wr = SpikeWriter(path, sizes)

    def add(self, i: int, rec: dict) -> None:
        """Write test presentation ``i`` (they arrive in order, 0, 1, …)."""
        if i != self.n:
            raise RuntimeError(f"test presentation {i} arrived after {self.n - 1}")
        start = i * self.t_present
        for pop, (t, ids) in rec["spikes"].items():
            if pop in self.sizes and len(t):
                self.wr.write(pop, start + (t - rec["t0"]), ids)
                self.written[pop] += len(t)
        self.wr.write_presentations("test", np.array([start]), self.labels[i:i + 1],
                                    {"duration_ms": np.array([self.t_present])})
        if self.first is None:
            self.first = rec
        self.n += 1

    def close(self) -> None:
        self.wr.close()


def finish(ctx: Any, out: Output, metrics: dict, w_in: np.ndarray, curve: Curve,
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
        if rec0 is not None:
            ctx.save_figure(plots.raster(rec0["spikes"], "test presentation 0"), "raster")
    metrics.setdefault("files", sorted(p.name for p in ctx.out_dir.iterdir() if p.is_file()))


TEST_BLOCK = 250  # test images per RNG stream / work unit
_TEST: Any = None  # (sim, trainer, images, populations, class pop, n recorded, seed, emit)


def _test_block(block: tuple[int, int]) -> tuple:
    """Present test images [lo, hi) with plasticity off; RNG seeded by (seed, lo) so results do
    not depend on the number of worker processes."""
    sim, tr, x, pops, class_pop, n_rec, seed, emit = _TEST
    lo, hi = block
    sim.rng = np.random.default_rng([seed, 7, lo])
    n0 = tr.presentations
    h = np.zeros((hi - lo, sim.slice(EXC).stop - sim.slice(EXC).start), np.int32)
    c = np.zeros((hi - lo, 10), np.int32)
    recs = []
    for i in range(lo, hi):
        record = i < n_rec
        sim.set_recording(pops if record else None, record)
        rec, cnt = tr.present(x[i])
        if record and emit is not None:  # in the main process: straight to the spike file
            emit(i, rec)
        elif record:
            recs.append(rec)
        h[i - lo] = cnt[EXC]
        if class_pop is not None:
            c[i - lo] = cnt[class_pop]
    sim.set_recording(None, False)
    return (lo, hi), h, c, recs, tr.presentations - n0


def run_test(ctx: Any, sim: Any, tr: Trainer, x_te: np.ndarray, pops: list,
             class_pop: str | None, n_record: int, seed: int, workers: int,
             desc: str = "test", on_record: Callable[[int, dict], None] | None = None
             ) -> tuple[np.ndarray, np.ndarray, list]:
    """Present ``x_te`` with the current (frozen) setup: hidden and class spike counts, records.

    Blocks of :data:`TEST_BLOCK` images each have their own RNG stream, so the result does not
    depend on ``workers`` (forked processes sharing the blocks). With ``on_record(i, rec)`` the
    recorded presentations are handed over in order as they are done (one by one in this process,
    a block at a time from workers) instead of being returned.
    """
    global _TEST
    n_te = len(x_te)
    n_hidden = sim.slice(EXC).stop - sim.slice(EXC).start
    blocks = [(b, min(b + TEST_BLOCK, n_te)) for b in range(0, n_te, TEST_BLOCK)]
    workers = min(workers, len(blocks))
    _TEST = (sim, tr, x_te, pops, class_pop, n_record, seed,
             on_record if workers <= 1 else None)
    hid = np.zeros((n_te, n_hidden), np.int32)
    cls = np.zeros((n_te, 10), np.int32)
    recs: list = []

    def take(r: tuple) -> None:
        (lo, hi), h, c, rr, npres = r
        hid[lo:hi], cls[lo:hi] = h, c
        if workers > 1:  # the workers counted in their own copies
            tr.presentations += npres
        if on_record is not None:
            for j, rec in enumerate(rr):
                on_record(lo + j, rec)
        else:
            recs.extend(rr)

    bar = ctx.progress(n_te, desc)
    try:
        if workers > 1:
            import multiprocessing as mp

            from biolearn.runner import worker_signals

            with mp.get_context("fork").Pool(workers, initializer=worker_signals) as pool:
                for r in pool.imap(_test_block, blocks):
                    take(r)
                    bar.update(r[0][1] - r[0][0])
        else:
            for blk in blocks:
                take(_test_block(blk))
                bar.update(blk[1] - blk[0])
    finally:
        bar.close()
        _TEST = None
    return hid, cls, recs


def epoch_test(ctx: Any, sim: Any, tr: Trainer, x_te: np.ndarray, y_te: np.ndarray,
               test_setup: Callable[[Any], None], resume_setup: Callable[[Any], None],
               class_pop: str | None, assignments: Any, seed: int, workers: int) -> dict:
    """Test accuracy of the network as it is now, leaving the training state exactly as it was."""
    state = sim.state_dict()
    n_pres = tr.presentations
    test_setup(sim)
    hid, cls, _ = run_test(ctx, sim, tr, x_te, [], class_pop, 0, seed, workers, "epoch test")
    sim.load_state_dict(state)
    tr.presentations = n_pres
    resume_setup(sim)
    y = y_te.astype(np.int64)
    res = {}
    if assignments is not None:
        res["test_accuracy_vote"] = float(np.mean(readout.vote(hid, assignments) == y))
        res["hidden_allocation"] = readout.class_allocation(hid, y, assignments)
    if class_pop is not None:
        res["test_accuracy"] = float(np.mean(readout.argmax_or_silent(cls) == y))
    else:
        res["test_accuracy"] = res.get("test_accuracy_vote")
    return res


def _peak_rss_mb() -> dict:
    """Peak resident memory of this process and of its (test worker) children, in MiB."""
    import resource

    kb = 1024.0  # ru_maxrss is in KiB on Linux
    return {"main": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / kb,
            "workers": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / kb}


def now() -> float:
    return time.perf_counter()



@dataclass
class Phase:
    """One training phase: how many passes, and how to switch plasticity/teachers for it."""

    name: str
    epochs: int
    setup: Callable[[Any], None]
    before_image: Callable[[Any, int], None]
    schedule: Callable[[Any, float], None] | None = None  # called with the phase's progress 0..1


def run_protocol(cfg: Any, ctx: Any, sim: Any, phases: list, test_setup: Callable[[Any], None],
                 label_setup: Callable[[Any], None] | None, n_label: int,
                 class_pop: str | None, weights: Callable[[], dict], w_in: Callable[[], Any],
                 attrs: dict) -> dict:
    """Train through ``phases``, optionally label hidden neurons, test; write every output."""
    from biolearn.data import load_mnist

    p = cfg.params
    pres, out = p.presentation, p.output
    x_tr, y_tr, x_te, y_te = load_mnist(root=ctx.data_root, dataset=cfg.data.dataset,
                                        n_train=cfg.data.n_train, n_test=cfg.data.n_test,
                                        quiet=ctx.quiet)
    x_tr, x_te = pres.images(x_tr), pres.images(x_te)
    tr = Trainer(sim, pres, out)
    n_hidden = sim.slice(EXC).stop - sim.slice(EXC).start
    curve = Curve(out.curve_every, n_hidden)
    pos = {"phase": 0, "epoch": 0, "index": 0, "train_s": 0.0, "presentations": 0}
    epoch_tests: list = []
    ckpt = ctx.checkpoint_path
    if ctx.resume and ckpt.exists():
        extra = load_checkpoint(ckpt, sim)
        pos.update(extra["pos"])
        curve.restore(extra["curve"])
        epoch_tests.extend(extra.get("epoch_tests", []))
    total = sum(ph.epochs for ph in phases) * len(x_tr)
    done = sum(ph.epochs for ph in phases[:pos["phase"]]) * len(x_tr) \
        + pos["epoch"] * len(x_tr) + pos["index"]
    bar = ctx.progress(total, "train")
    bar.update(done)
    t_start = now() - pos["train_s"]
    since_ckpt = 0

    def checkpoint(at: str | None = None, **where: int) -> None:
        # a diverged state is never saved: the last finite checkpoint stays for inspection
        check_finite(sim, at or f"at training image {done} of {total}")
        pos.update(where, train_s=now() - t_start)
        save_checkpoint(ckpt, sim, {"pos": pos, "curve": curve.state(),
                                    "epoch_tests": epoch_tests})

    try:
        for k in range(pos["phase"], len(phases)):
            ph = phases[k]
            ph.setup(sim)
            for e in range(pos["epoch"] if k == pos["phase"] else 0, ph.epochs):
                order = np.random.default_rng([cfg.seed, k, e]).permutation(len(x_tr))
                start = pos["index"] if (k == pos["phase"] and e == pos["epoch"]) else 0
                for i in range(start, len(order)):
                    idx = order[i]
                    label = int(y_tr[idx])
                    if ph.schedule is not None:
                        ph.schedule(sim, (e * len(order) + i) / (ph.epochs * len(order)))
                    _, counts = tr.present(x_tr[idx], partial(ph.before_image, sim, label))
                    curve.add(counts[EXC], label, done + 1)
                    done += 1
                    since_ckpt += 1
                    bar.update(1)
                    if curve.points and done % 200 == 0:
                        bar.set_postfix(acc=f"{curve.points[-1][1]:.3f}")
                    if since_ckpt >= out.checkpoint_every:
                        checkpoint(phase=k, epoch=e, index=i + 1)
                        since_ckpt = 0
                last = k == len(phases) - 1 and e == ph.epochs - 1
                if out.test_every_epoch and not last and not any(
                        r["phase"] == ph.name and r["epoch"] == e + 1 for r in epoch_tests):
                    t_eval = now()
                    n_ev = min(out.epoch_test_images or len(x_te), len(x_te))
                    r = epoch_test(ctx, sim, tr, x_te[:n_ev], y_te[:n_ev], test_setup, ph.setup,
                                   class_pop, curve.assignments, cfg.seed, out.test_workers)
                    t_start += now() - t_eval  # training time excludes these tests
                    epoch_tests.append({"phase": ph.name, "epoch": e + 1, "images_trained": done,
                                        "n_test_images": n_ev, **r})
                    ctx.metrics["epoch_tests"] = epoch_tests
                    nxt = (k + 1, 0) if e + 1 == ph.epochs else (k, e + 1)
                    checkpoint(phase=nxt[0], epoch=nxt[1], index=0)
                    since_ckpt = 0
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
            _, c = tr.present(x_tr[i])
            cnts[i] = c[EXC]
            bar.update(1)
        bar.close()
        assignments = readout.assign_labels(cnts, y_tr[:n_lab])

    # ---- test: blocks of images, each with its own RNG stream, spread over worker processes;
    # the recorded presentations stream into spikes.h5 as they are done
    test_setup(sim)
    n_te = len(x_te)
    pops = out.spike_populations or list(sim.pop_index)
    y = y_te.astype(np.int64)
    sizes = {name: sim.slice(name).stop - sim.slice(name).start for name in pops}
    t0 = now()
    spike_file = StreamedTestSpikes(ctx.path("spikes.h5"), sizes, pres.t_present_ms, y)
    try:
        hid, cls, _ = run_test(ctx, sim, tr, x_te, pops, class_pop, out.spikes_test_images,
                               cfg.seed, out.test_workers, on_record=spike_file.add)
    finally:
        spike_file.close()
    test_s = now() - t0
    written = spike_file.written
    check_finite(sim, f"at the end of the test phase ({n_te} images)")
    if assignments is None:
        assignments = readout.assign_labels(hid, y)  # only if training gave none
    vote = readout.classification_metrics(readout.vote(hid, assignments), y)
    if class_pop is not None:
        main = readout.classification_metrics(readout.argmax_or_silent(cls), y)
    else:
        main = vote
    warn_if_silent(ctx, hid, main, n_te, class_pop)
    metrics = {
        "test_accuracy": main["accuracy"],
        "per_class_accuracy": main["per_class_accuracy"],
        "confusion_matrix": main["confusion_matrix"],
        "silent_fraction": main["silent_fraction"],
        "test_accuracy_vote": vote["accuracy"],
        "hidden_allocation": readout.class_allocation(hid, y, assignments),
        "train_curve": [{"images": a, "accuracy": b} for a, b in curve.points],
        "n_train_images": int(len(x_tr)),
        "n_test_images": int(n_te),
        "train_images_per_s": (done / train_s) if train_s > 0 else None,
        "test_images_per_s": n_te / test_s if test_s > 0 else None,
        "train_time_s": train_s,
        "test_time_s": test_s,
        "presentations_per_image": tr.presentations / max(1, done + n_te),
        "spikes_written": written,
        "peak_rss_mb": _peak_rss_mb(),
        "epoch_tests": epoch_tests,
        "epochs_trained": sum(ph.epochs for ph in phases),
    }
    final = weights()
    for name, arr in final.items():
        a = np.asarray(arr)
        if a.dtype.kind in "fc" and not np.isfinite(a).all():
            raise Diverged(f"array '{name}' (for weights.h5)", "at the end of the run",
                           f" ({a.size - int(np.count_nonzero(np.isfinite(a)))} of {a.size} "
                           "values)")
    finish(ctx, out, metrics, w_in(), curve, main["confusion_matrix"], spike_file.first, final,
           attrs)
    return metrics


N_CLASSES = 10


def warn_if_silent(ctx: Any, hid: np.ndarray, main: dict, n_te: int,
                   class_pop: str | None) -> None:
    """Warn (results.json ``warnings`` and stderr) when the trained network did not work: no
    hidden spike on the whole test set, or a test accuracy within two binomial standard errors
    of chance (1/10) or below it."""
    warn = getattr(ctx, "warn", None)
    if warn is None or n_te == 0:
        return
    if int(hid.sum()) == 0:
        warn(f"the hidden layer '{EXC}' fired no spike on any of the {n_te} test images: the "
             "network is silent (check the input intensity, weights and thresholds)")
    acc = float(main["accuracy"])
    chance = 1.0 / N_CLASSES
    if acc <= chance + 2.0 * np.sqrt(chance * (1.0 - chance) / n_te):
        silent = float(main.get("silent_fraction", 0.0))
        extra = (f"; the {'class' if class_pop else 'hidden'} layer was silent on "
                 f"{100 * silent:.0f}% of them" if silent > 0 else "")
        warn(f"test accuracy {acc:.3f} is at or below chance level ({chance:.2f} for "
             f"{N_CLASSES} classes) on {n_te} test images{extra}")
