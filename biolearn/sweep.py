"""Parameter sweeps: one config × a grid of ``--set`` values × seeds, run on Dask.

``biolearn sweep CONFIG --grid params.x=[1, 2] --seeds 3`` expands to the Cartesian product of the
grids and the seeds. Every run is an ordinary run (:func:`biolearn.runner.execute`, the code path
of ``biolearn run``) in its own directory under the sweep directory, named after its grid values
and seed (``x=1,seed=0``), with the files it would have on its own. The sweep directory also holds

- ``sweep.json``: the sweep's definition (config, ``--set`` values, grid, seeds, every run's
  equivalent ``biolearn run`` command); running the same sweep again into the same directory
  checks that it *is* the same sweep, skips finished runs, resumes interrupted ones from their
  checkpoints and restarts the others;
- ``sweep.csv``: one row per run (grid values, seed, status, wall time, every scalar metric of its
  ``results.json`` flattened with dots, the error line of a failed run);
- ``summary.csv``: per grid point and numeric metric of the completed runs: n, mean, sd
  (ddof = 1) and the half-width of the 95 % confidence interval of the mean (Student t);
- ``figures/``: one PNG per metric and grid axis, mean ± 95 % CI with the single runs as dots.

Runs execute on a Dask ``LocalCluster`` of single-threaded worker processes (default: one per
core) or on the workers of an existing ``dask.distributed`` scheduler (``--scheduler ADDRESS``).
Each run is single-threaded (numba, BLAS and OpenMP threads; ``params.output.test_workers`` and
``params.threads`` are set to 1 where a recipe has them, unless ``--set``/``--grid`` name them), so
``--workers`` runs share the cores without oversubscribing them; results never depend on it.

A run is one task. It is idempotent: it finds its directory as it left it (finished: nothing to
do; a checkpoint: resume; else: clear and start again), so a task retried after a lost worker, or a
sweep run again after Ctrl-C, finishes exactly what was missing. A failing run is reported (status
and error line) and the others go on. A stopped sweep (Ctrl-C, SIGTERM, SIGHUP) asks the runs
still going to stop as after Ctrl-C (:func:`stop_runs`) and waits up to :data:`STOP_WAIT_S` for
them to write their partial ``results.json``.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as _dt
import hashlib
import io
import itertools
import json
import math
import os
import re
import shlex
import shutil
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from biolearn.errors import BiolearnError
from biolearn.runner import read_results

SWEEPS_DIR = "sweeps"
SWEEP_JSON = "sweep.json"
SWEEP_CSV = "sweep.csv"
SUMMARY_CSV = "summary.csv"
FIGURES_DIR = "figures"
FINISHED = ("completed", "diverged")
"""Statuses of runs that are done: running them again gives the same result."""
RETRIES = 2
"""How often Dask runs a task again after its worker was lost."""
STOP_WAIT_S = 60.0
"""Seconds a stopped sweep waits for its running runs to save their partial results."""
_STOPS: dict[str, str] = {}
"""In a worker process: sweep topic -> the signal that stopped that sweep (:func:`stop_runs`)."""
THREAD_ENV = ("BIOLEARN_THREADS", "NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
              "OPENBLAS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
AUTO_ONE = ("params.output.test_workers", "params.threads")
"""Recipe options set to 1 in every run (each run is one process on one core) unless the user
sets them; results do not depend on them."""
SEED_MAX = 2**32 - 1
_NAME_MAX = 120
_SAFE = re.compile(r"[^A-Za-z0-9._+-]+")


def _one_line(text: Any) -> str:
    return " ".join(str(text).split())


# --------------------------------------------------------------------------------------------
# the plan: which runs a sweep has
# --------------------------------------------------------------------------------------------

@dataclass
class Run:
    """One run of a sweep: grid values, seed, directory name and its ``--set`` arguments."""

    name: str
    grid: dict[str, Any]
    seed: int
    overrides: list[str]
    """All ``--set`` texts of this run: the sweep's, the automatic ones, then the grid's."""
    error: str | None = None
    """Set when the run's config is invalid (then it is never started)."""
    forks: bool = False
    """The run's recipe starts processes of its own (``params.output.test_workers`` > 1)."""


@dataclass
class SweepPlan:
    config: Path
    sets: list[str]
    auto_sets: list[str]
    grid: dict[str, list]
    seeds: list[int]
    base: dict
    """The resolved config with the ``--set`` values (no grid, no seed)."""
    name: str
    """The config's run name (``sweeps/<name>/...``)."""
    runs: list[Run] = field(default_factory=list)

    def definition(self) -> dict:
        """What makes two sweeps the same sweep (compared when one is run again)."""
        from biolearn.io.store import to_jsonable

        return json.loads(json.dumps(to_jsonable({
            "grid": self.grid, "seeds": self.seeds, "auto_set": self.auto_sets,
            "base_config": self.base})))


def value_text(v: Any) -> str:
    """``v`` as the YAML text of a ``--set`` value that reads back as ``v``."""
    import yaml

    s = yaml.safe_dump(v, default_flow_style=True, width=1 << 30, sort_keys=False)
    if s.endswith("\n...\n"):  # the document end marker after a plain scalar
        s = s[:-5]
    s = s.strip("\n")
    try:
        same = yaml.safe_load(s) == v
    except yaml.YAMLError:
        same = False
    return s if same else json.dumps(v)


def parse_grid(texts: list[str] | tuple[str, ...]) -> dict[str, list]:
    """``["params.x=[1, 2]", ...]`` → ``{"params.x": [1, 2], ...}`` (values read as YAML)."""
    from biolearn.config import parse_override

    grid: dict[str, list] = {}
    for text in texts:
        if "=" not in str(text):
            raise BiolearnError(f"malformed grid '{_one_line(text)}'", "in --grid",
                                "write --grid key.sub=[v1, v2, ...]")
        parts, value = parse_override(text)
        key = ".".join(parts)
        if not isinstance(value, list) or not value:
            raise BiolearnError(
                f"the grid of '{key}' is not a non-empty list", f"in --grid '{_one_line(text)}'",
                f"write --grid '{key}=[v1, v2, ...]' (quote it for the shell)")
        if key in grid:
            raise BiolearnError(f"'{key}' is given twice", f"in --grid '{_one_line(text)}'",
                                "merge the values into one --grid list")
        grid[key] = value
    return grid


