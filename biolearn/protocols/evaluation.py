"""The test phase of the image-presentation protocol, spread over forked worker processes.

Test images are presented in blocks of :data:`TEST_BLOCK` with plasticity off; each block has its
own RNG stream, seeded by (seed, block start), so results do not depend on the number of worker
processes. Workers are forked: the compiled network and the images reach them as copy-on-write
memory, never pickled, held by the test phase's own :class:`BlockEvaluator` (nothing is kept at
module level, so test phases of several runs in one process stay apart).
:class:`StreamedTestSpikes` writes the recorded presentations into ``spikes.h5`` as they are
done; :func:`warn_if_silent` flags a trained network that did not work.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from biolearn.analysis import readout
from biolearn.protocols.image_stdp import EXC, Presenter

TEST_BLOCK = 250  # test images per RNG stream / work unit
N_CLASSES = 10


@dataclass
class BlockEvaluator:
    """One test phase: what every block needs, shared with forked workers.

    ``emit(i, rec)`` receives recorded presentation ``i`` at once (in this process only);
    without it the records of a block are returned with the block."""

    sim: Any
    presenter: Presenter
    images: np.ndarray
    populations: list
    class_pop: str | None
    n_record: int
    seed: int
    emit: Callable[[int, dict], None] | None = None
    threads: int | None = None  # kernel threads in a worker (one: the workers share the cores)

    def __call__(self, block: tuple[int, int]) -> tuple:
        """Present test images [lo, hi): ``((lo, hi), hidden counts, class counts, records,
        presentations)``."""
        sim, pr = self.sim, self.presenter
        lo, hi = block
        if self.threads is not None and sim.threads != self.threads:
            sim.set_threads(self.threads)  # a forked worker's copy of the network
        sim.rng = np.random.default_rng([self.seed, 7, lo])
        n0 = pr.presentations
        h = np.zeros((hi - lo, sim.slice(EXC).stop - sim.slice(EXC).start), np.int32)
        c = np.zeros((hi - lo, N_CLASSES), np.int32)
        recs = []
        for i in range(lo, hi):
            record = i < self.n_record
            sim.set_recording(self.populations if record else None, record)
            rec, cnt = pr.present(self.images[i])
            if record and self.emit is not None:  # in the main process: straight to the file
                self.emit(i, rec)
            elif record:
                recs.append(rec)
            h[i - lo] = cnt[EXC]
            if self.class_pop is not None:
                c[i - lo] = cnt[self.class_pop]
        sim.set_recording(None, False)
        return (lo, hi), h, c, recs, pr.presentations - n0


def _serve(fn: Callable[[Any], Any], conn: Any, initializer: Callable[[], None] | None,
           parent_ends: list) -> None:
    """Worker loop of :func:`forked_map`: receive ``(k, item)``, send ``(k, ok, result)``."""
    for c in parent_ends:  # inherited through fork: keep only this worker's own end open
        c.close()
    if initializer is not None:
        initializer()
    try:
        while (task := conn.recv()) is not None:
            k, item = task
            try:
                out = (k, True, fn(item))
            except Exception as e:
                out = (k, False, e)
            try:
                conn.send(out)  # pickled whole before anything is written
            except Exception:  # a result or an error that cannot be pickled: send its text
                why = traceback.format_exc() if out[1] else "".join(
                    traceback.format_exception(out[2]))
                conn.send((k, False, RuntimeError(why)))
    except (EOFError, OSError):  # the parent has gone
        pass
    finally:
        conn.close()


def forked_map(fn: Callable[[Any], Any], items: Iterable, workers: int,
               take: Callable[[Any], None],
               initializer: Callable[[], None] | None = None) -> None:
    """``take(fn(item))`` for every item, in order, with ``fn`` run by ``workers`` forked
    processes (in this process when ``workers`` ≤ 1 or there is one item).

    ``fn`` and everything it refers to reach the workers through ``fork`` (copy-on-write memory,
    never pickled, so it may be a closure or a bound method holding large arrays); only the items
    and the results travel, pickled, through one pipe per worker. An exception of ``fn`` is
    raised here; a worker that dies is an error naming its exit code. The workers are stopped on
    return, on an error and on Ctrl-C (``initializer`` runs first in each worker, e.g.
    :func:`biolearn.runner.worker_signals`)."""
    import multiprocessing as mp
    from multiprocessing.connection import wait

    items = list(items)
    workers = min(int(workers), len(items))
    if workers <= 1:
        for item in items:
            take(fn(item))
        return
    ctx = mp.get_context("fork")
    procs, conns = [], []
    try:
        for _ in range(workers):
            here, there = ctx.Pipe()
            p = ctx.Process(target=_serve, args=(fn, there, initializer, [*conns, here]),
                            daemon=True)
            p.start()
            there.close()
            procs.append(p)
            conns.append(here)
        busy: dict = {}  # connection → worker
        done: dict = {}  # item index → result, until its turn
        nxt, want = 0, 0
        for c, p in zip(conns, procs, strict=True):
            c.send((nxt, items[nxt]))
            busy[c] = p
            nxt += 1
        while want < len(items):
            ready = wait(list(busy) + [p.sentinel for p in busy.values()])
            for c in [r for r in ready if r in busy]:
                try:
                    k, ok, res = c.recv()
                except EOFError:  # the worker died before it answered
                    busy[c].join(5.0)
                    raise RuntimeError("a worker process exited with code "
                                       f"{busy[c].exitcode}") from None
                if not ok:
                    raise res
                done[k] = res
                if nxt < len(items):
                    c.send((nxt, items[nxt]))
                    nxt += 1
                else:
                    c.send(None)
                    del busy[c]
            for p in busy.values():
                if p.sentinel in ready and not p.is_alive():
                    raise RuntimeError(f"a worker process exited with code {p.exitcode}")
            while want in done:
                take(done.pop(want))
                want += 1
    finally:
        for c in conns:
            c.close()
        for p in procs:
            if p.is_alive():
                p.terminate()
            p.join()


def run_test(ctx: Any, sim: Any, pr: Presenter, x_te: np.ndarray, pops: list,
             class_pop: str | None, n_record: int, seed: int, workers: int,
             desc: str = "test", on_record: Callable[[int, dict], None] | None = None
             ) -> tuple[np.ndarray, np.ndarray, list]:
    """Present ``x_te`` with the current (frozen) setup: hidden and class spike counts, records.

    Blocks of :data:`TEST_BLOCK` images each have their own RNG stream, so the result does not
    depend on ``workers`` (forked processes sharing the blocks, :func:`forked_map`). With
    ``on_record(i, rec)`` the recorded presentations are handed over in order as they are done
    (one by one in this process, a block at a time from workers) instead of being returned.
    """
    from biolearn.runner import worker_signals

    n_te = len(x_te)
    n_hidden = sim.slice(EXC).stop - sim.slice(EXC).start
    blocks = [(b, min(b + TEST_BLOCK, n_te)) for b in range(0, n_te, TEST_BLOCK)]
    workers = min(workers, len(blocks))
    job = BlockEvaluator(sim, pr, x_te, pops, class_pop, n_record, seed,
                         on_record if workers <= 1 else None, 1 if workers > 1 else None)
    hid = np.zeros((n_te, n_hidden), np.int32)
    cls = np.zeros((n_te, N_CLASSES), np.int32)
    recs: list = []
    bar = ctx.progress(n_te, desc)

    def take(r: tuple) -> None:
        (lo, hi), h, c, rr, npres = r
        hid[lo:hi], cls[lo:hi] = h, c
        if workers > 1:  # the workers counted in their own copies
            pr.presentations += npres
        if on_record is not None:
            for j, rec in enumerate(rr):
                on_record(lo + j, rec)
        else:
            recs.extend(rr)
        bar.update(hi - lo)

    try:
        forked_map(job, blocks, workers, take, initializer=worker_signals)
    finally:
        bar.close()
    return hid, cls, recs


#: Percentiles of the hidden neurons' adaptive threshold recorded with every test.
THETA_PERCENTILES = (5, 25, 50, 75, 95)


def hidden_theta(sim: Any) -> dict | None:
    """The hidden neurons' adaptive thresholds θ (mV) as they are now: the
    :data:`THETA_PERCENTILES` and the mean; ``None`` unless the hidden neurons' θ adapts
    (:meth:`~biolearn.engine.simulation.Simulation.adapts_theta`). Its spread over passes tells
    a θ that decays from one that only rises (docs/sym_stdp.md)."""
    if EXC not in getattr(sim, "pop_index", {}) or not sim.adapts_theta(EXC):
        return None
    th = np.asarray(sim.theta[sim.slice(EXC)], np.float64)
    q = np.percentile(th, THETA_PERCENTILES)
    return {"percentiles": list(THETA_PERCENTILES), "theta_mv": [float(v) for v in q],
            "mean_mv": float(th.mean())}


def epoch_test(ctx: Any, sim: Any, pr: Presenter, x_te: np.ndarray, y_te: np.ndarray,
               test_setup: Callable[[Any], None], resume_setup: Callable[[Any], None],
               class_pop: str | None, assignments: Any, seed: int, workers: int) -> dict:
    """Test accuracy of the network as it is now, leaving the training state exactly as it was."""
    state = sim.state_dict()
    n_pres = pr.presentations
    test_setup(sim)
    hid, cls, _ = run_test(ctx, sim, pr, x_te, [], class_pop, 0, seed, workers, "epoch test")
    sim.load_state_dict(state)
    pr.presentations = n_pres
    resume_setup(sim)
    y = y_te.astype(np.int64)
    res = {}
    res["test_accuracy_vote_in_sample"] = float(np.mean(readout.vote_in_sample(hid, y) == y))
    if assignments is not None:
        res["test_accuracy_vote"] = float(np.mean(readout.vote(hid, assignments) == y))
        res["hidden_allocation"] = readout.class_allocation(hid, y, assignments)
    if class_pop is not None:
        res["test_accuracy"] = float(np.mean(readout.argmax_or_silent(cls) == y))
        res["test_accuracy_silent_as_0"] = float(np.mean(readout.argmax_first(cls) == y))
    else:
        res["test_accuracy"] = res.get("test_accuracy_vote")
    return res


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
        if self.first is None:  # kept for the raster figure, with the population sizes
            self.first = {**rec, "sizes": dict(self.sizes), "duration_ms": self.t_present}
        self.n += 1

    def close(self) -> None:
        self.wr.close()


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
