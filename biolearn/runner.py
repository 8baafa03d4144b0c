"""Run orchestration: the :class:`RunContext` a recipe receives, and the run directory it fills.

A recipe is ``run(cfg: RunConfig, ctx: RunContext) -> dict`` (metrics). Everything it writes goes
through ``ctx`` so that every run leaves the same files: ``results.json``, ``spikes.h5``,
``weights.h5``, PNG figures, and a checkpoint for ``--resume``.

:func:`execute` makes the run directory (``runs/<config name>/<YYYYmmdd-HHMMSS>`` unless told
otherwise), writes ``config.resolved.yaml`` before the recipe starts, runs it, and writes
``results.json`` atomically — also when the run is interrupted (``status: "interrupted"``, with the
partial metrics the recipe put in ``ctx.metrics``) or fails (``status: "failed"``).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from biolearn.errors import BiolearnError

RUNS_DIR = "runs"
RESULTS = "results.json"
RESOLVED = "config.resolved.yaml"
LOG_INTERVAL_S = 60.0
"""Seconds between progress lines when stderr is not a terminal."""


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

    def __post_init__(self) -> None:
        self.out_dir = Path(self.out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.rng = np.random.default_rng(self.seed)

    def path(self, name: str) -> Path:
        """Path of a file inside the run directory."""
        return self.out_dir / name

    def progress(self, total: int, desc: str, unit: str = "img") -> Any:
        """A tqdm bar; silent with --quiet.

        When stderr is not a terminal (a batch job, ``nohup``, a log file) the bar prints one plain
        line every :data:`LOG_INTERVAL_S` seconds instead of redrawing itself.
        """
        from tqdm.auto import tqdm

        if self.quiet or sys.stderr.isatty():
            return tqdm(total=total, desc=desc, unit=unit, disable=self.quiet, dynamic_ncols=True)
        return tqdm(total=total, desc=desc, unit=unit, file=_LineStream(LOG_INTERVAL_S), ncols=100,
                    mininterval=min(LOG_INTERVAL_S, 1.0))

    def save_figure(self, fig: Any, name: str) -> Path:
        """Save a matplotlib figure as ``name``.png in the run directory and close it."""
        import matplotlib.pyplot as plt

        p = self.path(name if name.endswith(".png") else name + ".png")
        fig.savefig(p, dpi=110, bbox_inches="tight")
        plt.close(fig)
        return p

    @property
    def checkpoint_path(self) -> Path:
        return self.path("checkpoint.npz")


class RunInterrupted(Exception):
    """Raised by :func:`execute` after Ctrl-C, once ``results.json`` has been written."""

    def __init__(self, out_dir: Path, results: dict):
        self.out_dir, self.results = Path(out_dir), results
        super().__init__(f"run interrupted; partial results in {out_dir / RESULTS}")


# --------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------

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


def _utcnow() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def _iso(t: _dt.datetime) -> str:
    return t.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def run_dir_for(name: str, out_dir: str | Path | None, resume: bool,
                base: str | Path = RUNS_DIR) -> Path:
    """The directory a run writes to (see :func:`execute`)."""
    if out_dir is not None:
        return Path(out_dir)
    parent = Path(base) / name
    if resume:
        earlier = sorted(p for p in parent.glob("*") if p.is_dir() and (p / RESOLVED).exists()) \
            if parent.is_dir() else []
        if not earlier:
            raise BiolearnError(
                f"no earlier run of '{name}' to resume", f"in {parent}/",
                "run without --resume to start one, or pass --out DIR of the run to resume",
            )
        return earlier[-1]
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    cand, i = parent / stamp, 1
    while cand.exists():
        cand, i = parent / f"{stamp}-{i}", i + 1
    return cand


def execute(cfg: Any, out_dir: str | Path | None = None, quiet: bool = False,
            resume: bool = False, data_root: str | None = None,
            config_path: str | Path | None = None) -> dict:
    """Run ``cfg``'s recipe into a run directory and return the ``results.json`` content.

    Raises :class:`RunInterrupted` on Ctrl-C (after writing partial results), re-raises the
    recipe's exception after writing ``status: "failed"``.
    """
    import biolearn
    from biolearn.config import dump_yaml, to_dict
    from biolearn.io.store import provenance, write_json_atomic
    from biolearn.registry import get_recipe

    recipe = get_recipe(cfg.model)
    resolved = to_dict(cfg)
    out = run_dir_for(cfg.name, out_dir, resume)
    resolved_path = out / RESOLVED
    if resume and resolved_path.exists():
        import yaml

        try:
            before = yaml.safe_load(resolved_path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError, UnicodeDecodeError):
            before = None
        if before is not None:
            before = _with_new_defaults(before)
        if before is not None and before != resolved:
            diff = sorted(_diff_keys(before, resolved))
            raise BiolearnError(
                "the config differs from the run being resumed"
                + (f" (keys: {', '.join(diff[:6])})" if diff else ""),
                f"in {out}",
                "resume with the same config and --set values, or start a new run without "
                "--resume",
            )
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BiolearnError(
            f"cannot create the run directory ({e.strerror or e})", f"at {out}",
            "pass a writable --out DIR",
        ) from e
    write_atomic(resolved_path, dump_yaml(cfg))
    ctx = RunContext(out_dir=out, seed=cfg.seed, config=resolved,
                     config_path=Path(config_path) if config_path else None,
                     data_root=resolve_data_root(data_root, cfg.data.root), quiet=quiet,
                     resume=resume)
    start, t0 = _utcnow(), time.perf_counter()

    def results(status: str, metrics: dict, error: str | None = None) -> dict:
        res = {
            "config": resolved,
            "metrics": metrics,
            "wall_time_s": time.perf_counter() - t0,
            "biolearn_version": biolearn.__version__,
            "seed": cfg.seed,
            "status": status,
            "provenance": provenance(
                start_utc=_iso(start),
                end_utc=_iso(_utcnow()),
                argv=[Path(sys.argv[0]).name, *sys.argv[1:]] if sys.argv else [],
            ),
        }
        if config_path is not None:
            res["provenance"]["config_file"] = str(config_path)
        if error:
            res["error"] = error
        return res

    def save(res: dict) -> None:
        try:
            write_json_atomic(out / RESULTS, res)
        except (TypeError, ValueError) as e:  # a recipe returned something odd: keep the run
            res = {**res, "metrics": {k: repr(v) for k, v in res["metrics"].items()},
                   "metrics_error": str(e)}
            write_json_atomic(out / RESULTS, res)

    try:
        metrics = recipe.run(cfg, ctx)
    except KeyboardInterrupt:
        res = results("interrupted", dict(ctx.metrics))
        save(res)
        raise RunInterrupted(out, res) from None
    except BaseException as e:
        save(results("failed", dict(ctx.metrics), f"{type(e).__name__}: {e}"))
        raise
    if metrics is None:
        metrics = {}
    if not isinstance(metrics, dict):
        raise TypeError(f"recipe '{cfg.model}' returned {type(metrics).__name__}, not a dict")
    res = results("completed", {**ctx.metrics, **metrics})
    save(res)
    return json.loads(to_json(res))


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