def parse_seed_list(text: str) -> list[int]:
    """``"0,1,2"`` (or ``"[0, 1, 2]"``) → ``[0, 1, 2]``."""
    items = [t for t in re.split(r"[\s,]+", text.strip().strip("[]")) if t]
    try:
        seeds = [int(t) for t in items]
    except ValueError:
        seeds = []
    if not seeds or any(s < 0 for s in seeds):
        raise BiolearnError(f"invalid seed list '{_one_line(text)}'", "in --seed-list",
                            "write non-negative integers separated by commas, e.g. 0,1,2")
    if len(set(seeds)) != len(seeds):
        raise BiolearnError(f"seed list '{_one_line(text)}' repeats a seed", "in --seed-list",
                            "list each seed once")
    return seeds


def _key_of(text: str) -> str:
    return text.split("=", 1)[0].strip()


def _short_names(keys: list[str]) -> dict[str, str]:
    """The shortest dotted suffix of each key that no other key ends with (never 'seed')."""
    out = {}
    for key in keys:
        parts = key.split(".")
        for k in range(1, len(parts) + 1):
            cand = ".".join(parts[-k:])
            others = [o for o in keys if o != key and (o == cand or o.endswith("." + cand))]
            if not others and cand != "seed":
                break
        out[key] = cand
    return out


def _safe(text: str) -> str:
    return _SAFE.sub("_", text).strip("_") or "_"


def run_names(grid: dict[str, list], combos: list[tuple], seeds_of: list[int]) -> list[str]:
    """Readable, stable directory names ``short_key=value,...,seed=N``; a hash of the exact values
    is appended where sanitised names would be too long or would collide."""
    short = _short_names(list(grid))
    names = []
    for combo, seed in zip(combos, seeds_of, strict=True):
        parts = [f"{_safe(short[k])}={_safe(value_text(v))}" for k, v in zip(grid, combo,
                                                                               strict=True)]
        names.append(",".join([*parts, f"seed={seed}"]))
    counts: dict[str, int] = {}
    for n in names:
        counts[n] = counts.get(n, 0) + 1
    out = []
    for n, combo, seed in zip(names, combos, seeds_of, strict=True):
        if counts[n] > 1 or len(n) > _NAME_MAX:
            digest = hashlib.sha1(json.dumps([list(combo), seed], sort_keys=True, default=str)
                                  .encode()).hexdigest()[:8]
            n = n[: _NAME_MAX - 9].rstrip(",") + "_" + digest
        out.append(n)
    return out


def plan_sweep(config: str | Path, sets: list[str] | tuple[str, ...] = (),
               grid: dict[str, list] | None = None, seeds: list[int] | None = None) -> SweepPlan:
    """Load and check the config, expand the grid × seeds into runs and validate each run's config.

    Errors that concern the whole sweep (unreadable config, bad ``--set``, a bad grid key) raise
    :class:`BiolearnError`; a run whose own config is invalid (e.g. one grid value out of range)
    gets ``run.error`` and is reported as failed.
    """
    from biolearn.config import load_config, to_dict

    config = Path(config).expanduser().resolve()
    sets = list(sets)
    grid = dict(grid or {})
    base_cfg = load_config(config, sets)
    set_keys = {_key_of(s) for s in sets}
    for key in grid:
        if key == "seed":
            raise BiolearnError("'seed' cannot be a grid axis", "in --grid",
                                "use --seeds N or --seed-list 0,1,2")
        if key in set_keys:
            raise BiolearnError(f"'{key}' is given in both --set and --grid", "in --grid",
                                "keep only one of them")
    user_keys = set_keys | set(grid)
    auto = []
    for key in AUTO_ONE:
        obj: Any = base_cfg
        for part in key.split("."):
            obj = getattr(obj, part, None)
        if isinstance(obj, int) and not isinstance(obj, bool) and not any(
                key == u or key.startswith(u + ".") for u in user_keys):
            auto.append(f"{key}=1")
    if seeds is None:
        seeds = [base_cfg.seed]
    if not seeds or len(set(seeds)) != len(seeds):
        raise BiolearnError(f"the seeds {list(seeds)} are empty or repeat a seed",
                            "in --seeds / --seed-list", "give each seed once")
    for sd in seeds:
        if isinstance(sd, bool) or not isinstance(sd, int) or not 0 <= sd <= SEED_MAX:
            raise BiolearnError(f"seed {sd!r} is not valid", "in --seeds / --seed-list",
                                f"use integers between 0 and {SEED_MAX}")
    base = to_dict(base_cfg)
    base.pop("seed", None)
    plan = SweepPlan(config=config, sets=sets, auto_sets=auto, grid=grid, seeds=list(seeds),
                     base=base, name=base_cfg.name)
    combos = list(itertools.product(*grid.values())) if grid else [()]
    pairs = [(c, s) for c in combos for s in plan.seeds]
    names = run_names(grid, [c for c, _ in pairs], [s for _, s in pairs])
    bad_keys: dict[str, int] = {}
    names_left = iter(names)
    for combo in combos:  # each grid point is checked once: the seed plays no part
        values = dict(zip(grid, combo, strict=True))
        overrides = [*sets, *auto, *(f"{k}={value_text(v)}" for k, v in values.items())]
        error, forks = None, False
        try:
            cfg = load_config(config, overrides, plan.seeds[0])
            tw = getattr(getattr(cfg.params, "output", None), "test_workers", 1)
            forks = isinstance(tw, int) and tw > 1
        except BiolearnError as e:
            error = "error: " + _one_line(str(e))
            for k in grid:
                if f"'{k}'" in str(e) and "unknown key" in str(e):
                    bad_keys[k] = bad_keys.get(k, 0) + 1
        for seed in plan.seeds:
            plan.runs.append(Run(name=next(names_left), grid=values, seed=seed,
                                 overrides=overrides, error=error, forks=forks))
    for k, n in bad_keys.items():
        if n == len(combos):  # a misspelt key: no run can start
            raise BiolearnError(f"unknown grid key '{k}'", "in --grid",
                                f"'biolearn list {base_cfg.model}' shows the keys")
    return plan


