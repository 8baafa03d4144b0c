"""What a run does when things go wrong: run directories that collide or already hold files,
divergence, signals, broken resume inputs, full disks, a data folder that is not there, and the
spike file of a run stopped in its test phase."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from mnist_data import mnist_root as _mnist_root
from mnist_data import needs_mnist

from biolearn import registry
from biolearn.cli import cli
from biolearn.config import param
from biolearn.errors import BiolearnError

ROOT = Path(__file__).resolve().parent.parent
SMOKE = ROOT / "configs" / "stdp_mnist_smoke.yaml"


# a few seconds of sym-STDP: 20 hidden neurons, a handful of images
TINY = ["--set", "params.n_exc=20", "--set", "params.output.figures=false",
        "--set", "params.output.test_workers=1", "--set", "params.output.spikes_test_images=5"]


# ---- a toy recipe: steps with a checkpoint, optional NaN metrics, optional files ---------------

@dataclass
class ToyParams:
    steps: int = param(3, "steps to take", min=1)
    stop_at: int = param(0, "raise KeyboardInterrupt at this step on a fresh start (0 = never)",
                         min=0)
    nan_metric: bool = param(False, "return NaN and infinite metrics")
    write_files: bool = param(False, "stream spikes.h5, then write weights.h5 and a figure")
    load_data: bool = param(False, "load data.dataset from the data root")
    test_workers: int = param(1, "workers (results do not depend on it)", min=1)


def _toy_run(cfg, ctx) -> dict:
    p = cfg.params
    start = int(ctx.checkpoint_path.read_text()) if ctx.resume and \
        ctx.checkpoint_path.exists() else 0
    for step in range(start, p.steps):
        if p.stop_at and step == p.stop_at and not ctx.resume:
            raise KeyboardInterrupt
        ctx.metrics["steps_done"] = step + 1
        ctx.checkpoint_path.write_text(str(step + 1))
    out = {"steps_done": p.steps, "resumed_from": start}
    if p.load_data:
        from biolearn.data import load_mnist

        x, _, _, _ = load_mnist(root=ctx.data_root, dataset=cfg.data.dataset, download=False)
        out["n_images"] = len(x)
    if p.write_files:
        import matplotlib.pyplot as plt

        from biolearn.io.sonata import SpikeWriter
        from biolearn.io.store import save_weights

        with SpikeWriter(ctx.path("spikes.h5"), {"a": 100}, chunk=256) as w:
            for k in range(200):
                w.write("a", np.arange(50) * 0.1 + k * 10.0, np.arange(50) % 100)
        save_weights(ctx.path("weights.h5"), {"w": np.ones((50, 50))})
        ctx.save_figure(plt.figure(), "fig")
    if p.nan_metric:
        out.update(loss=float("nan"), curve=[1.0, float("inf")])
    return out


@pytest.fixture(autouse=True)
def toy_recipe():
    registry.recipes()
    registry._RECIPES["rel_toy"] = registry.Recipe("rel_toy", ToyParams, _toy_run, "toy")
    yield
    registry._RECIPES.pop("rel_toy", None)


@pytest.fixture
def runner(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BIOLEARN_DEBUG", raising=False)
    return CliRunner()


def invoke(runner, args):
    return runner.invoke(cli, [str(a) for a in args], catch_exceptions=False)


def one_error(res) -> str:
    """A clean failure: exit != 0, exactly one `error:` line, no traceback."""
    assert res.exit_code not in (0, None), res.output
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, res.stderr
    assert "Traceback" not in res.output and "Traceback" not in res.stderr
    return lines[0]


TOY = "model: rel_toy\nname: toy\nseed: 1\ndata:\n  dataset: none\nparams:\n  steps: 3\n"


def toy_cfg(text: str = TOY, name: str = "t.yaml") -> Path:
    p = Path(name)
    p.write_text(text)
    return p


def results(d: str | Path) -> dict:
    return json.loads((Path(d) / "results.json").read_text())


def no_tmp_files(d: Path) -> bool:
    return not [p for p in Path(d).rglob("*") if p.name.endswith(".tmp")]


# ---- 1. run directories ---------------------------------------------------------------------

def test_default_run_dirs_are_unique_for_runs_started_together(tmp_path, monkeypatch):
    """Eight runs of one config in the same second: eight directories, each created here."""
    import datetime as dt

    from biolearn import runner as runner_mod

    class Frozen(dt.datetime):
        @classmethod
        def now(cls, tz=None):
            return dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=tz)

    monkeypatch.setattr(runner_mod._dt, "datetime", Frozen)
    got, barrier = [], threading.Barrier(8)

    def start():
        barrier.wait()
        got.append(runner_mod.run_dir_for("cfg", None, False, base=tmp_path))

    threads = [threading.Thread(target=start) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(got)) == 8 and all(p.is_dir() for p in got)
    assert sorted(p.name for p in got) == sorted(
        ["20300102-030405"] + [f"20300102-030405-{i}" for i in range(1, 8)])
    # --resume without --out takes the newest: suffix 7 (numerically, not as text)
    for p in got:
        (p / "config.resolved.yaml").write_text("x")
    (tmp_path / "cfg" / "20300102-030405-10").mkdir()
    (tmp_path / "cfg" / "20300102-030405-10" / "config.resolved.yaml").write_text("x")
    assert runner_mod.run_dir_for("cfg", None, True, base=tmp_path).name == "20300102-030405-10"


# ---- 2. never overwrite silently ------------------------------------------------------------

def test_existing_run_dir_is_refused_then_overwrite_clears_stale_files(runner):
    path = toy_cfg()
    assert invoke(runner, ["run", path, "--out", "o", "-q"]).exit_code == 0
    before = Path("o/results.json").read_text()
    line = one_error(invoke(runner, ["run", path, "--out", "o", "-q"]))
    assert "not empty" in line and "o" in line and "--resume" in line and "--overwrite" in line
    assert Path("o/results.json").read_text() == before  # untouched
    # another model's leftovers: all gone after --overwrite
    for stale in ("weights.h5", "spikes.h5", "raster.png"):
        Path("o", stale).write_text("stale")
    Path("o/sub").mkdir()
    res = invoke(runner, ["run", path, "--out", "o", "-q", "--overwrite",
                          "--set", "params.steps=2"])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in Path("o").iterdir()) == [
        "checkpoint.npz", "config.resolved.yaml", "results.json"]
    assert results("o")["metrics"]["steps_done"] == 2


def test_overwrite_only_clears_run_directories_and_excludes_resume(runner):
    path = toy_cfg()
    Path("mine").mkdir()
    Path("mine/notes.txt").write_text("keep me")
    line = one_error(invoke(runner, ["run", path, "--out", "mine", "--overwrite"]))
    assert "--overwrite clears only run directories" in line and "notes.txt" in line
    assert Path("mine/notes.txt").read_text() == "keep me"
    line = one_error(invoke(runner, ["run", path, "--out", "mine", "--overwrite", "--resume"]))
    assert "--resume and --overwrite" in line


# ---- 3. divergence and silent networks ------------------------------------------------------

def _tiny_sim():
    from biolearn.engine import LIF, Network, SpikeSource, connect
    from biolearn.rules.stdp import SymmetricSTDP

    net = Network(dt=0.5)
    net.add(SpikeSource("pre", 3, [0, 1], [1.0, 2.0]))
    net.add(LIF("post", 2, synapse="current", t_ref=1.0))
    net.connect(connect.dense("syn", "pre", "post", np.full((3, 2), 5.0), target="v",
                              rule=SymmetricSTDP(eta=0.01, tau=20.0, inc=0.1, w_max=10.0)))
    sim = net.compile()
    sim.run(steps=20)
    return sim


@pytest.mark.parametrize("array, poison, name", [
    ("syn_w", (4,), "the weights of projection 'syn'"),
    ("S", (0, 4), "state 'v' of population 'post'"),  # slot 0 is v; neurons 3, 4 are 'post'
    ("trp", (0, 1), "pre trace 'apre' of projection 'syn'"),
    ("tro", (0, 0), "post trace 'apost' of projection 'syn'"),
])
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_check_finite_names_the_array_and_the_step(array, poison, name, value):
    from biolearn.runner import Diverged, check_finite

    sim = _tiny_sim()
    check_finite(sim, "at image 3")  # a healthy state passes
    getattr(sim, array)[poison] = value
    with pytest.raises(Diverged) as e:
        check_finite(sim, "at image 3")
    assert e.value.array == name
    msg = str(e.value)
    assert name in msg and "at image 3" in msg and "simulation step 20" in msg
    assert "\n" not in msg


@needs_mnist
def test_sym_stdp_blow_up_is_diverged_not_completed(runner):
    """The user's case: huge class learning rate and bounds gave NaN weights and 'completed'
    (the class input sum factor·N_exc·w_max_class overflows to infinity)."""
    res = invoke(runner, ["run", SMOKE, "--out", "o", "--data-root", _mnist_root(), *TINY,
                          "--set", "data.n_train=20", "--set", "data.n_test=10",
                          "--set", "params.output.checkpoint_every=10",
                          "--set", "params.plasticity.eta_class=1e300",
                          "--set", "params.plasticity.norm_class_factor=1.0",
                          "--set", "params.plasticity.w_max_class=1e308"])
    line = one_error(res)
    assert res.exit_code == 2
    assert "diverged" in line and "'exc_class'" in line and "at training image 10" in line
    data = results("o")
    assert data["status"] == "diverged" and "exc_class" in data["error"]
    assert not Path("o/weights.h5").exists()


@needs_mnist
def test_divergence_keeps_the_last_finite_checkpoint(tmp_path, monkeypatch):
    from biolearn.config import load_config
    from biolearn.protocols import image_stdp
    from biolearn.runner import Diverged, execute

    real, seen = image_stdp.Presenter.present, {"n": 0}

    def poisoned(self, image, before=None):
        if before is not None:  # a training image
            seen["n"] += 1
            if seen["n"] == 25:
                self.sim.syn_w[0] = np.nan  # input_exc, after the checkpoint at image 20
        return real(self, image, before)

    monkeypatch.setattr(image_stdp.Presenter, "present", poisoned)
    cfg = load_config(SMOKE, [f"data.root={_mnist_root()}", "data.n_train=40", "data.n_test=10",
                              "params.n_exc=20", "params.output.checkpoint_every=20",
                              "params.output.figures=false", "params.output.test_workers=1"])
    with pytest.raises(Diverged, match="input_exc.*at training image 40"):
        execute(cfg, out_dir=tmp_path, quiet=True)
    assert results(tmp_path)["status"] == "diverged"
    with np.load(tmp_path / "checkpoint.npz") as z:
        assert np.isfinite(z["syn_w"]).all()
        assert json.loads(str(z["_extra"]))["pos"]["index"] == 20


@needs_mnist
def test_silent_network_is_flagged(runner):
    res = invoke(runner, ["run", SMOKE, "--out", "o", "--data-root", _mnist_root(), *TINY,
                          "--set", "data.n_train=5", "--set", "data.n_test=20",
                          "--set", "params.presentation.intensity0=0",
                          "--set", "params.presentation.max_intensity=0"])
    assert res.exit_code == 0, res.output
    warnings = results("o")["warnings"]
    assert any("fired no spike" in w for w in warnings)
    assert any("chance level" in w for w in warnings)
    assert "warning: the hidden layer 'exc' fired no spike" in res.stderr


def test_nonfinite_metrics_are_kept_as_strings_and_flagged(runner):
    res = invoke(runner, ["run", toy_cfg(), "--out", "o", "-q",
                          "--set", "params.nan_metric=true"])
    assert res.exit_code == 0, res.output
    data = results("o")
    assert data["metrics"]["loss"] == "nan" and data["metrics"]["curve"] == [1.0, "inf"]
    assert any("'loss' is nan" in w for w in data["warnings"])
    assert any("'curve[1]' is inf" in w for w in data["warnings"])
    assert "warning: metric 'loss' is nan" in res.stderr


# ---- 4. signals -----------------------------------------------------------------------------

_TOY_SCRIPT = """
import os, signal, sys, time
# the toy run gets the default dispositions even when the tests run under nohup or as a
# background job (a run keeps a signal its parent ignores, by design)
signal.signal(signal.SIGHUP, signal.SIG_DFL)
signal.signal(signal.SIGINT, signal.default_int_handler)
from dataclasses import dataclass
from biolearn import registry
from biolearn.config import param

