"""Run orchestration: the :class:`RunContext` a recipe receives, and the run directory it fills.

A recipe is ``run(cfg: RunConfig, ctx: RunContext) -> dict`` (metrics). Everything it writes goes
through ``ctx`` so that every run leaves the same files: ``results.json``, ``spikes.h5``,
``weights.h5``, PNG figures, and a checkpoint for ``--resume``.

:func:`execute` makes the run directory (``runs/<config name>/<YYYYmmdd-HHMMSS>``, with ``-1``,
``-2`` … appended when runs start in the same second; created atomically, so runs started together
never share one), refuses a directory that already holds files unless it resumes or overwrites,
writes ``config.resolved.yaml`` and ``results.json`` with ``status: "running"`` before the recipe
starts, runs it, and rewrites ``results.json`` atomically with the ``status`` it ended with:
``completed``; ``interrupted`` after Ctrl-C, SIGTERM or SIGHUP (with
the partial metrics the recipe put in ``ctx.metrics``); ``diverged`` when a recipe's
:func:`check_finite` found NaN or infinity in the network state; ``failed`` on any other error.
``warnings`` lists what looks wrong without stopping the run (a silent network, chance-level
accuracy, non-finite metrics, which are kept as the strings ``"nan"``, ``"inf"``, ``"-inf"``).
A run that could write no status (SIGKILL, the out-of-memory killer, a power cut, or a full disk
at the very end) is left ``running``; ``--resume`` continues it from its last checkpoint and
records that part as ``killed`` in ``provenance.resumed_from``.

While a run executes it holds a lock on its directory (``flock``, which the kernel releases when
the process ends, however it ends): a second run on the same machine resuming or overwriting
that directory is refused instead of writing into it at the same time.

A run outside the main thread (a sweep's task on a Dask worker) gets no signals; inside
:func:`stop_when` it stops as after Ctrl-C at its next progress-bar update once the check says so.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as _dt
import json
import math
import os
import platform
import re
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from biolearn.errors import BiolearnError
from biolearn.io import _h5

RUNS_DIR = "runs"
RESULTS = "results.json"
RESOLVED = "config.resolved.yaml"
CHECKPOINT = "checkpoint.npz"
LOG_INTERVAL_S = 60.0
"""Seconds between progress lines when stderr is not a terminal."""
RESUME_EXEMPT_KEYS = frozenset({"test_workers", "threads"})
"""Config fields (leaf names) a resumed run may change: worker and thread counts, on which results
never depend (DESIGN: "Threads: results never depend on the thread or worker count")."""
_STAMP_RE = re.compile(r"(\d{8}-\d{6})(?:-(\d+))?\Z")
_STOP_CHECK: contextvars.ContextVar[Callable[[], str | None] | None] = contextvars.ContextVar(
    "biolearn_stop_check", default=None)


class _LineStream:
    """A file for tqdm that turns its carriage-return redraws into whole lines on stderr, at most
    one per ``interval`` seconds (a bar's last line, written when it closes, always comes out)."""

    encoding = "utf-8"

    def __init__(self, interval: float):
        self.interval, self.pending, self.last = interval, "", -float("inf")

    def write(self, text: str) -> int:
        parts = text.split("\n")
        for k, part in enumerate(parts):
            line = part.replace("\r", "").replace("\x1b[A", "").strip()
            if line:
                self.pending = line
            t = time.monotonic()
            if self.pending and (k < len(parts) - 1 or t - self.last >= self.interval):
                sys.stderr.write(self.pending + "\n")
                self.pending, self.last = "", t
        return len(text)

    def flush(self) -> None:
        sys.stderr.flush()


@dataclass
class RunContext:
    out_dir: Path
    seed: int
    config: dict = field(default_factory=dict)
    data_root: str | None = None
    quiet: bool = False
    resume: bool = False
    config_path: Path | None = None
    """The config file the run was started from (``None`` for configs built in code)."""
    rng: np.random.Generator = field(init=False)
    metrics: dict = field(default_factory=dict)
    """Partial metrics; a recipe may fill this as it goes so an interrupted run still reports."""
    warnings: list = field(default_factory=list)
    """What looks wrong without stopping the run (see :meth:`warn`); saved in results.json."""

    def __post_init__(self) -> None:
        self.out_dir = Path(self.out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.rng = np.random.default_rng(self.seed)

    def path(self, name: str) -> Path:
        """Path of a file inside the run directory."""
        return self.out_dir / name

    def warn(self, message: str) -> None:
        """Record a warning for results.json (``warnings``) and print it on stderr at once."""
        message = " ".join(str(message).split())
        if message not in self.warnings:
            self.warnings.append(message)
            _stderr_line(f"warning: {message}")

    def progress(self, total: int, desc: str, unit: str = "img") -> Any:
        """A tqdm bar; silent with --quiet.

        When stderr is not a terminal (a batch job, ``nohup``, a log file) the bar prints one plain
        line every :data:`LOG_INTERVAL_S` seconds instead of redrawing itself.
        """
        from tqdm.auto import tqdm

        if self.quiet or sys.stderr.isatty():
            bar = tqdm(total=total, desc=desc, unit=unit, disable=self.quiet, dynamic_ncols=True)
        else:
            bar = tqdm(total=total, desc=desc, unit=unit, file=_LineStream(LOG_INTERVAL_S),
                       ncols=100, mininterval=min(LOG_INTERVAL_S, 1.0))
        check = _STOP_CHECK.get()
        if check is not None:
            bar.update = _stopping(bar.update, check)
        return bar

    def save_figure(self, fig: Any, name: str) -> Path:
        """Save a matplotlib figure as ``name``.png in the run directory (atomically) and close
        it."""
        import matplotlib.pyplot as plt

        from biolearn.io.store import atomic_path

        p = self.path(name if name.endswith(".png") else name + ".png")
        try:
            with atomic_path(p) as tmp:
                fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
        finally:
            plt.close(fig)
        return p

    @property
    def checkpoint_path(self) -> Path:
        return self.path(CHECKPOINT)


class RunInterrupted(Exception):
    """Raised by :func:`execute` after Ctrl-C, SIGTERM or SIGHUP, once ``results.json`` has been
    written. ``signal`` names the signal (``"SIGINT"`` for Ctrl-C)."""

    def __init__(self, out_dir: Path, results: dict, signal: str = "SIGINT"):
        self.out_dir, self.results, self.signal = Path(out_dir), results, signal
        super().__init__(f"run interrupted by {signal}; partial results in {out_dir / RESULTS}")


class Diverged(BiolearnError):
    """The network state holds NaN or infinity: raised by :func:`check_finite`; :func:`execute`
    records it as ``status: "diverged"``."""

    def __init__(self, array: str, where: str, detail: str = ""):
        self.array = array
        super().__init__(
            f"the run diverged: NaN or infinite values in {array}{detail}", where,
            "lower the learning rates, weight bounds or input drive and start again (--overwrite "
            "or a new --out); the last finite checkpoint, if any, is kept")


@contextlib.contextmanager
def stop_when(check: Callable[[], str | None]) -> Any:
    """Within this block (this thread only), every progress bar a run makes calls ``check()`` at
    each update and raises :class:`Signalled` with the signal it names: a run in a worker thread,
    which receives no signals, then stops as after that signal and keeps its partial results."""
    token = _STOP_CHECK.set(check)
    try:
        yield
    finally:
        _STOP_CHECK.reset(token)


def _stopping(update: Callable[..., Any], check: Callable[[], str | None]) -> Callable[..., Any]:
    def checked(n: float = 1) -> Any:
        name = check()
        if name:
            raise Signalled(signal.Signals[name].value)
        return update(n)

    return checked


class Signalled(KeyboardInterrupt):
    """SIGTERM or SIGHUP during a run, or the signal that stopped the sweep of a run in a worker
    thread (:func:`stop_when`): handled like Ctrl-C (a :class:`KeyboardInterrupt`)."""

    def __init__(self, signum: int):
        self.signum = signum
        self.name = signal.Signals(signum).name
        super().__init__(self.name)


# --------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------

def _stderr_line(text: str) -> None:
    try:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):  # no terminal any more (SIGHUP), closed stream
        pass


def to_json(obj: Any, **kw: Any) -> str:
    """``json.dumps`` after :func:`biolearn.io.store.to_jsonable` (numpy, paths; NaN -> null)."""
    from biolearn.io.store import to_jsonable

    return json.dumps(to_jsonable(obj), allow_nan=False, **kw)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (see :func:`biolearn.io.store.write_text_atomic`)."""
    from biolearn.io.store import write_text_atomic

    write_text_atomic(path, text)


def resolve_data_root(cli_root: str | None, cfg_root: str | None) -> str:
    """``--data-root``, else ``data.root``, else ``$BIOLEARN_DATA``, else ``~/.cache/biolearn``."""
    for r in (cli_root, cfg_root, os.environ.get("BIOLEARN_DATA")):
        if r:
            return str(Path(r).expanduser())
    return str(Path("~/.cache/biolearn").expanduser())


def check_data_root(cli_root: str | None, cfg_root: str | None, dataset: str | None) -> None:
    """An explicitly named data folder (``--data-root``, else ``data.root``) must exist and hold
    something: otherwise the search would silently fall back to ``$BIOLEARN_DATA`` or the cache.
    Runs without a dataset (``data.dataset: none``) are not checked."""
    if dataset in (None, "none"):
        return
    for value, key in ((cli_root, "--data-root"), (cfg_root, "data.root")):
        if not value:
            continue
        p = Path(value).expanduser()
        if not p.exists():
            problem = "does not exist"
        elif not p.is_dir():
            problem = "is not a directory"
        else:
            try:
                problem = "" if any(p.iterdir()) else "is empty"
            except OSError as e:
                problem = f"cannot be read ({e.strerror or e})"
        if problem:
            env = os.environ.get("BIOLEARN_DATA")
            alt = f" to use $BIOLEARN_DATA ({env})" if env else ""
            raise BiolearnError(
                f"the data folder '{p}' {problem}", f"given by {key}",
                f"name the folder holding the {dataset} files (directly or in a '{dataset}/' "
                f"sub-folder), or leave {key} out{alt}")
        return  # --data-root wins over data.root


def check_finite(sim: Any, where: str) -> None:
    """Raise :class:`Diverged` if a compiled :class:`~biolearn.engine.Simulation`'s state holds
    NaN or infinity: neuron state (``sim.S``: v, conductances, thresholds …), synaptic weights
    (``sim.syn_w``), per-synapse variables (``sim.syn_x``) and the pre/post traces.

    ``where`` says where the run is (e.g. ``"at training image 5000"``); the simulation step is
    added. Costs one ``isfinite`` pass over those arrays.
    """
    bad = list(nonfinite_state(sim))
    if not bad:
        return
    name, n_bad, n_all = bad[0]
    detail = f" ({n_bad} of {n_all} values)"
    if len(bad) > 1:
        others = ", ".join(b[0] for b in bad[1:4]) + (" …" if len(bad) > 4 else "")
        detail += f"; also {others}"
    step = getattr(sim, "t", None)
    raise Diverged(name, f"{where}" + (f" (simulation step {step})" if step is not None else ""),
                   detail)


def nonfinite_state(sim: Any):
    """Yield ``(description, n_nonfinite, n_values)`` for each piece of a simulation's state that
    holds NaN or infinity (see :func:`check_finite`)."""
    arrays = {k: getattr(sim, k, None) for k in ("S", "syn_w", "syn_x", "trp", "tro")}
    arrays = {k: a for k, a in arrays.items() if isinstance(a, np.ndarray) and a.size}
    if all(np.isfinite(a).all() for a in arrays.values()):
        return
    pops = list(getattr(sim, "pop_index", {}).items())
    projs = list(getattr(getattr(sim, "net", None), "projections", []) or [])
    rules = list(getattr(sim, "rules", []) or [])

    def count(a: np.ndarray) -> int:
        return int(a.size - np.count_nonzero(np.isfinite(a)))

    def rule_names(k: int, kind: str) -> list[str]:
        r = int(sim.pr_rule[k]) if hasattr(sim, "pr_rule") else 0
        if r <= 0 or r > len(rules):
            return []
        ir = rules[r - 1]
        if kind == "pre":
            return list(ir.pre_traces)
        if kind == "post":
            return list(ir.post_traces)
        return list(ir.syn_vars) + list(ir.syn_traces)

    found = False
    w = arrays.get("syn_w")  # weights first: they are what learning changes
    for k, q in enumerate(projs):
        lo, hi = int(sim.syn_off[k]), int(sim.syn_off[k + 1])
        if w is not None and hi > lo and (n := count(w[lo:hi])):
            found = True
            yield f"the weights of projection '{q.name}'", n, hi - lo
    S = arrays.get("S")
    if S is not None and not np.isfinite(S).all():
        for var, slot in getattr(sim, "slots", {}).items():
            for name, k in pops:
                part = S[slot, int(sim.pop_lo[k]):int(sim.pop_hi[k])]
                if part.size and (n := count(part)):
                    found = True
                    yield f"state '{var}' of population '{name}'", n, part.size
    x = arrays.get("syn_x")
    for k, q in enumerate(projs):
        lo, hi = int(sim.syn_off[k]), int(sim.syn_off[k + 1])
        for r, var in enumerate(rule_names(k, "syn")):
            if x is not None and r < x.shape[0] and hi > lo and (n := count(x[r, lo:hi])):
                found = True
                yield f"synapse variable '{var}' of projection '{q.name}'", n, hi - lo
        for key, off, side, kind in (("trp", "tp_off", "pr_pre", "pre"),
                                     ("tro", "to_off", "pr_post", "post")):
            tr = arrays.get(key)
            if tr is None:
                continue
            a = int(getattr(sim, off)[k])
            pk = int(getattr(sim, side)[k])
            b = a + int(sim.pop_hi[pk] - sim.pop_lo[pk])
            for r, var in enumerate(rule_names(k, kind)):
                if r < tr.shape[0] and (n := count(tr[r, a:b])):
                    found = True
                    yield f"{kind} trace '{var}' of projection '{q.name}'", n, b - a
    if not found:  # state the names above do not cover: report the raw arrays
        for key, a in arrays.items():
            if n := count(a):
                yield f"sim.{key}", n, a.size


def _nonfinite_to_str(obj: Any, path: str, found: list[tuple[str, str]]) -> Any:
    """``obj`` with every NaN / ±inf float replaced by ``"nan"`` / ``"inf"`` / ``"-inf"`` (JSON
    has neither, and ``null`` would hide them); ``(dotted path, text)`` of each replaced value is
    appended to ``found``."""
    if isinstance(obj, dict):
        return {k: _nonfinite_to_str(v, f"{path}.{k}" if path else str(k), found)
                for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_nonfinite_to_str(v, f"{path}[{i}]", found) for i, v in enumerate(obj)]
    if isinstance(obj, np.ndarray) and obj.dtype.kind in "fc":
        return _nonfinite_to_str(obj.tolist(), path, found)
    if isinstance(obj, (float, np.floating)) and not math.isfinite(float(obj)):
        text = repr(float(obj))  # 'nan', 'inf', '-inf'
        found.append((path or "(value)", text))
        return text
    return obj


def _utcnow() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def _iso(t: _dt.datetime) -> str:
    return t.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _stamp_key(p: Path) -> tuple:
    m = _STAMP_RE.match(p.name)
    return (m.group(1), int(m.group(2) or 0)) if m else (p.name, 0)


def run_dir_for(name: str, out_dir: str | Path | None, resume: bool,
                base: str | Path = RUNS_DIR) -> Path:
    """The directory a run writes to (see :func:`execute`).

    With ``out_dir`` that directory (not created here). Otherwise, resuming, the newest run of
    ``name`` under ``base``; else a new directory ``<base>/<name>/<YYYYmmdd-HHMMSS>`` (``-1``,
    ``-2`` … appended when it exists), created here with an exclusive ``mkdir`` so that runs
    started in the same second never get the same one.
    """
    if out_dir is not None:
        return Path(out_dir)
    parent = Path(base) / name
    if resume:
        earlier = sorted((p for p in parent.glob("*") if p.is_dir() and (p / RESOLVED).exists()),
                         key=_stamp_key) if parent.is_dir() else []
        if not earlier:
            raise BiolearnError(
                f"no earlier run of '{name}' to resume", f"in {parent}/",
                "run without --resume to start one, or pass --out DIR of the run to resume",
            )
        return earlier[-1]
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BiolearnError(f"cannot create the run directory ({e.strerror or e})",
                            f"at {parent}", "pass a writable --out DIR") from e
    for i in range(10000):
        cand = parent / (stamp if i == 0 else f"{stamp}-{i}")
        try:
            cand.mkdir(exist_ok=False)
        except FileExistsError:
            continue
        except OSError as e:
            raise BiolearnError(f"cannot create the run directory ({e.strerror or e})",
                                f"at {cand}", "pass a writable --out DIR") from e
        return cand
    raise BiolearnError("no free run directory name", f"in {parent}/{stamp}-*",
                        "pass --out DIR")  # pragma: no cover


def _listing(d: Path, n: int = 4) -> str:
    names = sorted(p.name for p in d.iterdir())
    return ", ".join(names[:n]) + (f" and {len(names) - n} more" if len(names) > n else "")


def clear_run_dir(out: Path) -> None:
    """Empty ``out`` for ``--overwrite``; only a biolearn run directory (one holding
    ``config.resolved.yaml`` or ``results.json``) is cleared."""
    if not ((out / RESOLVED).exists() or (out / RESULTS).exists()):
        raise BiolearnError(
            f"--overwrite clears only run directories, and '{out}' holds other files "
            f"({_listing(out)}) but no {RESOLVED}", f"at {out}",
            "choose a new or empty --out DIR")
    for p in out.iterdir():
        try:
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
        except OSError as e:
            raise BiolearnError(f"cannot clear the run directory ({e.strerror or e})",
                                f"at {p}", "remove it by hand or choose a new --out DIR") from e


_HELD: set[int] = set()  # descriptors holding run-directory locks in this process


def _close_held_in_child() -> None:
    """A forked child (test workers) must not keep its parent's run directories locked once
    the parent is gone: its copies of the descriptors are closed (the parent's lock stays)."""
    for fd in list(_HELD):
        with contextlib.suppress(OSError):
            os.close(fd)
    _HELD.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_held_in_child)


def _lock_run_dir(out: Path) -> int | None:
    """Lock the existing run directory ``out`` for this run: the file descriptor holding the lock
    (None where the platform or file system has no ``flock``). Another process of this machine
    holding it is an error; a lock on a network file system may not be seen from other
    machines."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        return None
    try:
        fd = os.open(out, os.O_RDONLY)
    except OSError:
        return None  # unreadable: _prepare_dir names the problem
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        proc = (read_results(out) or {}).get("process") or {}
        who = f" (last recorded: process {proc.get('pid')} on {proc.get('host')})" \
            if proc.get("pid") else ""
        raise BiolearnError(
            f"another biolearn run is writing into this directory{who}", f"at {out}",
            "wait for it to end or stop it, then --resume; or choose a new --out DIR") from None
    except OSError:
        os.close(fd)
        return None  # no locks on this file system
    except BaseException:  # e.g. Ctrl-C: no descriptor left behind
        os.close(fd)
        raise
    _HELD.add(fd)
    return fd


@contextlib.contextmanager
def _holding_run_dir(out: Path) -> Any:
    """Hold the lock on ``out`` (if it exists) to the end of the block; yields a function that
    takes it once the directory has been created."""
    fds: list[int] = []

    def take() -> None:
        if not fds and out.is_dir():
            fd = _lock_run_dir(out)
            if fd is not None:
                fds.append(fd)

    take()
    try:
        yield take
    finally:
        for fd in fds:
            _HELD.discard(fd)
            with contextlib.suppress(OSError):
                os.close(fd)  # closing the descriptor releases the flock


def _prepare_dir(out: Path, resume: bool, overwrite: bool, resolved: dict,
                 extendable: Callable[[dict, Path], tuple[str, ...] | str] | None = None
                 ) -> None:
    """Check that a run may write into ``out`` (see :func:`execute`), clearing it for
    ``overwrite``."""
    if resume and overwrite:
        raise BiolearnError("--resume and --overwrite exclude each other", f"for {out}",
                            "use --resume to continue the run there, or --overwrite to start it "
                            "again")
    if resume:
        _check_resumable(out, resolved, extendable)
        return
    if out.is_dir():
        try:
            busy = any(out.iterdir())
        except OSError as e:
            raise BiolearnError(f"cannot read the run directory ({e.strerror or e})", f"at {out}",
                                "pass a readable --out DIR") from e
        if busy and overwrite:
            clear_run_dir(out)
        elif busy:
            raise BiolearnError(
                f"the run directory is not empty ({_listing(out)})", f"at {out}",
                "continue that run with --resume, replace it with --overwrite, or choose a new "
                "--out DIR")


def read_results(run_dir: Path) -> dict | None:
    """A run directory's ``results.json``, or None when it is missing or unreadable."""
    try:
        with open(run_dir / RESULTS, encoding="utf-8") as fh:
            res = json.load(fh)
    except (OSError, ValueError):
        return None
    return res if isinstance(res, dict) else None


def _earlier_parts(old: dict) -> list[dict]:
    """Commit, times and status of the earlier parts of a resumed run, from the results.json
    ``old`` it is about to replace (empty if there is none)."""
    prov = old.get("provenance")
    if not isinstance(prov, dict):
        return []
    keys = ("git_commit", "git_dirty", "biolearn_version", "start_utc", "end_utc")
    status = old.get("status")
    # "running" in the directory this run now holds: that process ended without a word
    part = {**{k: prov.get(k) for k in keys}, "status": "killed" if status == "running" else status}
    metrics = old.get("metrics")
    if status == "completed" and isinstance(metrics, dict):
        # a finished run resumed with more passes: its final test is replaced, keep its result
        part.update({k: metrics[k] for k in ("test_accuracy", "epochs_trained") if k in metrics})
    return [*prov.get("resumed_from", []), part]


def _check_resumable(out: Path, resolved: dict,
                     extendable: Callable[[dict, Path], tuple[str, ...] | str] | None = None
                     ) -> None:
    import yaml

    resolved_path = out / RESOLVED
    if not out.is_dir():
        raise BiolearnError(f"no run to resume: '{out}' does not exist", "given by --out",
                            "pass the directory of an earlier run, or leave out --resume to "
                            "start a new one")
    if not resolved_path.exists():
        raise BiolearnError(
            f"no run to resume: '{out}' has no {RESOLVED}", f"at {out}",
            "pass the directory of an earlier run, or start a new run there without --resume "
            "(add --overwrite if it holds files)")
    try:
        before = yaml.safe_load(resolved_path.read_text(encoding="utf-8"))
        if not isinstance(before, dict):
            raise ValueError(f"holds {type(before).__name__}, not a mapping")
    except (OSError, yaml.YAMLError, UnicodeDecodeError, ValueError) as e:
        reason = " ".join(str(getattr(e, "strerror", None) or e).split())[:160]
        raise BiolearnError(
            f"the saved config of the run cannot be read ({type(e).__name__}: {reason})",
            f"file {resolved_path}",
            "restore that file, or start the run again with --overwrite") from None
    before = _with_new_defaults(before)
    a, b = _drop_exempt(before), _drop_exempt(resolved)
    if a == b:
        return
    diff = sorted(_diff_keys(a, b))
    allowed = extendable(before, out) if extendable else ()
    why = allowed if isinstance(allowed, str) else None  # the recipe's reason for no more passes
    grow = set() if why else set(allowed)
    if diff and set(diff) <= grow:  # more passes: allowed, never fewer
        fewer = [f"{k} {_dotted(a, k)} -> {_dotted(b, k)}" for k in diff
                 if not _at_least(_dotted(a, k), _dotted(b, k))]
        if not fewer:
            return
        raise BiolearnError(
            f"--resume can add passes, not take them away ({', '.join(fewer)})", f"in {out}",
            "resume with at least the run's passes, or start a new run without --resume")
    raise BiolearnError(
        "the config differs from the run being resumed"
        + (f" (keys: {', '.join(diff[:6])})" if diff else ""),
        f"in {out}",
        "resume with the same config and --set values"
        + (f" (only {', '.join(sorted(grow))} may be raised, for more passes)" if grow else "")
        + (f" (it cannot be given more passes: {why})" if why else "")
        + ", or start a new run without --resume",
    )


def _dotted(d: dict, key: str) -> Any:
    for part in key.split("."):
        d = d.get(part) if isinstance(d, dict) else None
    return d


def _at_least(old: Any, new: Any) -> bool:
    return (isinstance(old, int) and isinstance(new, int) and not isinstance(old, bool)
            and new >= old)


def _drop_exempt(d: Any) -> Any:
    if isinstance(d, dict):
        return {k: _drop_exempt(v) for k, v in d.items() if k not in RESUME_EXEMPT_KEYS}
    return d


# --------------------------------------------------------------------------------------------
# signals
# --------------------------------------------------------------------------------------------

class SignalGuard:
    """While a run or a sweep is going: SIGTERM and SIGHUP raise :class:`Signalled` (a
    KeyboardInterrupt), like Ctrl-C. After the first signal, further ones are ignored so that
    the partial results are written however often the user presses Ctrl-C. Signals a parent set
    to be ignored (``nohup``, or a shell script's background job for Ctrl-C) stay ignored. Only
    in the main thread; restored on exit.

    A handler's exception that lands in a finaliser or weakref callback is swallowed by Python
    (it goes to :data:`sys.unraisablehook`). The guard's hook keeps such an exception off the
    terminal and delivers the signal again 20 ms later (``_thread.interrupt_main``), so that
    it is raised in the run's own code. A signal that arrives while HDF5 calls back into
    :class:`biolearn.io._h5.FailSoftFile` is delivered again the same way without raising:
    an exception inside HDF5's file driver leaves the library inconsistent (it can crash the
    process at exit). So a write blocked in the kernel is not interrupted by the signal."""

    SIGNALS = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP")
                    if hasattr(signal, n))

    def __init__(self) -> None:
        self.saved: dict[int, Any] = {}
        self.received: str | None = None
        self.stopping = False
        self.closing = False
        self.saved_hook: Any = None
        self.timers: list[threading.Timer] = []

    def __enter__(self) -> SignalGuard:
        if threading.current_thread() is not threading.main_thread():
            return self
        self.saved_hook = sys.unraisablehook
        sys.unraisablehook = self._unraisable
        for s in self.SIGNALS:
            try:
                old = signal.getsignal(s)
                if old is signal.SIG_IGN:
                    continue
                if s == signal.SIGINT and old is not signal.default_int_handler:
                    continue  # someone else (a debugger, a test harness) handles Ctrl-C
                signal.signal(s, self._handle)
                self.saved[s] = old
            except (OSError, ValueError):  # pragma: no cover - exotic platforms
                pass
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.stopping:
            return
        if _in_hdf5_callback(frame):
            self.received = signal.Signals(signum).name  # seen after the run if not redelivered
            self._deliver_later(signum)
            return
        self.stopping = True
        self.received = signal.Signals(signum).name
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise Signalled(signum)

    def _unraisable(self, info: Any) -> None:
        if (isinstance(info.exc_value, KeyboardInterrupt) and self.received
                and not self.closing):
            # raised by _handle where Python swallows it: deliver the signal again a moment
            # later, so that it lands after this hook and the callback
            self._deliver_later(signal.Signals[self.received].value)
            self.stopping = False  # last: a signal arriving within this hook stays ignored
            return
        (self.saved_hook or sys.__unraisablehook__)(info)

    def _deliver_later(self, signum: int) -> None:
        """Send ``signum`` to the main thread again in 20 ms, from a timer thread."""
        import _thread

        timer = threading.Timer(0.02, _thread.interrupt_main, (signum,))
        timer.daemon = True
        timer.start()
        self.timers.append(timer)

    def stop(self) -> None:
        """Ignore further signals (the run is already stopping)."""
        self.stopping = self.closing = True

    def __exit__(self, *exc: object) -> None:
        self.stopping = self.closing = True
        for t in self.timers:  # no redelivery after the run (to restored handlers)
            t.cancel()
            t.join()
        if self.saved_hook is not None:
            sys.unraisablehook = self.saved_hook
        for s, old in self.saved.items():
            try:
                signal.signal(s, old)
            except (OSError, ValueError, TypeError):  # pragma: no cover
                pass


