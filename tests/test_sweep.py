"""``biolearn sweep``: runs on Dask equal the same runs made alone; csv/summary statistics;
resumption; failures; a real scheduler losing a worker mid-sweep."""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from mnist_data import mnist_root as _mnist_root
from scipy import stats

from biolearn.config import load_config
from biolearn.errors import BiolearnError
from biolearn.io.store import git_info, process_git_info
from biolearn.runner import RESULTS, execute
from biolearn.sweep import (
    SUMMARY_CSV,
    SWEEP_CSV,
    SWEEP_JSON,
    parse_grid,
    parse_seed_list,
    plan_sweep,
    run_names,
    run_sweep,
)

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "custom_neuron.yaml"
# euler instead of the config's exact update: the same network, without sympy's matrix
# exponential in every fresh worker process
SETS = ["params.duration_ms=200", "params.neuron_models.alif.method=euler"]
FILES = ("weights.h5", "spikes.h5")


def _grid() -> dict:
    return {"params.dt_ms": [0.1, 0.05]}  # the step changes every spike train and weight


SEEDS = [0, 1]


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------

def _datasets(path: Path) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()])
                     if isinstance(obj, h5py.Dataset) else None)
    return out


def _same_run(a: Path, b: Path) -> None:
    ra = json.loads((a / RESULTS).read_text())
    rb = json.loads((b / RESULTS).read_text())
    assert ra["status"] == rb["status"] == "completed"
    assert ra["metrics"] == rb["metrics"]
    assert ra["config"] == rb["config"]
    assert ra["seed"] == rb["seed"]
    for name in FILES:
        da, db = _datasets(a / name), _datasets(b / name)
        assert da.keys() == db.keys() and da, name
        for k in da:
            assert da[k].dtype == db[k].dtype, (name, k)
            np.testing.assert_array_equal(da[k], db[k], err_msg=f"{name}:{k}")
    assert sorted(p.name for p in a.iterdir()) == sorted(p.name for p in b.iterdir())


def _ended(run: Path) -> bool:
    """The run has written the status it ended with (its results.json says "running" while it
    runs)."""
    try:
        return json.loads((run / RESULTS).read_text()).get("status") != "running"
    except (OSError, ValueError):
        return False


def _read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))




@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[tuple, Path]:
    """The sweep's runs made one by one with ``execute`` in this process (the plan's own
    ``--set`` values, so test_workers/threads overrides would be the same as in the sweep)."""
    base = tmp_path_factory.mktemp("serial")
    plan = plan_sweep(CONFIG, SETS, _grid(), SEEDS)
    out = {}
    for run in plan.runs:
        cfg = load_config(CONFIG, run.overrides, run.seed)
        execute(cfg, out_dir=base / run.name, quiet=True, config_path=CONFIG)
        out[(run.grid["params.dt_ms"], run.seed)] = base / run.name
    return out


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory):
    """The sweep on a LocalCluster of 2 worker processes."""
    from biolearn.sweep import THREAD_ENV

    d = tmp_path_factory.mktemp("sweep") / "s"
    env = {k: os.environ.get(k) for k in THREAD_ENV}
    res = run_sweep(CONFIG, SETS, _grid(), SEEDS, out=d, workers=2, quiet=True)
    res.environ_before_after = (env, {k: os.environ.get(k) for k in THREAD_ENV})
    return d, res


@pytest.fixture(scope="module")
def cluster():
    """One warm single-worker LocalCluster, used by address as an external scheduler."""
    import logging

    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None, memory_limit=0,
                      silence_logs=logging.ERROR) as c:
        yield c.scheduler_address


# --------------------------------------------------------------------------------------------
# planning (no cluster)
# --------------------------------------------------------------------------------------------

def test_grid_and_seed_parsing():
    assert parse_grid(["params.a=[1, 2]", "params.b.c=[x, 'y z']"]) == {
        "params.a": [1, 2], "params.b.c": ["x", "y z"]}
    for bad in (["params.a=1"], ["params.a=[]"], ["params.a=[1]", "params.a=[2]"], ["nokey"]):
        with pytest.raises(BiolearnError):
            parse_grid(bad)
    assert parse_seed_list("0,1, 5") == [0, 1, 5]
    assert parse_seed_list("[3,4]") == [3, 4]
    for bad in ("", "a,b", "1,1", "-1"):
        with pytest.raises(BiolearnError):
            parse_seed_list(bad)