@dataclass
class P:
    steps: int = param(3000, "steps", min=1)

def run(cfg, ctx):
    start = int(ctx.checkpoint_path.read_text()) if ctx.resume and \\
        ctx.checkpoint_path.exists() else 0
    pause = float(os.environ.get("TOY_STEP_S", "0.01"))  # 30 s unless a signal stops it
    try:
        for i in range(start, cfg.params.steps):
            ctx.metrics["steps_done"] = i + 1
            tmp = ctx.checkpoint_path.with_suffix(".part")  # atomic, as a recipe's must be
            tmp.write_text(str(i + 1))
            os.replace(tmp, ctx.checkpoint_path)
            time.sleep(pause)
    finally:
        time.sleep(float(sys.argv[1]))  # a slow clean-up (closing files, stopping workers)
    return {"steps_done": cfg.params.steps, "resumed_from": start}

import biolearn.io.store as store
real = store.write_json_atomic
def slow(path, obj):
    time.sleep(float(sys.argv[2]))  # a slow results.json write
    return real(path, obj)
store.write_json_atomic = slow
registry.recipes()
registry._RECIPES["sleepy"] = registry.Recipe("sleepy", P, run, "sleeps")
from biolearn.cli import main
main(sys.argv[3:])
"""


def _start_toy(tmp_path: Path, cleanup_s: float, save_s: float, *args: str, step_s: float = 0.01):
    script = tmp_path / "toy.py"
    script.write_text(textwrap.dedent(_TOY_SCRIPT))
    cfg = tmp_path / "sleepy.yaml"
    cfg.write_text("model: sleepy\nname: sleepy\nseed: 0\ndata:\n  dataset: none\n")
    env = dict(os.environ, TOY_STEP_S=str(step_s))
    return subprocess.Popen([sys.executable, str(script), str(cleanup_s), str(save_s), "run",
                             str(cfg), *args], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env=env), cfg


def _wait_for(path: Path, proc, timeout: float = 60.0) -> None:
    t0 = time.monotonic()
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() - t0 < timeout, f"{path} never appeared"
        time.sleep(0.02)


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_sigterm_and_sighup_stop_like_ctrl_c(tmp_path, sig, code):
    out = tmp_path / "o"
    proc, cfg = _start_toy(tmp_path, 0.0, 0.0, "--out", str(out), "-q")
    _wait_for(out / "checkpoint.npz", proc)
    time.sleep(0.1)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    data = results(out)
    assert data["status"] == "interrupted" and data["interrupted_by"] == sig.name
    assert 0 < data["metrics"]["steps_done"] < 3000
    assert f"resume with: biolearn run {cfg} --out {out} --resume" in err
    assert "Traceback" not in err
    # the printed command continues the run (without the pauses, to be quick)
    proc, _ = _start_toy(tmp_path, 0.0, 0.0, "--out", str(out), "--resume", "-q", step_s=0.0)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    data = results(out)
    assert data["status"] == "completed" and data["metrics"]["resumed_from"] > 0


def test_a_killed_run_is_left_running_and_its_resume_records_it_as_killed(tmp_path):
    """SIGKILL (or the out-of-memory killer) leaves no chance to write a status: results.json
    says "running" and names the process; --resume continues from the last checkpoint."""
    import platform

    out = tmp_path / "o"
    proc, _ = _start_toy(tmp_path, 0.0, 0.0, "--out", str(out), "-q")
    _wait_for(out / "checkpoint.npz", proc)
    data = results(out)
    assert data["status"] == "running"
    assert data["process"] == {"pid": proc.pid, "host": platform.node()}
    assert data["wall_time_s"] is None and data["provenance"]["end_utc"] is None
    proc.kill()
    proc.communicate(timeout=60)
    assert results(out)["status"] == "running"
    proc, _ = _start_toy(tmp_path, 0.0, 0.0, "--out", str(out), "--resume", "-q", step_s=0.0)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    data = results(out)
    assert data["status"] == "completed" and data["metrics"]["resumed_from"] > 0
    assert "process" not in data
    (part,) = data["provenance"]["resumed_from"]
    assert part["status"] == "killed" and part["end_utc"] is None  # when it ended is unknown


def _set_and_sleep(event) -> None:
    event.set()
    time.sleep(60)


def test_a_forked_child_does_not_keep_the_run_directory_locked(tmp_path):
    """Test workers are forked from a run: once the run lets its directory go, a worker still
    alive (e.g. after the run was killed) must not hold the lock."""
    import multiprocessing as mp

    from biolearn.runner import _holding_run_dir

    d = tmp_path / "r"
    d.mkdir()
    ctx = mp.get_context("fork")
    started = ctx.Event()
    with _holding_run_dir(d):
        child = ctx.Process(target=_set_and_sleep, args=(started,))
        child.start()
        assert started.wait(30)
    try:
        with _holding_run_dir(d):  # raises if the child kept the parent's lock
            pass
    finally:
        child.terminate()
        child.join()


def test_a_run_directory_in_use_is_refused_to_a_second_run(runner, tmp_path):
    """While a run executes, resuming or overwriting its directory from elsewhere is refused
    (before anything there is touched), naming the process that holds it."""
    out = tmp_path / "o"
    proc, _ = _start_toy(tmp_path, 0.0, 0.0, "--out", str(out), "-q")
    try:
        _wait_for(out / "checkpoint.npz", proc)
        before = sorted(p.name for p in out.iterdir())
        for how in ("--resume", "--overwrite"):
            line = one_error(invoke(runner, ["run", toy_cfg(), "--out", out, how, "-q"]))
            assert "another biolearn run is writing into this directory" in line
            assert f"process {proc.pid} on " in line and str(out) in line
            assert sorted(p.name for p in out.iterdir()) == before
            assert results(out)["status"] == "running"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    assert results(out)["status"] == "interrupted"


def test_a_signal_inside_an_hdf5_file_callback_is_raised_after_it(tmp_path):
    """An exception raised inside HDF5's file driver leaves the library inconsistent (the
    process can crash at exit): a signal landing in a FailSoftFile call completes the call and
    is raised in the run's own code after it."""
    from biolearn.io._h5 import FailSoftFile
    from biolearn.runner import SignalGuard, Signalled

    f = FailSoftFile(tmp_path / "x.h5", "w")
    real = f._fh

    class Interrupted:  # the OS file, with a SIGTERM arriving during the first write
        def __getattr__(self, name):  # noqa: ANN001, ANN204
            return getattr(real, name)

        def write(self, data):  # noqa: ANN001, ANN202
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(100_000):  # the handler runs here, inside the callback
                pass
            return real.write(data)

    f._fh = Interrupted()
    with SignalGuard() as guard:
        with pytest.raises(Signalled):
            assert f.write(b"abcdef") == 6  # completes: no exception inside the callback
            deadline = time.monotonic() + 20  # the run's own code: stopped here
            while time.monotonic() < deadline:
                time.sleep(0.005)
    assert guard.received == "SIGTERM"
    real.close()
    assert (tmp_path / "x.h5").read_bytes() == b"abcdef"