def run_command(plan: SweepPlan, run: Run, run_dir: Path) -> str:
    """The ``biolearn run`` command that makes the same run on its own."""
    args = ["biolearn", "run", str(plan.config)]
    for o in run.overrides:
        args += ["--set", o]
    return shlex.join([*args, "--seed", str(run.seed), "--out", str(run_dir)])


# --------------------------------------------------------------------------------------------
# the sweep directory
# --------------------------------------------------------------------------------------------

def _new_sweep_dir(name: str, base: str | Path = SWEEPS_DIR) -> Path:
    parent = Path(base) / name
    parent.mkdir(parents=True, exist_ok=True)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    for i in itertools.count():
        cand = parent / (stamp if i == 0 else f"{stamp}-{i}")
        try:
            cand.mkdir()  # atomic: sweeps started together get different directories
            return cand
        except FileExistsError:
            continue
    raise AssertionError("unreachable")


def _stamp_key(p: Path) -> tuple:
    m = re.fullmatch(r"(\d{8}-\d{6})(?:-(\d+))?", p.name)
    return (m.group(1), int(m.group(2) or 0)) if m else (p.name, 0)


def sweep_dir_for(plan: SweepPlan, out: str | Path | None, resume: bool,
                  base: str | Path = SWEEPS_DIR) -> Path:
    """``out``; with ``resume`` and no ``out`` the newest sweep of this config; else a new one."""
    if out is not None:
        return Path(out)
    if resume:
        parent = Path(base) / plan.name
        earlier = sorted((p for p in parent.glob("*") if (p / SWEEP_JSON).is_file()),
                         key=_stamp_key) if parent.is_dir() else []
        if not earlier:
            raise BiolearnError(f"no earlier sweep of '{plan.name}' to resume", f"in {parent}/",
                                "run without --resume to start one, or pass --out DIR")
        return earlier[-1]
    return _new_sweep_dir(plan.name, base)


def _diff(a: Any, b: Any, prefix: str = "") -> list[str]:
    """Dotted keys where two nested dicts differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for k in sorted(set(a) | set(b), key=str):
            p = f"{prefix}.{k}" if prefix else str(k)
            out += [p] if (k in a) != (k in b) else _diff(a[k], b[k], p)
        return out
    return [] if a == b else [prefix or "(root)"]


def _drop_keys(d: Any, names: tuple[str, ...]) -> Any:
    if isinstance(d, dict):
        return {k: _drop_keys(v, names) for k, v in d.items() if k not in names}
    return d


def _identity(definition: dict) -> dict:
    """The part of a sweep definition that must match for a sweep to be continued: grid, seeds
    and the base config, the latter validated again (so fields added to biolearn since take
    their defaults) and without the worker/thread counts (results do not depend on them)."""
    from biolearn.config import config_from_dict, to_dict

    base = definition.get("base_config")
    if isinstance(base, dict):
        try:
            base = to_dict(config_from_dict({**base, "seed": 0}))
            base.pop("seed", None)
        except (BiolearnError, TypeError, ValueError):
            pass
    exempt = tuple(k.rsplit(".", 1)[-1] for k in AUTO_ONE)
    return {"grid": definition.get("grid"), "seeds": definition.get("seeds"),
            "base_config": _drop_keys(base, exempt)}


def open_sweep_dir(plan: SweepPlan, sweep_dir: Path) -> bool:
    """Check or write ``sweep.json``; True when the directory already held this sweep."""
    import biolearn
    from biolearn.io.store import process_git_info, read_json, write_json_atomic

    path = sweep_dir / SWEEP_JSON
    if path.is_file():
        before = read_json(path)
        mine = _identity(plan.definition())
        theirs = _identity(before if isinstance(before, dict) else {})
        if theirs != mine:
            diff = _diff(theirs, mine)
            raise BiolearnError(
                "this is not the sweep in the directory"
                + (f" (differs in: {', '.join(diff[:6])})" if diff else ""),
                f"in {path}",
                "repeat the same config, --set, --grid and seeds to continue it, or pass a new "
                "--out DIR",
            )
        return True
    if sweep_dir.exists() and (not sweep_dir.is_dir() or any(sweep_dir.iterdir())):
        raise BiolearnError("the directory is not empty and holds no sweep",
                            f"at {sweep_dir}", "pass a new or empty --out DIR")
    try:
        sweep_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BiolearnError(f"cannot create the sweep directory ({e.strerror or e})",
                            f"at {sweep_dir}", "pass a writable --out DIR") from e
    write_json_atomic(path, {
        **plan.definition(),
        "config_file": str(plan.config),
        "set": plan.sets,
        "runs": [{"name": r.name, "grid": r.grid, "seed": r.seed,
                  "command": run_command(plan, r, sweep_dir.resolve() / r.name)}
                 for r in plan.runs],
        "biolearn_version": biolearn.__version__,
        **process_git_info(),  # the commit the sweep started from (each run names its own)
        "created": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
    })
    return False


def is_finished(run_dir: Path) -> bool:
    res = read_results(run_dir)
    return res is not None and res.get("status") in FINISHED


def has_checkpoint(run_dir: Path) -> bool:
    """A checkpoint to resume from (``checkpoint*`` anywhere in the run directory)."""
    if not run_dir.is_dir():
        return False
    return any(p.name.startswith("checkpoint") and p.is_file() for p in run_dir.rglob("*"))


# --------------------------------------------------------------------------------------------
# one run: the Dask task
# --------------------------------------------------------------------------------------------

def limit_threads(n: int) -> None:
    """Make this process compute on ``n`` threads (numba now, BLAS/OpenMP where not yet loaded,
    and the processes a recipe starts)."""
    for k in THREAD_ENV:
        if k == "NUMBA_NUM_THREADS" and "numba" in sys.modules:
            continue  # numba re-reads it and refuses a change once its threads have started
        os.environ[k] = str(n)
    try:
        import numba

        numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))
    except Exception:  # pragma: no cover - numba is a dependency; never fail a run for this
        pass
    if "torch" in sys.modules:
        with contextlib.suppress(Exception):
            sys.modules["torch"].set_num_threads(n)


def _restore_environ(saved: dict) -> None:
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def _notify(topic: str | None, msg: dict) -> None:
    if not topic:
        return
    try:
        from distributed import get_worker

        get_worker().log_event(topic, msg)
    except Exception:  # not on a Dask worker, or the scheduler is gone: progress only
        pass


@contextlib.contextmanager
def _run_lock(run_dir: Path, on_dask: bool):
    """Hold a scheduler-wide lock named after the run directory while the run executes, so that a
    run still going on a cluster (after Ctrl-C of an earlier sweep) is never started twice."""
    lock = None
    if on_dask:
        try:
            from distributed import Lock, get_worker

            get_worker()
            lock = Lock("biolearn-run:" + str(run_dir))
            lock.acquire()
        except ValueError:  # not on a worker
            lock = None
    try:
        yield
    finally:
        if lock is not None:
            with contextlib.suppress(Exception):
                lock.release()


@contextlib.contextmanager
def _signals_off_main_thread():
    """Let code that installs signal handlers at import (Brian2 does, for Ctrl-C) run in a Dask
    worker's task thread: ``signal.signal`` outside the main thread is a no-op there instead of a
    ValueError. The worker process handles its signals itself."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        yield
        return
    original = signal.signal

    def tolerant(signalnum: Any, handler: Any) -> Any:
        try:
            return original(signalnum, handler)
        except ValueError:
            return signal.getsignal(signalnum)

    signal.signal = tolerant
    try:
        yield
    finally:
        signal.signal = original