def test_run_names_readable_stable_and_unique():
    grid = {"params.x.eta": [0.01, 1e-10], "params.y.eta": ["a b/c", "a_b_c"],
            "params.n": [[1, 2]]}
    combos = [(a, b, c) for a in grid["params.x.eta"] for b in grid["params.y.eta"]
              for c in grid["params.n"]]
    names = run_names(grid, combos, [0] * len(combos))
    assert names == run_names(grid, combos, [0] * len(combos))  # stable
    assert len(set(names)) == len(names)  # unique although "a b/c" and "a_b_c" sanitise alike
    assert names[0].startswith("x.eta=0.01,y.eta=a_b_c,n=1_2,seed=0")
    assert all("/" not in n and " " not in n for n in names)
    assert run_names({"params.seed": [1]}, [(1,)], [3]) == ["params.seed=1,seed=3"]


def test_plan_sets_single_worker_options_and_checks_keys(tmp_path):
    smoke = ROOT / "configs" / "stdp_mnist_smoke.yaml"
    plan = plan_sweep(smoke, [], {"params.plasticity.eta_in": [0.01, 0.02]}, [0, 1])
    assert plan.auto_sets == ["params.output.test_workers=1"]
    assert len(plan.runs) == 4 and all(r.error is None for r in plan.runs)
    assert all("params.output.test_workers=1" in r.overrides for r in plan.runs)
    mine = plan_sweep(smoke, ["params.output.test_workers=2"], {}, None)
    assert mine.auto_sets == [] and [r.seed for r in mine.runs] == [0]
    with pytest.raises(BiolearnError, match="unknown grid key"):
        plan_sweep(CONFIG, SETS, {"params.no_such_key": [1, 2]}, [0])
    with pytest.raises(BiolearnError, match="seed"):
        plan_sweep(CONFIG, SETS, {"seed": [1, 2]}, [0])
    with pytest.raises(BiolearnError, match="both --set and --grid"):
        plan_sweep(CONFIG, SETS, {"params.duration_ms": [1.0, 2.0]}, [0])


def test_summary_statistics_only_from_completed_finite_values():
    from biolearn.sweep import SweepPlan, summarize

    plan = SweepPlan(config=CONFIG, sets=[], auto_sets=[], grid={"params.a": [1, 2]},
                     seeds=[0, 1, 2, 3], base={}, name="x")

    def row(a, status, acc, wall=1.0):
        return {"grid": {"params.a": a}, "status": status, "wall_time_s": wall,
                "metrics": {"acc": acc, "label": "text", "flag": True}}

    rows = [row(1, "completed", 0.5), row(1, "completed", 0.7), row(1, "completed", "nan"),
            row(1, "failed", 0.0), row(2, "completed", 0.9, 3.0), row(2, "diverged", "inf")]
    got = {(s["grid"]["params.a"], s["metric"]): s for s in summarize(plan, rows)}
    assert {m for _, m in got} == {"wall_time_s", "acc"}  # strings and booleans are no metric
    a1 = got[(1, "acc")]
    x = np.array([0.5, 0.7])
    assert a1["n"] == 2 and a1["mean"] == pytest.approx(x.mean())
    assert a1["sd"] == pytest.approx(x.std(ddof=1))
    assert a1["ci95"] == pytest.approx(stats.t.ppf(0.975, 1) * x.std(ddof=1) / math.sqrt(2))
    assert got[(1, "wall_time_s")]["n"] == 3
    a2 = got[(2, "acc")]
    assert a2["n"] == 1 and a2["mean"] == 0.9 and math.isnan(a2["sd"]) and math.isnan(a2["ci95"])