def test_a_signal_landing_in_a_finaliser_still_stops_the_run_quietly():
    """Python swallows an exception raised in a weakref callback; the guard delivers the signal
    again so that the run's own code raises it, and nothing reaches the unraisable hook."""
    import weakref

    from biolearn.runner import SignalGuard, Signalled

    class Obj:
        pass

    finished_callback, swallowed = [], []

    def callback():
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(100_000):  # the handler runs here, inside the callback
            pass
        finished_callback.append(True)

    saved = sys.unraisablehook
    sys.unraisablehook = swallowed.append  # what the guard passes on would land here
    try:
        with SignalGuard() as guard:
            with pytest.raises(Signalled):
                obj = Obj()
                weakref.finalize(obj, callback)
                del obj
                deadline = time.monotonic() + 20  # the run's own code: stopped here
                while time.monotonic() < deadline:
                    time.sleep(0.005)
        assert sys.unraisablehook == swallowed.append  # the guard put the hook back
    finally:
        sys.unraisablehook = saved
    assert guard.received == "SIGTERM"
    assert not finished_callback  # the signal did land inside the callback
    assert not swallowed


def test_a_signal_the_parent_ignores_stays_ignored():
    """Under ``nohup`` (SIGHUP ignored) or as a shell script's background job (Ctrl-C ignored) the
    run keeps ignoring that signal and gives it back ignored; the others it handles."""
    from biolearn.runner import SignalGuard, Signalled

    saved = {s: signal.getsignal(s) for s in (signal.SIGHUP, signal.SIGINT, signal.SIGTERM)}
    try:
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        with SignalGuard() as guard:
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGHUP)
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)  # nothing is raised
            assert guard.received is None
            with pytest.raises(Signalled):
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(5)
        assert guard.received == "SIGTERM"
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        for s, h in saved.items():
            signal.signal(s, h)