_HDF5_CALLBACKS = frozenset(f.__code__ for f in vars(_h5.FailSoftFile).values()
                            if callable(f) and hasattr(f, "__code__"))


def _in_hdf5_callback(frame: Any) -> bool:
    """Whether ``frame`` runs inside a :class:`biolearn.io._h5.FailSoftFile` method (HDF5's
    file driver calls them)."""
    while frame is not None:
        if frame.f_code in _HDF5_CALLBACKS:
            return True
        frame = frame.f_back
    return False


def worker_signals() -> None:
    """Initializer for forked worker processes of a run: Ctrl-C goes to the parent only (it stops
    the workers), SIGTERM and SIGHUP end a worker at once and quietly."""
    for name, action in (("SIGINT", signal.SIG_IGN), ("SIGTERM", signal.SIG_DFL),
                         ("SIGHUP", signal.SIG_DFL)):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), action)


# --------------------------------------------------------------------------------------------
# execute
# --------------------------------------------------------------------------------------------

def execute(cfg: Any, out_dir: str | Path | None = None, quiet: bool = False,
            resume: bool = False, data_root: str | None = None,
            config_path: str | Path | None = None, overwrite: bool = False,
            threads: int | None = None) -> dict:
    """Run ``cfg``'s recipe into a run directory and return the ``results.json`` content.

    The directory must be new or empty unless ``resume`` (it must then hold an earlier run of
    the same config) or ``overwrite`` (an earlier run there is cleared first). Raises
    :class:`RunInterrupted` on Ctrl-C, SIGTERM or SIGHUP (after writing partial results),
    :class:`Diverged` after writing ``status: "diverged"``, and re-raises any other error of the
    recipe after writing ``status: "failed"``. The engine's kernels run on ``threads`` threads
    (``biolearn run --threads``), else the config's ``threads``, else
    :func:`biolearn.engine.default_threads`; results do not depend on it.
    """
    import biolearn
    from biolearn.config import dump_yaml, to_dict
    from biolearn.io.store import process_git_info, provenance, write_json_atomic

    try:
        from biolearn.data.mnist import loaded_datasets
    except ImportError:  # pragma: no cover
        loaded_datasets = None
    from biolearn.registry import get_recipe

    recipe = get_recipe(cfg.model)
    resolved = to_dict(cfg)
    check_data_root(data_root, cfg.data.root, getattr(cfg.data, "dataset", None))
    out = run_dir_for(cfg.name, out_dir, resume)
    with _holding_run_dir(out) as lock_now:  # from before the checks to the end of the run
        _prepare_dir(out, resume, overwrite, resolved, recipe.extendable)
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise BiolearnError(
                f"cannot create the run directory ({e.strerror or e})", f"at {out}",
                "pass a writable --out DIR",
            ) from e
        lock_now()
        start, t0 = _utcnow(), time.perf_counter()
        code_git = process_git_info()
        old = (read_results(out) or {}) if resume else {}
        earlier = _earlier_parts(old)
        n_loaded = len(loaded_datasets()) if loaded_datasets else 0
        root = resolve_data_root(data_root, cfg.data.root)
        # a resumed run stopped before its recipe reported anything keeps the earlier part's partial
        # metrics (not those of a finished part: they are not this run's, see _earlier_parts)
        partial = isinstance(old.get("metrics"), dict) and \
            old.get("status") not in ("completed", "diverged")
        state: dict[str, Any] = {"ctx": None, "earlier": old["metrics"] if partial else {}}

        def results(status: str, metrics: dict, error: str | None = None) -> dict:
            ctx = state["ctx"]
            ended = status != "running"  # a running record has no end, and warns of nothing
            bad: list[tuple[str, str]] = []
            metrics = _nonfinite_to_str(metrics, "", bad)
            early: list[str] = []  # before the recipe started there is no ctx to hold them
            for key, text in bad if ended else ():
                msg = f"metric '{key}' is {text} (kept as the string '{text}')"
                if ctx is not None:
                    ctx.warn(msg)
                elif msg not in early:
                    early.append(msg)
                    _stderr_line(f"warning: {msg}")
            warnings = list(ctx.warnings) if ctx is not None else early
            res = {
                "config": _nonfinite_to_str(resolved, "", []),
                "metrics": metrics,
                "wall_time_s": time.perf_counter() - t0 if ended else None,
                "biolearn_version": biolearn.__version__,
                "seed": cfg.seed,
                "status": status,
                "warnings": warnings,
                "provenance": provenance(
                    code_git,
                    start_utc=_iso(start),
                    end_utc=_iso(_utcnow()) if ended else None,
                    argv=[Path(sys.argv[0]).name, *sys.argv[1:]] if sys.argv else [],
                ),
            }
            if earlier:
                res["provenance"]["resumed_from"] = earlier
            if config_path is not None:
                res["provenance"]["config_file"] = str(config_path)
            res["provenance"]["kernel_threads"] = n_threads
            used: list[dict] = []
            for d in (loaded_datasets()[n_loaded:] if loaded_datasets else []):
                if d not in used:
                    used.append(d)
            if used or getattr(cfg.data, "dataset", "none") != "none":
                res["provenance"]["data_root"] = root
            if used:
                res["provenance"]["data"] = used
            if error:
                res["error"] = error
            return res

        def save(res: dict, must: bool = True) -> None:
            try:
                try:
                    write_json_atomic(out / RESULTS, res)
                except (TypeError, ValueError) as e:  # a recipe returned something odd: keep it
                    res = {**res, "metrics": {k: repr(v) for k, v in res["metrics"].items()},
                           "metrics_error": str(e)}
                    write_json_atomic(out / RESULTS, res)
            except OSError:
                if must:
                    raise
                # the run already failed (e.g. a full disk): report that error, not this one

        from biolearn.engine import simulation as _engine

        before = _engine._DEFAULT_THREADS
        n_threads = threads or getattr(cfg, "threads", None)
        if n_threads is not None:
            _engine.set_default_threads(n_threads)
        n_threads = _engine.default_threads()
        from biolearn.alloc import reset_peak_rss

        reset_peak_rss()  # the run's own peak, also in a process that ran others before
        with SignalGuard() as guard, _restore_threads(before):
            try:
                write_atomic(out / RESOLVED, dump_yaml(cfg))
                # what a killed run leaves: its process, and the metrics it resumed with
                save({**results("running", _partial(state)),
                      "process": {"pid": os.getpid(), "host": platform.node()}})
                ctx = RunContext(out_dir=out, seed=cfg.seed, config=resolved,
                                 config_path=Path(config_path) if config_path else None,
                                 data_root=root, quiet=quiet, resume=resume)
                state["ctx"] = ctx
                metrics = recipe.run(cfg, ctx)
                if guard.received:  # the handler's exception was swallowed (it landed in a
                    # finaliser or weakref callback, where Python only prints it): stop now
                    if guard.received == "SIGINT":
                        raise KeyboardInterrupt
                    raise Signalled(signal.Signals[guard.received].value)
                if metrics is None:
                    metrics = {}
                if not isinstance(metrics, dict):
                    raise TypeError(f"recipe '{cfg.model}' returned {type(metrics).__name__}, "
                                    "not a dict")
                res = results("completed", {**ctx.metrics, **metrics})
                save(res)
            except (KeyboardInterrupt, RunInterrupted) as e:  # the latter: a nested run's
                guard.stop()
                name = getattr(e, "name", None) or getattr(e, "signal", None) or guard.received \
                    or "SIGINT"
                res = results("interrupted", _partial(state))
                res["interrupted_by"] = name
                save(res, must=False)
                raise RunInterrupted(out, res, name) from None
            except Diverged as e:
                guard.stop()
                save(results("diverged", _partial(state), str(e)), must=False)
                raise
            except BaseException as e:
                guard.stop()
                save(results("failed", _partial(state), f"{type(e).__name__}: {e}"), must=False)
                raise
        return json.loads(to_json(res))