def _error_line(e: BaseException) -> str:
    if isinstance(e, BiolearnError):
        return "error: " + _one_line(str(e))
    return _one_line(f"{type(e).__name__}: {e}")


def run_one(spec: dict) -> dict:
    """Execute one run of a sweep into ``spec["run_dir"]`` (the Dask task; idempotent).

    Finished already: nothing is run. A checkpoint in the directory: ``execute(resume=True)``.
    Otherwise a partial directory is cleared and the run starts afresh. Returns ``{"status",
    "error", "action", "host"}``; ``results.json`` in the run directory holds the rest.
    """
    out = Path(spec["run_dir"])
    limit_threads(int(spec.get("threads", 1)))
    info = {"name": spec["name"], "host": _host()}
    topic = spec.get("topic")
    with _run_lock(out, bool(topic)):
        res = read_results(out)
        if res is not None and res.get("status") in FINISHED:
            return {**info, "status": res["status"], "error": None, "action": "skipped"}
        if topic in _STOPS:  # the sweep stopped before this run began
            return {**info, "status": "not run", "error": "cancelled", "action": "cancelled"}
        _notify(spec.get("topic"), {"run": spec["name"], "state": "started"})
        from biolearn.config import load_config
        from biolearn.runner import RunInterrupted, execute, stop_when

        try:
            cfg = load_config(spec["config"], spec["overrides"], spec["seed"])
        except BiolearnError as e:
            return {**info, "status": "failed", "error": _error_line(e), "action": "invalid"}
        resume = has_checkpoint(out)
        # a directory without a checkpoint starts afresh: cleared by execute under its lock
        overwrite = not resume and out.exists()
        data_root = spec.get("data_root")
        if data_root is None and cfg.data.root and not Path(cfg.data.root).expanduser() \
                .is_absolute() and spec.get("cwd"):
            data_root = str(Path(spec["cwd"]) / cfg.data.root)  # as `biolearn run` there would
        action = "resumed" if resume else "started"
        try:
            with _signals_off_main_thread(), stop_when(lambda: _STOPS.get(topic)):
                res = execute(cfg, out_dir=out, quiet=True, resume=resume, overwrite=overwrite,
                              data_root=data_root, config_path=spec["config"])
        except RunInterrupted as e:
            return {**info, "status": e.results.get("status", "interrupted"),
                    "error": "interrupted", "action": action}
        except Exception as e:
            saved = (read_results(out) or {}).get("status")
            # "running" here is another process's record, or one this run could not replace
            return {**info, "status": "failed" if saved in (None, "running") else saved,
                    "error": _error_line(e), "action": action}
        return {**info, "status": res.get("status", "completed"),
                "error": _one_line(res["error"]) if res.get("error") else None, "action": action}


def stop_runs(topic: str, signal_name: str) -> None:
    """On a worker: stop the runs of the sweep ``topic`` (they stop as after Ctrl-C at their next
    progress update and write their partial results) and start none of its runs from now on."""
    _STOPS[topic] = signal_name


def _host() -> str:
    import socket

    return f"{socket.gethostname()}:{os.getpid()}"


# --------------------------------------------------------------------------------------------
# rows, summary, figures
# --------------------------------------------------------------------------------------------

def flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    """Scalar leaves of nested dicts with dotted keys (lists and other containers are left out)."""
    out: dict[str, Any] = {}
    if not isinstance(d, dict):
        return out
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict):
            out.update(flatten(v, key))
        elif v is None or isinstance(v, (bool, int, float, str)):
            out[key] = v
    return out


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


_NONFINITE = ("nan", "inf", "-inf")
"""How results.json keeps non-finite metric values (JSON has no NaN)."""


