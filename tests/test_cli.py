"""The `biolearn` command: one-line errors, run directories, results.json, bench/list/inspect."""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

import biolearn
from biolearn import registry
from biolearn.cli import cli
from biolearn.config import param

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class StepParams:
    steps: int = param(3, "steps to take", min=1)
    stop_at: int = param(0, "raise KeyboardInterrupt at this step (0 = never)", min=0)
    fail: bool = param(False, "raise an unexpected error")


def _step_run(cfg, ctx) -> dict:
    """Counts steps; can simulate Ctrl-C or a crash; resumes from its checkpoint."""
    p = cfg.params
    start = 0
    if ctx.resume and ctx.checkpoint_path.exists():
        start = int(ctx.checkpoint_path.read_text())
    for step in range(start, p.steps):
        if p.fail:
            raise ValueError("boom")
        if p.stop_at and step == p.stop_at and not ctx.resume:
            raise KeyboardInterrupt
        ctx.metrics["steps_done"] = step + 1
        ctx.checkpoint_path.write_text(str(step + 1))
    return {"steps_done": p.steps, "resumed_from": start, "draw": float(ctx.rng.random())}


def _toy_bench(quiet: bool = False) -> dict:
    print("chatter from the benchmark")  # must not end up after the JSON line on stdout
    return {"biolearn_s": 0.5, "peer_s": 1.5, "ratio_vs_peer": 3.0}


@pytest.fixture(autouse=True)
def toy_entries():
    registry.recipes()
    registry.benches()
    registry._RECIPES["toy_steps"] = registry.Recipe("toy_steps", StepParams, _step_run,
                                                     "toy stepper for tests")
    registry.register_bench("toy_bench", "a toy benchmark")(_toy_bench)
    yield
    registry._RECIPES.pop("toy_steps", None)
    registry._BENCHES.pop("toy_bench", None)