def test_double_ctrl_c_still_gives_the_resume_command(tmp_path):
    out = tmp_path / "o"
    proc, cfg = _start_toy(tmp_path, 0.4, 0.6, "--out", str(out), "-q")
    _wait_for(out / "checkpoint.npz", proc)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.2)  # in the recipe's clean-up
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)  # while results.json is written
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "run the command again" not in err and "Traceback" not in err
    assert f"resume with: biolearn run {cfg} --out {out} --resume" in err
    assert results(out)["status"] == "interrupted"


@needs_mnist
def test_sigterm_in_the_test_phase_stops_workers_quietly(tmp_path):
    """SIGTERM while forked workers run the test phase: exit 143, no tracebacks from the
    workers, none of them left, and spikes.h5 readable with what was written."""
    from biolearn.io.sonata import read_spikes

    out = tmp_path / "o"
    env = dict(os.environ, BIOLEARN_DATA=_mnist_root())
    proc = subprocess.Popen(
        [sys.executable, "-m", "biolearn.cli", "run", str(SMOKE), "--out", str(out),
         "--set", "data.n_train=10", "--set", "data.n_test=6000", "--set", "params.n_exc=20",
         "--set", "params.output.figures=false", "--set", "params.output.test_workers=2",
         "--set", "params.output.spikes_test_images=300"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        start_new_session=True)
    _wait_for(out / "spikes.h5", proc)
    time.sleep(1.0)  # the workers are presenting test images
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    for bad in ("Traceback", "BrokenPipeError", "KeyboardInterrupt", "Signalled"):
        assert bad not in err
    assert "--resume" in err
    with pytest.raises(ProcessLookupError):  # no worker left in the process group
        os.killpg(proc.pid, 0)
    assert results(out)["status"] == "interrupted"
    assert set(read_spikes(out / "spikes.h5")) == {"input", "exc", "inh", "class"}


# ---- 5. resume inputs -----------------------------------------------------------------------

def test_resume_of_a_missing_directory_is_an_error(runner):
    line = one_error(invoke(runner, ["run", toy_cfg(), "--out", "nowhere", "--resume"]))
    assert "no run to resume" in line and "nowhere" in line
    assert not Path("nowhere").exists()
    Path("empty").mkdir()
    line = one_error(invoke(runner, ["run", toy_cfg(), "--out", "empty", "--resume"]))
    assert "no config.resolved.yaml" in line


@pytest.mark.parametrize("text", ["params: [unclosed\n", "just some text\n", b"\xff\xfe\x00"])
def test_unreadable_saved_config_is_an_error(runner, text):
    path = toy_cfg(TOY.replace("steps: 3", "steps: 5\n  stop_at: 2"))
    assert invoke(runner, ["run", path, "--out", "o"]).exit_code == 130
    saved = Path("o/config.resolved.yaml")
    saved.write_bytes(text if isinstance(text, bytes) else text.encode())
    line = one_error(invoke(runner, ["run", path, "--out", "o", "--resume"]))
    assert "saved config of the run cannot be read" in line and "config.resolved.yaml" in line
    assert "--overwrite" in line
    assert results("o")["status"] == "interrupted"  # nothing ran


def test_resume_accepts_a_changed_worker_count_but_not_a_real_change(runner):
    path = toy_cfg(TOY.replace("steps: 3", "steps: 5\n  stop_at: 2"))
    assert invoke(runner, ["run", path, "--out", "o"]).exit_code == 130
    line = one_error(invoke(runner, ["run", path, "--out", "o", "--resume",
                                     "--set", "params.test_workers=4", "--set", "params.steps=6"]))
    assert "params.steps" in line and "test_workers" not in line
    res = invoke(runner, ["run", path, "--out", "o", "--resume", "-q",
                          "--set", "params.test_workers=4"])
    assert res.exit_code == 0, res.output
    data = results("o")
    assert data["status"] == "completed" and data["metrics"]["resumed_from"] == 2
    assert data["config"]["params"]["test_workers"] == 4


@pytest.mark.parametrize("damage", ["truncated", "garbage", "pickled", "empty"])
def test_damaged_checkpoint_is_one_clear_error(tmp_path, damage):
    from biolearn.protocols.checkpoint import load_checkpoint, save_checkpoint

    sim = _tiny_sim()
    ck = tmp_path / "checkpoint.npz"
    save_checkpoint(ck, sim, {"pos": {"phase": 0, "epoch": 0, "index": 7}})
    assert load_checkpoint(ck, _tiny_sim())["pos"]["index"] == 7
    if damage == "truncated":
        ck.write_bytes(ck.read_bytes()[:ck.stat().st_size // 2])
    elif damage == "garbage":
        ck.write_bytes(b"not a checkpoint at all\n" * 10)
    elif damage == "pickled":
        np.save(ck.open("wb"), np.array([{"a": 1}], dtype=object), allow_pickle=True)
    else:
        ck.write_bytes(b"")
    with pytest.raises(BiolearnError) as e:
        load_checkpoint(ck, _tiny_sim())
    msg = str(e.value)
    assert "checkpoint is unreadable" in msg and str(ck) in msg and "--overwrite" in msg
    assert "allow_pickle" not in msg and "\n" not in msg


# ---- 6. full disk / I/O errors --------------------------------------------------------------

class _FullDisk:
    """Stands in for an open file on a disk with ``budget`` bytes free: writes past it fail
    with ENOSPC (partly written first, as the kernel does)."""

    def __init__(self, fh, budget: int):
        self.fh, self.budget = fh, budget

    def write(self, data):
        view = memoryview(data)
        room = self.budget - self.fh.tell()
        if room >= len(view):
            return self.fh.write(view)
        if room > 0:
            self.fh.write(view[:room])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name):
        return getattr(self.fh, name)


def _disk_full(monkeypatch, budget: int, names: tuple[str, ...]) -> None:
    from biolearn.io import _h5

    real = _h5.FailSoftFile.__init__

    def init(self, path, mode):
        real(self, path, mode)
        if any(n in Path(path).name for n in names):
            self._fh = _FullDisk(self._fh, budget)

    monkeypatch.setattr(_h5.FailSoftFile, "__init__", init)


def test_disk_full_while_streaming_spikes_is_one_line(runner, monkeypatch):
    from biolearn.io.sonata import read_spikes

    _disk_full(monkeypatch, 20_000, ("spikes.h5",))
    res = invoke(runner, ["run", toy_cfg(), "--out", "o", "-q",
                          "--set", "params.write_files=true"])
    line = one_error(res)
    assert res.exit_code == 2
    assert "No space left on device" in line and "spikes.h5" in line
    assert "--out o --resume" in line
    data = results("o")
    assert data["status"] == "failed" and "No space left" in data["error"]
    if Path("o/spikes.h5").exists():  # kept only when it reads back cleanly
        read_spikes("o/spikes.h5")
    assert not Path("o/weights.h5").exists() and no_tmp_files(Path("o"))


def test_disk_full_leaves_no_partial_weights_figure_or_checkpoint(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    from biolearn.io.store import save_weights
    from biolearn.protocols.checkpoint import save_checkpoint
    from biolearn.runner import RunContext

    _disk_full(monkeypatch, 4_000, (".weights.h5.",))
    with pytest.raises(OSError) as e:
        save_weights(tmp_path / "weights.h5", {"w": np.random.default_rng(0).random((80, 80))})
    assert e.value.errno == errno.ENOSPC and e.value.filename == str(tmp_path / "weights.h5")
    assert not (tmp_path / "weights.h5").exists()

    sim = _tiny_sim()
    ck = tmp_path / "checkpoint.npz"
    save_checkpoint(ck, sim, {"pos": {"index": 1}})
    good = ck.read_bytes()

    def full(*a, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(np, "savez", full)
    with pytest.raises(OSError) as e:
        save_checkpoint(ck, sim, {"pos": {"index": 2}})
    assert e.value.errno == errno.ENOSPC and e.value.filename == str(ck)
    assert ck.read_bytes() == good  # the previous checkpoint is intact

    ctx = RunContext(out_dir=tmp_path, seed=0)
    fig = plt.figure()

    def half_png(fname, **kw):
        Path(fname).write_bytes(b"\x89PNG partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    fig.savefig = half_png
    with pytest.raises(OSError):
        ctx.save_figure(fig, "raster")
    assert not (tmp_path / "raster.png").exists()
    assert no_tmp_files(tmp_path)


def test_disk_full_for_results_json_is_one_line(runner, monkeypatch):
    import biolearn.io.store as store

    def full(path, obj):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(store, "write_json_atomic", full)
    line = one_error(invoke(runner, ["run", toy_cfg(), "--out", "o", "-q"]))
    assert "No space left on device" in line and "results.json" in line


_FSIZE_SCRIPT = """
import errno, resource, signal, sys
import numpy as np
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (300_000, 300_000))
from biolearn.io.sonata import SpikeWriter
from biolearn.io.store import save_weights
codes = []
try:
    with SpikeWriter(sys.argv[1] + "/spikes.h5", {"a": 1000}, chunk=4096) as w:
        for k in range(400):
            w.write("a", np.arange(1000) * 0.01 + k * 10.0, np.arange(1000))
            if k % 50 == 0:
                w.flush()
except OSError as e:
    codes.append(e.errno)
try:
    save_weights(sys.argv[1] + "/weights.h5", {"w": np.random.default_rng(0).random((300, 300))})
except OSError as e:
    codes.append(e.errno)
print(codes, flush=True)
"""


def test_real_write_failure_inside_hdf5_does_not_crash(tmp_path):
    """A file-size limit makes HDF5's own writes fail (EFBIG), as a full disk does: each writer
    raises one OSError; no HDF5 error cascade, no crash at exit; files valid or removed."""
    from biolearn.io.sonata import read_spikes

    script = tmp_path / "fsize.py"
    script.write_text(textwrap.dedent(_FSIZE_SCRIPT))
    p = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stderr  # a segmentation fault gives -11
    assert p.stdout.strip() == f"[{errno.EFBIG}, {errno.EFBIG}]"
    assert "Traceback" not in p.stderr and "Exception ignored" not in p.stderr
    assert "HDF5-DIAG" not in p.stderr
    if (tmp_path / "spikes.h5").exists():  # kept: a prefix of what was written
        t, ids = read_spikes(tmp_path / "spikes.h5")["a"]
        sent = (np.arange(1000) * 0.01 + np.arange(400)[:, None] * 10.0).ravel()
        assert 0 < t.size < sent.size
        np.testing.assert_array_equal(t, sent[:t.size])
        np.testing.assert_array_equal(ids, np.tile(np.arange(1000), 400)[:t.size])
    assert not (tmp_path / "weights.h5").exists() and no_tmp_files(tmp_path)


# ---- 7. data folder -------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["missing", "empty"])
def test_named_data_folder_that_is_missing_or_empty_is_an_error(runner, monkeypatch, tmp_path,
                                                                 kind):
    monkeypatch.setenv("BIOLEARN_DATA", str(tmp_path))  # would have been used silently
    folder = Path("data_here")
    if kind == "empty":
        folder.mkdir()
    cfg = toy_cfg(TOY.replace("dataset: none", "dataset: mnist"))
    line = one_error(invoke(runner, ["run", cfg, "--data-root", folder, "-q"]))
    assert f"the data folder '{folder}'" in line and ("does not exist" in line or "is empty"
                                                      in line)
    assert "--data-root" in line
    assert not Path("runs").exists()  # no run directory left behind
    line = one_error(invoke(runner, ["run", cfg, "-q", "--set", f"data.root={folder}"]))
    assert "given by data.root" in line


def test_provenance_records_the_data_files_and_their_sha256(runner, monkeypatch, tmp_path):
    from biolearn.data.idx import write_idx

    monkeypatch.setenv("BIOLEARN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("BIOLEARN_DATA", raising=False)
    rng = np.random.default_rng(0)
    folder = tmp_path / "data" / "fashion_mnist"
    folder.mkdir(parents=True)
    names = {"train-images-idx3-ubyte.gz": rng.integers(0, 256, (20, 28, 28), dtype=np.uint8),
             "train-labels-idx1-ubyte.gz": (np.arange(20) % 10).astype(np.uint8),
             "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (5, 28, 28), dtype=np.uint8),
             "t10k-labels-idx1-ubyte.gz": (np.arange(5) % 10).astype(np.uint8)}
    for name, arr in names.items():
        write_idx(folder / name, arr)
    cfg = toy_cfg(TOY.replace("dataset: none", "dataset: fashion_mnist")
                  + "  load_data: true\n")
    res = invoke(runner, ["run", cfg, "--out", "o", "-q", "--data-root", tmp_path / "data"])
    assert res.exit_code == 0, res.output
    prov = results("o")["provenance"]
    assert prov["data_root"] == str(tmp_path / "data")
    (used,) = prov["data"]
    assert used["dataset"] == "fashion_mnist" and used["folder"] == str(folder.resolve())
    for name in names:
        entry = used["files"][name]
        assert entry["path"] == str((folder / name).resolve())
        assert entry["sha256_file"] == hashlib.sha256((folder / name).read_bytes()).hexdigest()


@pytest.fixture
def moving_head(monkeypatch):
    """The checkout's commit as a dict the test changes; the per-process reading starts afresh."""
    import biolearn.io.store as store

    head = {"git_commit": "a" * 40, "git_dirty": False}
    monkeypatch.setattr(store, "git_info", lambda root=None: dict(head))
    store.process_git_info.cache_clear()
    yield head
    store.process_git_info.cache_clear()


def test_provenance_names_the_commit_whose_code_ran(runner, moving_head):
    """Runs outlive commits to their checkout (a sweep worker runs one after another):
    results.json names the commit whose code was loaded, not the one checked out at its end."""
    def run_then_commit(cfg, ctx):
        moving_head.update(git_commit="b" * 40, git_dirty=True)  # lands while it runs
        return _toy_run(cfg, ctx)

    registry._RECIPES["rel_toy"] = registry.Recipe("rel_toy", ToyParams, run_then_commit, "toy")
    for out in ("o1", "o2"):  # the second run starts after the commit, in the same process
        assert invoke(runner, ["run", toy_cfg(), "--out", out, "-q"]).exit_code == 0
        prov = results(out)["provenance"]
        assert prov["git_commit"] == "a" * 40 and prov["git_dirty"] is False


def test_a_resumed_run_keeps_the_provenance_of_its_earlier_parts(runner, moving_head):
    path = toy_cfg(TOY.replace("steps: 3", "steps: 5\n  stop_at: 2"))
    assert invoke(runner, ["run", path, "--out", "o"]).exit_code == 130
    first = results("o")["provenance"]
    assert "resumed_from" not in first
    assert invoke(runner, ["run", path, "--out", "o", "--resume", "-q"]).exit_code == 0
    res = results("o")
    assert res["status"] == "completed" and res["metrics"]["resumed_from"] == 2
    (part,) = res["provenance"]["resumed_from"]
    assert part == {"git_commit": "a" * 40, "git_dirty": False,
                    "biolearn_version": first["biolearn_version"],
                    "start_utc": first["start_utc"], "end_utc": first["end_utc"],
                    "status": "interrupted"}
    assert res["provenance"]["start_utc"] >= first["end_utc"]


# ---- 8. spikes of an interrupted test phase -------------------------------------------------

@needs_mnist
def test_interrupted_test_phase_keeps_a_readable_spike_file(tmp_path, monkeypatch):
    from biolearn.config import load_config
    from biolearn.io.sonata import read_presentations, read_spikes
    from biolearn.protocols import image_stdp
    from biolearn.runner import RunInterrupted, execute

    real, seen = image_stdp.Presenter.present, {"test": 0}

    def stop_in_test(self, image, before=None):
        if before is None:  # a test image (sym_stdp has no labelling pass)
            seen["test"] += 1
            if seen["test"] == 7:
                raise KeyboardInterrupt
        return real(self, image, before)

    monkeypatch.setattr(image_stdp.Presenter, "present", stop_in_test)
    cfg = load_config(SMOKE, [f"data.root={_mnist_root()}", "data.n_train=10", "data.n_test=20",
                              "params.n_exc=20", "params.output.figures=false",
                              "params.output.test_workers=1",
                              "params.output.spikes_test_images=10"])
    with pytest.raises(RunInterrupted):
        execute(cfg, out_dir=tmp_path, quiet=True)
    assert results(tmp_path)["status"] == "interrupted"
    pres = read_presentations(tmp_path / "spikes.h5")["test"]
    assert len(pres["labels"]) == 6  # the six presentations done before the interrupt
    np.testing.assert_array_equal(pres["start_ms"], np.arange(6) * 350.0)
    spikes = read_spikes(tmp_path / "spikes.h5")
    t, _ = spikes["input"]
    assert t.size > 0 and t.max() < 6 * 350.0