def _as_number(v: Any) -> float | None:
    """A metric value as a float (non-finite ones included), or None when it is not a number."""
    if _is_number(v):
        return float(v)
    if isinstance(v, str) and v in _NONFINITE:
        return float(v)
    return None


def collect_rows(plan: SweepPlan, sweep_dir: Path, outcomes: dict[str, dict]) -> list[dict]:
    """One row per run from its ``results.json`` (and this invocation's task outcome)."""
    rows = []
    for run in plan.runs:
        res = read_results(sweep_dir / run.name)
        got = outcomes.get(run.name, {})
        row = {"run": run.name, "grid": run.grid, "seed": run.seed, "status": "not run",
               "wall_time_s": None, "error": None, "metrics": {}}
        if res is not None:
            row.update(status=res.get("status", "unknown"), wall_time_s=res.get("wall_time_s"),
                       error=_one_line(res["error"]) if res.get("error") else None,
                       metrics=flatten(res.get("metrics", {})))
        if run.error:
            row.update(status="failed", error=run.error)
        elif got:
            if got.get("error"):
                row["error"] = got["error"]
            if got.get("status") and (res is None or row["status"] not in FINISHED):
                row["status"] = got["status"]
        if row["status"] == "completed":
            row["error"] = None
        rows.append(row)
    return rows


def _metric_names(rows: list[dict]) -> list[str]:
    names: dict[str, None] = {}
    for r in rows:
        for k in r["metrics"]:
            names.setdefault(k, None)
    return list(names)


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else ""
    return str(v)


def _grid_cell(v: Any) -> str:
    return v if isinstance(v, str) else value_text(v)


def sweep_table(plan: SweepPlan, rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    """Header and cells of ``sweep.csv``."""
    fixed = ["run", *plan.grid, "seed", "status", "wall_time_s"]
    metrics = _metric_names(rows)
    cols = [m if m not in fixed and m != "error" else f"metrics.{m}" for m in metrics]
    header = [*fixed, *cols, "error"]
    cells = []
    for r in rows:
        cells.append([r["run"], *(_grid_cell(r["grid"][k]) for k in plan.grid), str(r["seed"]),
                      r["status"], _cell(r["wall_time_s"]),
                      *(_cell(r["metrics"].get(m)) for m in metrics), r["error"] or ""])
    return header, cells


def summarize(plan: SweepPlan, rows: list[dict]) -> list[dict]:
    """Per grid point and numeric metric of the *completed* runs: n, mean, sd (ddof 1) and the
    95 % CI half-width of the mean, t(0.975, n − 1) · sd / √n (NaN where n < 2)."""
    import numpy as np
    from scipy import stats

    done = [r for r in rows if r["status"] == "completed"]
    numeric = [m for m in _metric_names(done)
               if any(_as_number(r["metrics"].get(m)) is not None for r in done)]
    metrics = ["wall_time_s", *numeric]
    points: dict[str, tuple[dict, list[dict]]] = {}
    for r in rows:  # every grid point, in grid order, also the ones with no completed run
        key = json.dumps([r["grid"][k] for k in plan.grid], sort_keys=True, default=str)
        points.setdefault(key, (r["grid"], []))
        if r["status"] == "completed":
            points[key][1].append(r)
    out = []
    for grid, members in points.values():
        for m in metrics:
            vals = [r["wall_time_s"] if m == "wall_time_s" else r["metrics"].get(m)
                    for r in members]
            nums = [_as_number(v) for v in vals]
            x = np.array([v for v in nums if v is not None and math.isfinite(v)])
            n = len(x)
            mean = float(x.mean()) if n else math.nan
            sd = float(x.std(ddof=1)) if n > 1 else math.nan
            ci = float(stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)) if n > 1 else math.nan
            out.append({"grid": grid, "metric": m, "n": n, "mean": mean, "sd": sd,
                        "ci95": ci, "values": x.tolist()})
    return out


def summary_table(plan: SweepPlan, summary: list[dict]) -> tuple[list[str], list[list[str]]]:
    header = [*plan.grid, "metric", "n", "mean", "sd", "ci95_half_width"]
    cells = [[*(_grid_cell(s["grid"][k]) for k in plan.grid), s["metric"], str(s["n"]),
              _cell(s["mean"]), _cell(s["sd"]), _cell(s["ci95"])] for s in summary]
    return header, cells