@pytest.fixture
def runner(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BIOLEARN_DEBUG", raising=False)
    return CliRunner()


def invoke(runner, args):
    return runner.invoke(cli, args, catch_exceptions=False)


def one_error(res) -> str:
    """Assert a clean failure: exit != 0, exactly one `error:` line on stderr, no traceback."""
    assert res.exit_code not in (0, None), res.output
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, res.stderr
    assert "Traceback" not in res.output and "Traceback" not in res.stderr
    return lines[0]


def cfg_file(text: str, name: str = "t.yaml") -> Path:
    p = Path(name)
    p.write_text(text)
    return p


TOY = "model: toy_steps\nname: toy\nseed: 1\nparams:\n  steps: 3\n"


# ---- bad input: every case is one line, exit != 0 ---------------------------------------------

@pytest.mark.parametrize("text, args, fragments", [
    ("model: toy_steps\nparams:\n  steps: [1\n", [], ["invalid YAML", "t.yaml line"]),
    (TOY + "epochs: 3\n", [], ["unknown key 'epochs'", "allowed keys here: model"]),
    (TOY + "  stpes: 2\n", [], ["unknown key 'params.stpes'", "did you mean 'steps'"]),
    (TOY, ["--set", "params.steps=many"], ["wrong type for 'params.steps'", "an integer"]),
    (TOY, ["--set", "params.fail=1"], ["wrong type for 'params.fail'", "true or false"]),
    (TOY, ["--set", "params.steps=0"], ["out of range", "at least 1"]),
    ("model: toy_stesp\n", [], ["unknown model 'toy_stesp'", "did you mean 'toy_steps'"]),
    (TOY + "data:\n  dataset: mnits\n", [], ["'data.dataset'", "did you mean 'mnist'",
                                            "fashion_mnist"]),
    (TOY, ["--set", "params.nope.x=1"], ["unknown key 'params.nope'", "--set"]),
    (TOY, ["--set", "justtext"], ["malformed override"]),
    (TOY, ["--seed", "-4"], ["'seed'", "out of range"]),
    (TOY, ["--bogus"], ["No such option", "biolearn run --help"]),
])
def test_run_bad_input_is_one_line(runner, text, args, fragments):
    path = cfg_file(text)
    res = invoke(runner, ["run", str(path), *args])
    line = one_error(res)
    assert res.exit_code == 2
    for frag in fragments:
        assert frag in line, line
    assert not Path("runs").exists()  # nothing was started


def test_run_missing_config_file(runner):
    line = one_error(invoke(runner, ["run", "configs/nothere.yaml"]))
    assert "nothere.yaml" in line and "does not exist" in line and "biolearn list" in line


def test_unusable_out_dir(runner):
    path = cfg_file(TOY)
    Path("afile").write_text("x")
    line = one_error(invoke(runner, ["run", str(path), "--out", "afile/sub"]))
    assert "cannot create the run directory" in line and "afile" in line


def test_debug_shows_traceback(runner):
    path = cfg_file(TOY + "  stpes: 2\n")
    res = invoke(runner, ["run", str(path), "--debug"])
    assert res.exit_code == 2
    assert "Traceback" in res.stderr and "BiolearnError" in res.stderr
    assert "error: unknown key 'params.stpes'" in res.stderr


def test_inspect_missing_and_unreadable_file(runner):
    line = one_error(invoke(runner, ["inspect", "none.h5"]))
    assert "none.h5" in line and "does not exist" in line
    Path("junk.h5").write_bytes(b"this is not an HDF5 file\n" * 10)
    line = one_error(invoke(runner, ["inspect", "junk.h5"]))
    assert "junk.h5" in line or "inspect" in line
    Path("trunc.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 20)  # HDF5 magic, then nothing
    one_error(invoke(runner, ["inspect", "trunc.h5"]))


def test_unknown_command_and_bench(runner):
    line = one_error(invoke(runner, ["rnu"]))
    assert "No such command" in line
    line = one_error(invoke(runner, ["bench", "toy_bnech"]))
    assert "unknown benchmark 'toy_bnech'" in line and "did you mean 'toy_bench'" in line


# ---- run: directories, results.json, interrupt, resume ----------------------------------------

def test_run_writes_resolved_config_and_results(runner):
    path = cfg_file(TOY)
    res = invoke(runner, ["run", str(path), "--set", "params.steps=4", "--quiet"])
    assert res.exit_code == 0, res.output
    dirs = list(Path("runs/toy").iterdir())
    assert len(dirs) == 1 and len(dirs[0].name) == len("20250101-120000")
    out = dirs[0]
    assert res.stdout.strip() == f"results: {out / 'results.json'}"
    data = json.loads((out / "results.json").read_text())
    assert data["status"] == "completed" and data["seed"] == 1
    assert data["biolearn_version"] == biolearn.__version__
    assert data["metrics"]["steps_done"] == 4 and data["wall_time_s"] >= 0
    assert data["config"]["params"] == {"steps": 4, "stop_at": 0, "fail": False}
    prov = data["provenance"]
    assert prov["start_utc"] <= prov["end_utc"] and prov["python"] and prov["numpy"]
    import socket

    assert socket.gethostname() not in json.dumps(prov)
    import yaml

    assert yaml.safe_load((out / "config.resolved.yaml").read_text()) == data["config"]
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_same_seed_same_draw_and_seed_override(runner):
    path = cfg_file(TOY)
    draws = []
    for i, extra in enumerate([[], [], ["--seed", "2"]]):
        res = invoke(runner, ["run", str(path), "--out", f"o{i}", "-q", *extra])
        assert res.exit_code == 0, res.output
        draws.append(json.loads(Path(f"o{i}/results.json").read_text())["metrics"]["draw"])
    import numpy as np

    assert draws[0] == draws[1] == np.random.default_rng(1).random()
    assert draws[2] == np.random.default_rng(2).random()


def test_interrupt_writes_partial_results_and_resume(runner):
    path = cfg_file(TOY.replace("steps: 3", "steps: 5\n  stop_at: 2"))
    res = invoke(runner, ["run", str(path), "--set", "params.steps=5"])
    assert res.exit_code == 130
    (out,) = list(Path("runs/toy").iterdir())
    data = json.loads((out / "results.json").read_text())
    assert data["status"] == "interrupted" and data["metrics"] == {"steps_done": 2}
    assert "resume with: biolearn run" in res.stderr and "--resume" in res.stderr
    assert f"--out {out}" in res.stderr and "--set params.steps=5" in res.stderr
    # --resume without --out picks the newest run of this config
    res = invoke(runner, ["run", str(path), "--set", "params.steps=5", "--resume", "-q"])
    assert res.exit_code == 0, res.output
    assert list(Path("runs/toy").iterdir()) == [out]
    data = json.loads((out / "results.json").read_text())
    assert data["status"] == "completed" and data["metrics"]["resumed_from"] == 2
    assert data["metrics"]["steps_done"] == 5


def test_resume_refuses_a_different_config_and_missing_run(runner):
    path = cfg_file(TOY)
    line = one_error(invoke(runner, ["run", str(path), "--resume"]))
    assert "no earlier run of 'toy'" in line
    assert invoke(runner, ["run", str(path), "--out", "o", "-q"]).exit_code == 0
    line = one_error(invoke(runner, ["run", str(path), "--out", "o", "--resume",
                                     "--set", "params.steps=9"]))
    assert "differs" in line and "params.steps" in line


def test_resume_accepts_fields_added_since_at_their_default(runner):
    """A run saved before a config field existed resumes while that field keeps its default."""
    path = cfg_file(TOY.replace("steps: 3", "steps: 5\n  stop_at: 2"))
    assert invoke(runner, ["run", str(path), "--out", "o"]).exit_code == 130
    saved = Path("o/config.resolved.yaml")
    saved.write_text(saved.read_text().replace("  fail: false\n", ""))
    line = one_error(invoke(runner, ["run", str(path), "--out", "o", "--resume",
                                     "--set", "params.fail=true"]))
    assert "differs" in line and "params.fail" in line
    line = one_error(invoke(runner, ["run", str(path), "--out", "o", "--resume",
                                     "--set", "params.steps=9"]))
    assert "params.steps" in line and "params.fail" not in line  # only the real change is named
    res = invoke(runner, ["run", str(path), "--out", "o", "--resume", "-q"])
    assert res.exit_code == 0, res.output
    assert json.loads(Path("o/results.json").read_text())["metrics"]["resumed_from"] == 2


def test_recipe_crash_is_reported_and_recorded(runner):
    path = cfg_file(TOY + "  fail: true\n")
    res = invoke(runner, ["run", str(path), "--out", "o"])
    line = one_error(res)
    assert res.exit_code == 1 and "ValueError: boom" in line and "--debug" in line
    data = json.loads(Path("o/results.json").read_text())
    assert data["status"] == "failed" and "boom" in data["error"]


def test_example_lif_matches_closed_form(runner):
    """The shipped example: LIF rate vs T = t_ref + tau ln((RI - V_reset)/(RI - theta))."""
    res = invoke(runner, ["run", str(ROOT / "configs" / "example_lif.yaml"), "--out", "o",
                          "--set", "params.t_sim_ms=300", "--set", "params.inputs_mv=[15, 30, 80]"])
    assert res.exit_code == 0, res.output
    m = json.loads(Path("o/results.json").read_text())["metrics"]
    tau, theta, t_ref, dt = 20.0, 20.0, 2.0, 0.01
    for drive, sim in zip([15, 30, 80], m["rate_sim_hz"], strict=True):
        if drive <= theta:  # below threshold: silent
            assert sim == 0.0
            continue
        period = t_ref + tau * math.log(drive / (drive - theta))
        # exact integration: only the spike time is quantised to the step, by less than dt
        assert abs(1000.0 / sim - period) <= dt + 1e-9


# ---- bench, list, version, help ----------------------------------------------------------------

def test_bench_json_is_last_line(runner):
    res = invoke(runner, ["bench", "toy_bench"])
    assert res.exit_code == 0, res.output
    lines = res.stdout.strip().splitlines()
    assert json.loads(lines[-1]) == {"bench": "toy_bench", "biolearn_s": 0.5, "peer_s": 1.5,
                                     "ratio_vs_peer": 3.0}
    assert any("ratio_vs_peer" in ln for ln in lines[:-1])  # the human table came first
    assert "chatter" in res.stderr and "chatter" not in res.stdout
    res = invoke(runner, ["bench", "toy_bench", "--json"])
    assert res.exit_code == 0
    (only,) = res.stdout.strip().splitlines()
    assert json.loads(only)["ratio_vs_peer"] == 3.0
    res = invoke(runner, ["bench"])
    assert "toy_bench" in res.stdout and "a toy benchmark" in res.stdout


def test_list_shows_configs_models_benches(runner, tmp_path):
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    res = invoke(runner, ["list"])
    assert res.exit_code == 0, res.output
    out = res.stdout
    assert "configs/example_lif.yaml" in out and "model=example_lif" in out
    assert "LIF f-I curve" in out  # the first comment line of the config
    assert "toy_steps" in out and "toy stepper for tests" in out and "toy_bench" in out


def test_list_model_params(runner):
    res = invoke(runner, ["list", "toy_steps"])
    assert res.exit_code == 0, res.output
    assert "params.steps" in res.stdout and "steps to take" in res.stdout
    assert "data.dataset" in res.stdout
    line = one_error(invoke(runner, ["list", "toy_step"]))
    assert "did you mean 'toy_steps'" in line


def test_version_and_help(runner):
    res = invoke(runner, ["--version"])
    assert res.exit_code == 0 and res.stdout.strip() == f"biolearn {biolearn.__version__}"
    for cmd in (["--help"], ["run", "--help"], ["inspect", "--help"], ["bench", "--help"],
                ["list", "--help"]):
        res = invoke(runner, cmd)
        assert res.exit_code == 0 and "Example" in res.stdout, cmd
    assert "--set" in invoke(runner, ["run", "--help"]).stdout


def test_progress_logs_lines_when_stderr_is_a_file(tmp_path, monkeypatch, capsys):
    """Batch jobs get plain progress lines (no carriage returns); --quiet stays silent."""
    import biolearn.runner as runner_mod

    monkeypatch.setattr(runner_mod, "LOG_INTERVAL_S", 0.0)
    ctx = runner_mod.RunContext(out_dir=tmp_path, seed=0)
    bar = ctx.progress(3, "train")
    for _ in range(3):
        bar.update(1)
    bar.close()
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = [ln for ln in err.splitlines() if ln]
    assert len(lines) >= 2 and lines[0].startswith("train:") and "3/3" in lines[-1]

    quiet = runner_mod.RunContext(out_dir=tmp_path, seed=0, quiet=True).progress(3, "train")
    quiet.update(3)
    quiet.close()
    assert capsys.readouterr().err == ""


def test_progress_lines_are_rate_limited(tmp_path, monkeypatch, capsys):
    """Postfix refreshes and quick updates print nothing between the first and the final line."""
    import biolearn.runner as runner_mod

    monkeypatch.setattr(runner_mod, "LOG_INTERVAL_S", 3600.0)
    bar = runner_mod.RunContext(out_dir=tmp_path, seed=0).progress(50, "dam")
    for k in range(50):
        bar.update(1)
        bar.set_postfix(err=k)
    bar.close()
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln]
    assert len(lines) == 2 and "0/50" in lines[0] and "50/50" in lines[-1]