def test_run_one_skips_resumes_or_restarts_its_directory(tmp_path, monkeypatch):
    """The task decides from the directory alone, so a retried task does the right thing."""
    import biolearn.runner as runner
    from biolearn.sweep import THREAD_ENV, run_one

    for k in THREAD_ENV:  # run_one limits its process's threads: restore them afterwards
        monkeypatch.delenv(k, raising=False)

    calls = []

    def fake_execute(cfg, out_dir, quiet, resume, overwrite, data_root, config_path):
        calls.append((Path(out_dir), resume, overwrite, sorted(
            p.name for p in Path(out_dir).glob("*")) if Path(out_dir).exists() else None))
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        res = {"status": "completed", "metrics": {"x": 1}, "wall_time_s": 0.0}
        (Path(out_dir) / RESULTS).write_text(json.dumps(res))
        return res

    monkeypatch.setattr(runner, "execute", fake_execute)
    spec = {"name": "r", "config": str(CONFIG), "overrides": SETS, "seed": 0, "threads": 1,
            "run_dir": str(tmp_path / "r")}
    out = tmp_path / "r"
    # nothing there: a fresh run
    assert run_one(spec)["action"] == "started"
    assert calls[-1] == (out, False, False, None)
    # finished: nothing to do
    assert run_one(spec)["action"] == "skipped" and len(calls) == 1
    # a checkpoint: resume in place
    (out / RESULTS).unlink()
    (out / "checkpoint.npz").write_bytes(b"state")
    (out / "config.resolved.yaml").write_text("model: network\n")
    assert run_one(spec)["action"] == "resumed"
    assert calls[-1] == (out, True, False, ["checkpoint.npz", "config.resolved.yaml"])
    # partial without a checkpoint: a fresh run that clears it (under the run directory's lock)
    (out / RESULTS).write_text(json.dumps({"status": "interrupted"}))
    (out / "checkpoint.npz").unlink()
    (out / "spikes.h5").write_bytes(b"half")
    assert run_one(spec)["action"] == "started"
    assert calls[-1] == (out, False, True, ["config.resolved.yaml", RESULTS, "spikes.h5"])
    # an exception is a failed run with one error line, not a failed task
    def boom(*a, **k):
        raise BiolearnError("bad thing", "in here", "do that")

    monkeypatch.setattr(runner, "execute", boom)
    (out / RESULTS).unlink()
    got = run_one(spec)
    assert got["status"] == "failed" and got["error"] == "error: bad thing, in here, do that"
    # the record of another run still going there (or one the failed run could not replace)
    (out / RESULTS).write_text(json.dumps({"status": "running"}))
    assert run_one(spec)["status"] == "failed"


# --------------------------------------------------------------------------------------------
# a sweep on a LocalCluster
# --------------------------------------------------------------------------------------------

def test_local_sweep_equals_serial_runs(reference, local_sweep):
    # `reference` first: it compiles the kernels into the cache that the workers then load
    d, res = local_sweep
    assert [r["status"] for r in res.rows] == ["completed"] * 4
    # the workers' one-thread environment stays out of this process (numba here would refuse
    # its own thread count once NUMBA_NUM_THREADS changed)
    before, after = res.environ_before_after
    assert after == before
    assert sorted(res.ran) == sorted(r.name for r in res.plan.runs)
    dirs = sorted(p.name for p in d.iterdir() if p.is_dir() and p.name != "figures")
    assert dirs == sorted(["dt_ms=0.1,seed=0", "dt_ms=0.1,seed=1", "dt_ms=0.05,seed=0",
                           "dt_ms=0.05,seed=1"])
    for run in res.plan.runs:
        _same_run(d / run.name, reference[(run.grid["params.dt_ms"], run.seed)])
    spec = json.loads((d / SWEEP_JSON).read_text())
    assert spec["grid"] == {"params.dt_ms": [0.1, 0.05]} and spec["seeds"] == [0, 1]
    assert all(r["command"].startswith("biolearn run ") for r in spec["runs"])
    assert {k: spec[k] for k in ("git_commit", "git_dirty")} == process_git_info()
    assert spec["git_commit"] == git_info()["git_commit"]