@contextlib.contextmanager
def _restore_threads(before: int | None) -> Any:
    """Put the process's kernel-thread default back after a run (runs in one process)."""
    from biolearn.engine import simulation as _engine

    try:
        yield
    finally:
        _engine._DEFAULT_THREADS = before


def _partial(state: dict) -> dict:
    """The metrics of a run that did not complete: the recipe's partial ones, or, while it has
    reported none (before it restored its checkpoint), those of the earlier part it resumes."""
    ctx = state.get("ctx")
    return dict(ctx.metrics) if ctx is not None and ctx.metrics else dict(state["earlier"])


def _with_new_defaults(before: dict) -> dict:
    """A run's saved config validated again: fields biolearn added since it was saved take their
    defaults, so such a run can still be resumed while they keep them."""
    from biolearn.config import config_from_dict, to_dict

    try:
        return to_dict(config_from_dict(before))
    except BiolearnError:  # e.g. a field removed since: compare as saved
        return before


def _diff_keys(a: Any, b: Any, prefix: str = "") -> set[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out: set[str] = set()
        for k in set(a) | set(b):
            p = f"{prefix}.{k}" if prefix else str(k)
            if k not in a or k not in b:
                out.add(p)
            else:
                out |= _diff_keys(a[k], b[k], p)
        return out
    return set() if a == b else {prefix or "(root)"}