def _csv_text(header: list[str], cells: list[list[str]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(cells)
    return buf.getvalue()


def format_summary(plan: SweepPlan, summary: list[dict]) -> str:
    """The summary as an aligned text table (grid keys shortened)."""
    short = _short_names(list(plan.grid))

    def g(v: float) -> str:
        return f"{v:.6g}" if math.isfinite(v) else "-"

    header = [*(short[k] for k in plan.grid), "metric", "n", "mean", "sd", "95% CI ±"]
    lines = [[*(_grid_cell(s["grid"][k]) for k in plan.grid), s["metric"], str(s["n"]),
              g(s["mean"]), g(s["sd"]), g(s["ci95"])] for s in summary]
    widths = [max(len(r[i]) for r in [header, *lines]) for i in range(len(header))]
    right = {len(plan.grid) + j for j in range(1, 5)}
    text = []
    for r in [header, *lines]:
        text.append("  ".join(c.rjust(w) if i in right else c.ljust(w)
                              for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip())
    return "\n".join(text)


def plot_summary(plan: SweepPlan, summary: list[dict], fig_dir: Path) -> list[Path]:
    """One PNG per metric and grid axis: mean ± 95 % CI against the axis values, one line per
    combination of the other axes, single runs as dots."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    axes = list(plan.grid)
    if not axes:
        return []
    fig_dir.mkdir(parents=True, exist_ok=True)
    short = _short_names(axes)
    paths = []
    metrics = list(dict.fromkeys(s["metric"] for s in summary))
    for m in metrics:
        items = [s for s in summary if s["metric"] == m]
        if not any(s["n"] for s in items):
            continue
        for axis in axes:
            vals = plan.grid[axis]
            numeric = all(_is_number(v) for v in vals)
            pos = {value_text(v): (float(v) if numeric else float(i)) for i, v in enumerate(vals)}
            others = [a for a in axes if a != axis]
            lines: dict[str, list[dict]] = {}
            for s in items:
                label = ", ".join(f"{short[a]}={_grid_cell(s['grid'][a])}" for a in others)
                lines.setdefault(label, []).append(s)
            fig, ax = plt.subplots(figsize=(6, 4))
            span = (max(pos.values()) - min(pos.values())) or 1.0
            for j, (label, group) in enumerate(lines.items()):
                group = sorted(group, key=lambda s, a=axis: pos[value_text(s["grid"][a])])
                x = np.array([pos[value_text(s["grid"][axis])] for s in group])
                shift = (j - (len(lines) - 1) / 2) * 0.01 * span if len(lines) > 1 else 0.0
                y = np.array([s["mean"] for s in group])
                err = np.nan_to_num(np.array([s["ci95"] for s in group]))
                ax.errorbar(x + shift, y, yerr=err, marker="o", capsize=3,
                            label=label or None, color=f"C{j % 10}")
                for xi, s in zip(x, group, strict=True):
                    if s["values"]:
                        ax.plot(np.full(len(s["values"]), xi + shift), s["values"], ".",
                                color=f"C{j % 10}", alpha=0.35, ms=4)
            if not numeric:
                ax.set_xticks([pos[value_text(v)] for v in vals])
                ax.set_xticklabels([_grid_cell(v) for v in vals], rotation=30, ha="right")
            ax.set_xlabel(axis)
            ax.set_ylabel(m)
            ns = sorted({s["n"] for s in items})
            ax.set_title(f"{m}: mean ± 95 % CI (n = {', '.join(map(str, ns))})", fontsize=10)
            if any(lines):
                ax.legend(fontsize=7)
            p = fig_dir / f"{_safe(m)}_vs_{_safe(short[axis])}.png"
            fig.savefig(p, dpi=100, bbox_inches="tight")
            plt.close(fig)
            paths.append(p)
    return paths


# --------------------------------------------------------------------------------------------
# the sweep
# --------------------------------------------------------------------------------------------

@dataclass
class SweepResult:
    dir: Path
    plan: SweepPlan
    rows: list[dict]
    summary: list[dict]
    ran: list[str]
    """Runs executed (started or resumed) by this invocation."""
    skipped: list[str]
    """Runs already finished before this invocation."""
    figures: list[Path] = field(default_factory=list)
    outcomes: dict[str, dict] = field(default_factory=dict)
    """What each task of this invocation reported: status, error, action (started, resumed,
    skipped, lost, ...), host (``hostname:pid`` of the worker process)."""

    @property
    def failed(self) -> list[dict]:
        return [r for r in self.rows if r["status"] not in FINISHED]


class SweepInterrupted(Exception):
    """Ctrl-C, SIGTERM or SIGHUP during a sweep, after ``sweep.csv`` was written with what was
    finished. ``signal`` names the signal (``"SIGINT"`` for Ctrl-C)."""

    def __init__(self, sweep_dir: Path, signal: str = "SIGINT"):
        self.dir = Path(sweep_dir)
        self.signal = signal
        super().__init__(f"sweep interrupted by {signal}; finished runs are in {sweep_dir}")


def default_workers(threads_per_run: int = 1) -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return max(1, cores // max(1, threads_per_run))


def _quiet_dask_logs(level: int = 50) -> dict[str, int]:
    """No log records below ``level`` (default CRITICAL) from distributed and tornado in this
    process; returns the levels they had. Closing a local cluster under a running task (a sweep
    stopped by a signal) makes the workers and the client log lost heartbeats and lock leases
    with tracebacks; a run's own failure reaches the sweep through its task's result instead."""
    import logging

    names = [n for n in logging.root.manager.loggerDict
             if n.split(".")[0] in ("distributed", "tornado")]
    levels = {}
    for name in {"distributed", "tornado", *names}:
        lg = logging.getLogger(name)
        levels[name] = lg.level
        lg.setLevel(max(lg.level, level))  # raised only: a quieter logger stays quiet
    return levels


def _local_worker_plugin() -> Any:
    """A worker plugin for a local cluster's worker processes (also those the nanny starts again
    after a worker was lost): quiet logs (:func:`_quiet_dask_logs`), and Ctrl-C left to the
    sweep. A terminal sends Ctrl-C to the workers too; the sweep stops them itself, after
    writing its tables, and a worker's own KeyboardInterrupt would only print a traceback."""
    from distributed import WorkerPlugin

    class LocalWorker(WorkerPlugin):
        def setup(self, worker: Any) -> None:
            import signal

            _quiet_dask_logs()
            with contextlib.suppress(ValueError):  # only from the process's main thread
                signal.signal(signal.SIGINT, signal.SIG_IGN)

    return LocalWorker()


@contextlib.contextmanager
def dask_client(scheduler: str | None, workers: int, threads_per_run: int,
                fork_inside: bool = False):
    """A ``distributed.Client``: of an existing scheduler, or of a new in-process LocalCluster of
    ``workers`` single-threaded worker processes (closed on exit)."""
    import logging

    import dask
    from distributed import Client, LocalCluster

    env = {k: str(threads_per_run) for k in THREAD_ENV}
    levels = _quiet_dask_logs(logging.ERROR)
    try:
        if scheduler:
            try:
                if Path(scheduler).is_file():  # a scheduler file (dask scheduler --scheduler-file)
                    client = Client(scheduler_file=scheduler, timeout="20s")
                else:
                    client = Client(scheduler, timeout="20s")
            except (OSError, TimeoutError, ValueError) as e:
                raise BiolearnError(
                    f"cannot reach the Dask scheduler ({_one_line(e)})",
                    f"at --scheduler {scheduler}",
                    "start one with 'dask scheduler' and workers with 'dask worker ADDRESS "
                    "--nthreads 1', or check the address",
                ) from e
            try:
                yield client
            finally:
                client.close()
            return
        conf = {"distributed.worker.daemon": not fork_inside,
                **{f"distributed.nanny.pre-spawn-environ.{k}": v for k, v in env.items()}}
        # the nanny sets the pre-spawn variables in this process too: put ours back afterwards,
        # or numba here would refuse its own thread count (NUMBA_NUM_THREADS) from then on
        saved = {k: os.environ.get(k) for k in env}
        with contextlib.ExitStack() as stack, dask.config.set(conf):
            stack.callback(_restore_environ, saved)
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   dashboard_address=":0", memory_limit=0,  # a free port
                                   silence_logs=logging.ERROR, env=env, host="127.0.0.1")
            try:
                client = Client(cluster)
                try:
                    client.register_plugin(_local_worker_plugin(), name="biolearn-local-worker")
                    yield client
                except KeyboardInterrupt:  # the cluster closes under running tasks: no noise
                    levels = {**_quiet_dask_logs(), **levels}  # loggers made since: put back too
                    raise
                finally:
                    client.close()
            finally:
                cluster.close()
    finally:
        for n, level in levels.items():
            logging.getLogger(n).setLevel(level)


def _progress(total: int, quiet: bool) -> Any:
    from tqdm.auto import tqdm

    tty = sys.stderr.isatty()
    return tqdm(total=total, desc="sweep", unit="run", disable=quiet or total == 0,
                dynamic_ncols=tty, mininterval=0.5 if tty else 30.0, file=sys.stderr)


def write_outputs(plan: SweepPlan, sweep_dir: Path, outcomes: dict[str, dict],
                  figures: bool = True) -> tuple[list[dict], list[dict], list[Path]]:
    """Write ``sweep.csv``, ``summary.csv`` and the figures; return rows, summary, figure paths."""
    from biolearn.io.store import write_text_atomic

    rows = collect_rows(plan, sweep_dir, outcomes)
    write_text_atomic(sweep_dir / SWEEP_CSV, _csv_text(*sweep_table(plan, rows)))
    summary = summarize(plan, rows)
    write_text_atomic(sweep_dir / SUMMARY_CSV, _csv_text(*summary_table(plan, summary)))
    paths = plot_summary(plan, summary, sweep_dir / FIGURES_DIR) if figures else []
    return rows, summary, paths


def run_sweep(config: str | Path, sets: list[str] | tuple[str, ...] = (),
              grid: dict[str, list] | list[str] | tuple[str, ...] | None = None,
              seeds: int | list[int] | None = None, out: str | Path | None = None,
              workers: int | None = None, threads_per_run: int = 1,
              scheduler: str | None = None, quiet: bool = False, resume: bool = False,
              data_root: str | Path | None = None, retries: int = RETRIES,
              figures: bool = True, log: Any = None) -> SweepResult:
    """Run a sweep (see the module docstring) and return its rows and summary.

    ``grid``: ``{"params.x": [1, 2]}`` or ``--grid`` texts; ``seeds``: a count (0 … N−1) or a list
    (default: the config's seed). ``out``: the sweep directory (default ``sweeps/<name>/<time>``;
    with ``resume`` the newest one of this config). ``log(text)`` receives the progress lines
    that are not the bar (default: stderr unless ``quiet``).
    """
    if isinstance(grid, (list, tuple)):
        grid = parse_grid(list(grid))
    if isinstance(seeds, int):
        if seeds < 1:
            raise BiolearnError(f"--seeds {seeds} is not positive", "in --seeds",
                                "pass a count of seeds >= 1")
        seeds = list(range(seeds))
    if threads_per_run < 1:
        raise BiolearnError(f"--threads-per-run {threads_per_run} is not positive",
                            "in --threads-per-run", "pass 1 or more")
    if workers is not None and workers < 1:
        raise BiolearnError(f"--workers {workers} is not positive", "in --workers",
                            "pass 1 or more")
    if log is None:
        def log(text: str) -> None:
            if not quiet:
                print(text, file=sys.stderr, flush=True)

    plan = plan_sweep(config, sets, grid, seeds)
    sweep_dir = sweep_dir_for(plan, out, resume).expanduser().resolve()
    again = open_sweep_dir(plan, sweep_dir)
    finished = [r.name for r in plan.runs if not r.error and is_finished(sweep_dir / r.name)]
    todo = [r for r in plan.runs if not r.error and r.name not in finished]
    invalid = [r for r in plan.runs if r.error]
    log(f"sweep: {sweep_dir}" + (f" (continued: {len(finished)} of {len(plan.runs)} runs "
                                 "finished)" if again else ""))
    log(f"{len(plan.runs)} runs: {len(todo)} to run, {len(finished)} finished, "
        f"{len(invalid)} with an invalid config")
    outcomes: dict[str, dict] = {}
    ran: list[str] = []
    if todo:
        # SIGTERM and SIGHUP (a cluster's job manager, a closed terminal) stop the sweep as
        # Ctrl-C does: sweep.csv and summary.csv are written with what finished
        from biolearn.runner import SignalGuard

        def tables() -> None:  # also before a stopped sweep waits for its runs (a SIGKILL
            write_outputs(plan, sweep_dir, outcomes, figures=False)  # may follow SIGTERM)

        with SignalGuard() as guard:
            try:
                _run_on_dask(plan, todo, sweep_dir, outcomes, ran, workers=workers,
                             threads_per_run=threads_per_run, scheduler=scheduler,
                             quiet=quiet, data_root=data_root, retries=retries, log=log,
                             tables=tables)
                if guard.received:  # its exception was swallowed (a finaliser) as the runs ended
                    raise KeyboardInterrupt
            except KeyboardInterrupt:
                guard.stop()  # a second signal must not cut the tables short
                tables()
                raise SweepInterrupted(sweep_dir, guard.received or "SIGINT") from None
            except BiolearnError:  # e.g. no scheduler: leave no empty sweep behind
                if not again and not any((sweep_dir / r.name).exists() for r in plan.runs):
                    shutil.rmtree(sweep_dir, ignore_errors=True)
                raise
    rows, summary, paths = write_outputs(plan, sweep_dir, outcomes, figures=figures)
    return SweepResult(dir=sweep_dir, plan=plan, rows=rows, summary=summary, ran=ran,
                       skipped=finished, figures=paths, outcomes=outcomes)


def _run_on_dask(plan: SweepPlan, todo: list[Run], sweep_dir: Path, outcomes: dict[str, dict],
                 ran: list[str], *, workers: int | None, threads_per_run: int,
                 scheduler: str | None, quiet: bool, data_root: str | Path | None,
                 retries: int, log: Any, tables: Any) -> None:
    from distributed import as_completed

    n_workers = min(workers or default_workers(threads_per_run), len(todo))
    fork_inside = any(r.forks for r in todo)  # such runs need non-daemonic worker processes
    topic = f"biolearn-sweep-{uuid.uuid4().hex[:12]}"
    specs = {r.name: {"name": r.name, "config": str(plan.config), "overrides": r.overrides,
                      "seed": r.seed, "run_dir": str(sweep_dir / r.name), "threads":
                      threads_per_run, "topic": topic, "cwd": os.getcwd(),
                      "data_root": str(Path(data_root).expanduser().resolve())
                      if data_root else None} for r in todo}
    running: set[str] = set()
    t0 = time.perf_counter()
    with dask_client(scheduler, n_workers, threads_per_run, fork_inside) as client:
        where = scheduler or f"a local cluster of {n_workers} worker processes"
        info = client.scheduler_info().get("workers", {})
        nw, nthreads = len(info), sum(w.get("nthreads", 1) for w in info.values())
        import importlib.util

        link = None
        if importlib.util.find_spec("bokeh") is not None:  # the dashboard needs bokeh
            try:
                link = client.dashboard_link
            except (KeyError, AttributeError, ValueError):  # a scheduler without one
                link = None
        log(f"running on {where} ({nw} workers, {nthreads} threads)" + (
            "; waiting for workers to join" if nw == 0 else "")
            + (f"; dashboard {link}" if link else ""))
        bar = _progress(len(todo), quiet)
        failed = 0

        tty = sys.stderr.isatty()
        slots = [max(1, nthreads)]  # refreshed after each run (workers may come and go)

        def show() -> None:  # also called from the client's event thread: no requests here
            bar.set_postfix_str(f"running {min(len(running), slots[0])}, failed {failed}",
                                refresh=tty)

        def on_event(event: Any) -> None:
            msg = event[1] if isinstance(event, tuple) and len(event) == 2 else event
            if isinstance(msg, dict) and msg.get("state") == "started":
                running.add(str(msg.get("run")))
                show()

        with contextlib.suppress(Exception):
            client.subscribe_topic(topic, on_event)
        futures = {client.submit(run_one, specs[r.name], key=f"biolearn-run-{topic}-{r.name}",
                                 retries=retries, pure=False): r.name for r in todo}
        show()
        try:
            for fut in as_completed(futures):
                name = futures[fut]
                if fut.status == "finished":
                    got = fut.result()
                elif fut.status == "cancelled":
                    got = {"status": "not run", "error": "cancelled", "action": "cancelled"}
                else:
                    exc = fut.exception()
                    got = {"status": "failed", "action": "lost",
                           "error": _one_line(f"{type(exc).__name__}: {exc}")}
                outcomes[name] = got
                running.discard(name)
                if got.get("action") not in ("skipped", "invalid", "cancelled", "lost"):
                    ran.append(name)
                if got.get("status") not in FINISHED:
                    failed += 1
                    if not quiet:  # (the command lists every failure at the end)
                        bar.write(f"{got.get('status')}: {name}: {got.get('error') or ''}",
                                  file=sys.stderr)
                bar.update(1)
                with contextlib.suppress(Exception):
                    slots[0] = max(1, sum(w.get("nthreads", 1) for w in
                                          client.scheduler_info().get("workers", {}).values()))
                show()
        except KeyboardInterrupt as e:
            bar.close()
            _stop_running(client, futures, outcomes, running, topic,
                          getattr(e, "name", "SIGINT"), log, tables)
            raise
        bar.close()
        with contextlib.suppress(Exception):
            client.unsubscribe_topic(topic)
    log(f"{len(todo)} runs in {time.perf_counter() - t0:.1f} s, {failed} not completed")


def _stop_running(client: Any, futures: dict, outcomes: dict[str, dict], running: set[str],
                  topic: str, signal_name: str, log: Any, tables: Any) -> None:
    """After a signal: cancel the runs not yet begun, ask every worker to stop this sweep's runs
    (:func:`stop_runs`; also those whose start was not yet reported), write the tables, wait up to
    :data:`STOP_WAIT_S` for the runs going to save their partial results, and record their
    outcomes. Runs that report no progress in that time are left to the cluster."""
    from distributed import wait

    left = [f for f, name in futures.items() if name not in outcomes]
    going = [f for f in left if futures[f] in running]
    for fut in left:
        if fut not in going:
            fut.cancel()
    with contextlib.suppress(Exception):  # a lost scheduler: nothing to ask
        client.run(stop_runs, topic, signal_name, on_error="ignore")
    tables()
    if going:
        log(f"stopping: waiting up to {STOP_WAIT_S:g} s for {len(going)} running run(s) to "
            "save their partial results")
        with contextlib.suppress(Exception):  # TimeoutError, or a lost scheduler
            wait(going, timeout=STOP_WAIT_S)
    for fut in going:
        if fut.status == "finished":
            with contextlib.suppress(Exception):
                outcomes[futures[fut]] = fut.result()
        fut.cancel()