def test_sweep_csv_and_summary(local_sweep):
    d, res = local_sweep
    rows = _read_csv(d / SWEEP_CSV)
    assert len(rows) == 4
    per_run = {}
    for r in rows:
        res_json = json.loads((d / r["run"] / RESULTS).read_text())
        assert r["status"] == "completed" and r["error"] == ""
        assert float(r["params.dt_ms"]) == res_json["config"]["params"]["dt_ms"]
        assert int(r["seed"]) == res_json["seed"]
        assert float(r["wall_time_s"]) == res_json["wall_time_s"]
        m = res_json["metrics"]
        assert int(r["spikes.alif"]) == m["spikes.alif"]
        assert float(r["rate_hz.izh"]) == m["rate_hz.izh"]
        assert "files" not in r  # a list: not a scalar metric
        per_run[r["run"]] = res_json
    summary = _read_csv(d / SUMMARY_CSV)
    metrics = ["wall_time_s", "spikes.alif", "rate_hz.izh", "w_mean.inp_alif"]
    for dt in (0.1, 0.05):
        runs = [v for v in per_run.values() if v["config"]["params"]["dt_ms"] == dt]
        assert len(runs) == 2
        for m in metrics:
            x = np.array([v["wall_time_s"] if m == "wall_time_s" else v["metrics"][m]
                          for v in runs], float)
            row = [s for s in summary if float(s["params.dt_ms"]) == dt and s["metric"] == m]
            assert len(row) == 1, (dt, m)
            s = row[0]
            assert int(s["n"]) == 2
            assert float(s["mean"]) == pytest.approx(x.mean(), rel=1e-12, abs=1e-12)
            sd = x.std(ddof=1)
            assert float(s["sd"]) == pytest.approx(sd, rel=1e-12, abs=1e-12)
            ci = stats.t.ppf(0.975, 1) * sd / math.sqrt(2)
            assert float(s["ci95_half_width"]) == pytest.approx(ci, rel=1e-12, abs=1e-12)
    assert (d / "figures" / "spikes.alif_vs_dt_ms.png").stat().st_size > 0


def test_rerun_runs_nothing_and_resumes_what_is_missing(local_sweep, reference, cluster,
                                                       tmp_path, monkeypatch):
    src, _ = local_sweep
    d = tmp_path / "copy"
    shutil.copytree(src, d)
    again = run_sweep(CONFIG, SETS, _grid(), SEEDS, out=d, scheduler="tcp://127.0.0.1:1",
                      quiet=True)  # nothing to run: no scheduler needed
    assert again.ran == [] and len(again.skipped) == 4
    with pytest.raises(BiolearnError, match="not the sweep"):
        run_sweep(CONFIG, SETS, {"params.dt_ms": [0.1]}, SEEDS, out=d, quiet=True)
    # --resume without --out: the newest sweep of this config under sweeps/<name>/
    home = tmp_path / "home"
    for stamp in ("20250101-120000", "20250101-120000-2", "20250101-120000-10"):
        shutil.copytree(src, home / "sweeps" / "custom_neuron" / stamp)
    monkeypatch.chdir(home)
    newest = run_sweep(CONFIG, SETS, _grid(), SEEDS, resume=True, quiet=True,
                       scheduler="tcp://127.0.0.1:1")
    assert newest.dir.name == "20250101-120000-10" and newest.ran == []
    monkeypatch.chdir(tmp_path)
    # one run lost its results (killed while writing them), one was cut short: a partial
    # directory without a checkpoint (custom_neuron writes none)
    (d / "dt_ms=0.1,seed=1" / RESULTS).unlink()
    partial = d / "dt_ms=0.05,seed=0"
    (partial / RESULTS).unlink()
    (partial / "spikes.h5").write_bytes(b"half a file")
    res = run_sweep(CONFIG, SETS, _grid(), SEEDS, out=d, scheduler=cluster, quiet=True)
    assert sorted(res.ran) == ["dt_ms=0.05,seed=0", "dt_ms=0.1,seed=1"]
    assert sorted(res.skipped) == ["dt_ms=0.05,seed=1", "dt_ms=0.1,seed=0"]
    assert [r["status"] for r in res.rows] == ["completed"] * 4
    for run in res.plan.runs:
        _same_run(d / run.name, reference[(run.grid["params.dt_ms"], run.seed)])
    assert len(_read_csv(d / SWEEP_CSV)) == 4


def test_failing_runs_are_reported_and_the_others_complete(cluster, tmp_path, capsys):
    from biolearn.cli import cli

    d = tmp_path / "fail"
    code = cli.main(["sweep", str(CONFIG), "--set", "params.duration_ms=100", "--set", SETS[1],
                     "--grid", "params.record=[[alif], [nope]]",
                     "--grid", "params.dt_ms=[0.1, 50.0]",
                     "--scheduler", cluster, "--out", str(d), "--quiet"], standalone_mode=False)
    assert code == 1
    err = capsys.readouterr().err
    rows = {r["run"]: r for r in _read_csv(d / SWEEP_CSV)}
    assert set(rows) == {"record=alif,dt_ms=0.1,seed=0", "record=alif,dt_ms=50.0,seed=0",
                         "record=nope,dt_ms=0.1,seed=0", "record=nope,dt_ms=50.0,seed=0"}
    ok = rows["record=alif,dt_ms=0.1,seed=0"]
    assert ok["status"] == "completed" and ok["error"] == "" and int(ok["spikes.alif"]) >= 0
    # a value the config rejects: never started, the config's error line
    bad_cfg = rows["record=alif,dt_ms=50.0,seed=0"]
    assert bad_cfg["status"] == "failed"
    assert bad_cfg["error"].startswith("error: 'params.dt_ms' = 50.0 is out of range")
    assert not (d / "record=alif,dt_ms=50.0,seed=0").exists()
    # a value the recipe rejects while running: results.json says failed, the line says why
    bad_run = rows["record=nope,dt_ms=0.1,seed=0"]
    assert bad_run["status"] == "failed"
    assert "unknown population 'nope'" in bad_run["error"] and "\n" not in bad_run["error"]
    saved = json.loads((d / "record=nope,dt_ms=0.1,seed=0" / RESULTS).read_text())
    assert saved["status"] == "failed"
    assert "failed: record=nope,dt_ms=0.1,seed=0: error: unknown population 'nope'" in err
    summary = _read_csv(d / SUMMARY_CSV)
    n = {(s["params.record"], s["params.dt_ms"]): int(s["n"]) for s in summary
         if s["metric"] == "spikes.alif"}
    assert n == {("[alif]", "0.1"): 1, ("[alif]", "50.0"): 0, ("[nope]", "0.1"): 0,
                 ("[nope]", "50.0"): 0}


# --------------------------------------------------------------------------------------------
# stopped by a signal
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("sig, code, group", [(signal.SIGINT, 130, True),
                                               (signal.SIGINT, 130, False),
                                               (signal.SIGTERM, 143, False)])
def test_a_signalled_sweep_keeps_its_tables_and_says_how_to_continue(tmp_path, sig, code,
                                                                      group):
    """Ctrl-C in a terminal (SIGINT to the sweep and its workers, the process group), SIGINT or
    SIGTERM to the sweep process alone: the finished run is in sweep.csv, the one still running
    stops as after Ctrl-C and keeps its partial results.json, the exit code is the shell's, the
    worker processes go, and no traceback reaches the terminal."""
    import psutil

    d = tmp_path / "sweep"
    args = ["sweep", str(CONFIG), *sum((["--set", s] for s in SETS[1:]), []),
            "--grid", "params.duration_ms=[200, 1.0e+7]", "--workers", "2", "--out", str(d),
            "--quiet"]
    # Ctrl-C handled as in a terminal, even when this test process was started ignoring it
    start = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
             "from biolearn.cli import main; sys.exit(main(sys.argv[1:]))")
    p = subprocess.Popen([sys.executable, "-c", start, *args], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, cwd=tmp_path, text=True,
                         start_new_session=True)
    short, long_ = d / "duration_ms=200,seed=0", d / "duration_ms=10000000.0,seed=0"
    try:
        t0 = time.monotonic()
        while not (_ended(short) and (long_ / "config.resolved.yaml").exists()):
            assert p.poll() is None, p.communicate()
            assert time.monotonic() - t0 < 120, sorted(x.name for x in d.glob("*"))
            time.sleep(0.2)
        workers = psutil.Process(p.pid).children(recursive=True)
        assert workers
        if group:
            os.killpg(p.pid, sig)
        else:
            p.send_signal(sig)
        out, err = p.communicate(timeout=120)
        code_seen = p.returncode
        psutil.wait_procs(workers, timeout=30)
        left = [w for w in workers if w.is_running() and w.status() != psutil.STATUS_ZOMBIE]
    finally:
        _kill_group(p)  # the sweep and its workers, whatever happened
        p.wait()
    assert code_seen == code, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    how = "Ctrl-C" if sig == signal.SIGINT else "SIGTERM"
    assert f"interrupted by {how}: finished runs are kept in {d}" in err
    assert f"--out {d}" in err.split("continue with:")[1]
    rows = {r["run"]: r for r in _read_csv(d / SWEEP_CSV)}
    assert rows[short.name]["status"] == "completed"
    assert rows[long_.name]["status"] == "interrupted"
    partial = json.loads((long_ / RESULTS).read_text())
    assert partial["status"] == "interrupted"
    assert partial["interrupted_by"] == ("SIGINT" if sig == signal.SIGINT else "SIGTERM")
    assert 0 < partial["metrics"]["simulated_ms"] < 1.0e7
    summary = _read_csv(d / SUMMARY_CSV)
    assert {s["n"] for s in summary if s["params.duration_ms"] == "200"} == {"1"}
    assert not left  # the workers went with the sweep


def test_a_signalled_sweep_stops_its_runs_on_a_scheduler_of_your_own(tmp_path, cluster):
    """SIGTERM to a sweep on an external scheduler: its running run stops (Dask cannot cancel a
    running task; biolearn asks it to stop) and keeps its partial results.json, the worker is
    free again, and a later sweep on the same worker runs to completion."""
    from distributed import Client

    d = tmp_path / "sweep"
    args = ["sweep", str(CONFIG), *sum((["--set", s] for s in SETS[1:]), []),
            "--set", "params.duration_ms=1.0e+7", "--scheduler", cluster, "--out", str(d),
            "--quiet"]
    p = subprocess.Popen([sys.executable, "-m", "biolearn.cli", *args], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, cwd=tmp_path, text=True,
                         start_new_session=True)
    run = d / "seed=0"
    try:
        t0 = time.monotonic()
        while not (run / "config.resolved.yaml").exists():
            assert p.poll() is None, p.communicate()
            assert time.monotonic() - t0 < 120, sorted(x.name for x in d.glob("*"))
            time.sleep(0.2)
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=120)
    finally:
        _kill_group(p)
        p.wait()
    assert p.returncode == 143, err
    partial = json.loads((run / RESULTS).read_text())
    assert partial["status"] == "interrupted" and partial["interrupted_by"] == "SIGTERM"
    assert 0 < partial["metrics"]["simulated_ms"] < 1.0e7
    assert _read_csv(d / SWEEP_CSV)[0]["status"] == "interrupted"
    with Client(cluster, timeout="20s") as client:
        t0 = time.monotonic()
        while any(client.processing().values()):  # the stopped run's task ends
            assert time.monotonic() - t0 < 60, client.processing()
            time.sleep(0.2)
    again = run_sweep(CONFIG, SETS, None, [0], out=tmp_path / "again", scheduler=cluster,
                      quiet=True)
    assert [r["status"] for r in again.rows] == ["completed"]


# --------------------------------------------------------------------------------------------
# a real scheduler; one worker is killed mid-sweep
# --------------------------------------------------------------------------------------------

def _kill_group(p: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    try:
        os.killpg(p.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def test_scheduler_sweep_survives_a_lost_worker(tmp_path, reference):
    env = {**os.environ,
           # the run lock of a killed worker is released after 3 s instead of 30 s
           "DASK_DISTRIBUTED__SCHEDULER__LOCKS__LEASE_TIMEOUT": "3s",
           "DASK_DISTRIBUTED__SCHEDULER__LOCKS__LEASE_VALIDATION_INTERVAL": "1s"}
    sfile = tmp_path / "scheduler.json"
    procs: list[subprocess.Popen] = []
    logs = []

    def start(*args: str) -> subprocess.Popen:
        log = open(tmp_path / f"dask{len(procs)}.log", "wb")
        logs.append(log)
        p = subprocess.Popen([sys.executable, "-m", "dask", *args], env=env, stdout=log,
                             stderr=subprocess.STDOUT, start_new_session=True, cwd=tmp_path)
        procs.append(p)
        return p

    try:
        start("scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
              "--scheduler-file", str(sfile))
        t0 = time.monotonic()
        while not sfile.exists():
            assert time.monotonic() - t0 < 60, "the scheduler did not start"
            assert procs[0].poll() is None, (tmp_path / "dask0.log").read_text()
            time.sleep(0.2)
        address = json.loads(sfile.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        workers = [start("worker", "--scheduler-file", str(sfile), "--nthreads", "1",
                         "--host", "127.0.0.1", "--no-dashboard", "--memory-limit", "0",
                         "--local-directory", str(tmp_path / f"w{i}")) for i in range(2)]
        import psutil
        from distributed import Client

        mon = Client(address, timeout="30s")
        try:
            mon.wait_for_workers(2, timeout=60)
            pids = mon.run(os.getpid)  # worker address -> pid of the worker process
            d = tmp_path / "sweep"
            box: dict = {}

            def go() -> None:
                try:
                    box["res"] = run_sweep(CONFIG, SETS, _grid(), SEEDS, out=d,
                                           scheduler=address, quiet=True)
                except BaseException as e:  # pragma: no cover - reported below
                    box["error"] = e

            th = threading.Thread(target=go, daemon=True)
            th.start()
            t0 = time.monotonic()
            victim = None
            while victim is None:  # a worker in the middle of a run
                assert time.monotonic() - t0 < 90 and th.is_alive(), box
                for addr, keys in mon.processing().items():
                    for key in keys:
                        # keys are "biolearn-run-biolearn-sweep-<token>-<run name>"
                        name = str(key).split("-", 5)[-1]
                        run = d / name
                        if (run / "config.resolved.yaml").exists() and not _ended(run):
                            victim = (addr, name)
                time.sleep(0.05)
            addr, name = victim
            owner = [w for w in workers if pids[addr] in
                     [c.pid for c in psutil.Process(w.pid).children(recursive=True)]]
            assert len(owner) == 1
            _kill_group(owner[0])  # nanny and worker, mid-run
            survivor = [w for w in workers if w is not owner[0]][0]
            th.join(timeout=180)
            assert not th.is_alive(), "the sweep did not finish"
            assert "error" not in box, box.get("error")
        finally:
            mon.close()
        res = box["res"]
        assert [r["status"] for r in res.rows] == ["completed"] * 4
        alive = {c.pid for c in psutil.Process(survivor.pid).children(recursive=True)}
        assert int(res.outcomes[name]["host"].rsplit(":", 1)[1]) in alive
        assert res.outcomes[name]["action"] in ("started", "resumed")
        for run in res.plan.runs:
            _same_run(d / run.name, reference[(run.grid["params.dt_ms"], run.seed)])
        assert len(_read_csv(d / SWEEP_CSV)) == 4
    finally:
        for p in reversed(procs):
            _kill_group(p, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                _kill_group(p)
                p.wait(timeout=15)
        for log in logs:
            log.close()


# --------------------------------------------------------------------------------------------
# benchmark (prints ratios; not an assertion)
# --------------------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.skipif(_mnist_root() is None, reason="full MNIST copy not found (set BIOLEARN_DATA)")
def test_sweep_resumes_a_run_from_its_checkpoint(tmp_path):
    smoke = ROOT / "configs" / "stdp_mnist_smoke.yaml"
    sets = ["data.n_train=400", "data.n_test=100", "params.output.checkpoint_every=200"]
    d = tmp_path / "s"
    first = run_sweep(smoke, sets, {}, [0], out=d, workers=1, quiet=True,
                      data_root=_mnist_root())
    assert first.outcomes["seed=0"]["action"] == "started"
    before = json.loads((d / "seed=0" / RESULTS).read_text())
    weights = _datasets(d / "seed=0" / "weights.h5")
    (d / "seed=0" / RESULTS).unlink()  # as if stopped after its last checkpoint
    again = run_sweep(smoke, sets, {}, [0], out=d, workers=1, quiet=True,
                      data_root=_mnist_root())
    assert again.outcomes["seed=0"]["action"] == "resumed"
    after = json.loads((d / "seed=0" / RESULTS).read_text())
    assert after["status"] == "completed"
    assert after["metrics"]["test_accuracy"] == before["metrics"]["test_accuracy"]
    for k, v in _datasets(d / "seed=0" / "weights.h5").items():
        np.testing.assert_array_equal(v, weights[k])


def test_a_stopped_local_cluster_gives_every_dask_logger_its_level_back():
    """Stopping quiets distributed's loggers, also those made while the sweep ran; afterwards
    all of them have their own levels again (a notebook's logging is not left muted)."""
    import logging

    import distributed  # noqa: F401  (its import sets its loggers' levels)

    from biolearn.sweep import dask_client

    base = logging.getLogger("distributed")
    before = base.level
    late = "distributed.biolearn_test_late_logger"
    assert late not in logging.root.manager.loggerDict
    with pytest.raises(KeyboardInterrupt), dask_client(None, workers=1, threads_per_run=1):
        logging.getLogger(late)  # made while the sweep runs, at NOTSET
        raise KeyboardInterrupt
    assert logging.getLogger(late).level == logging.NOTSET
    assert base.level == before
