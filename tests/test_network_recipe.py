"""The ``network`` recipe: user-defined neuron models and rules run through ``biolearn run``.

Models come from the YAML (``neuron_models``) or from Python files outside the package
(``definitions``); mistakes in a definition end as one ``error:`` line naming the model and the
part; a user-written LIF reproduces its closed-form firing period.
"""

from __future__ import annotations

import json
import math
import textwrap
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from biolearn.cli import cli
from biolearn.io.sonata import read_spikes

ROOT = Path(__file__).resolve().parents[1]

# Brian2 (which parses the definitions) logs Python warnings to stderr; outside pytest its
# dependencies' deprecation warnings are silenced by Python's default filters, so do the same
# here and check that stderr holds nothing but the error line.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def runner(monkeypatch, tmp_path):
    work = tmp_path / "work"  # not the config's directory: definitions resolve from the config
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.delenv("BIOLEARN_DEBUG", raising=False)
    return CliRunner()


def run(runner, config: Path, *sets: str, out: str = "o"):
    args = ["run", str(config), "--out", out, "--quiet"]
    for s in sets:
        args += ["--set", s]
    return runner.invoke(cli, args, catch_exceptions=False)


def results(out: str = "o") -> dict:
    return json.loads(Path(out, "results.json").read_text())


def one_error(res) -> str:
    """A clean failure: exit code != 0, one ``error:`` line on stderr, no traceback."""
    assert res.exit_code not in (0, None), res.output
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), res.stderr
    assert "Traceback" not in res.output
    return lines[0]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())
    return path


# --------------------------------------------------------------------------------------------
# (a) a model defined in a Python file outside the package
# --------------------------------------------------------------------------------------------

USER_FILE = '''
    """Models of a user, nowhere near the biolearn package."""
    from biolearn.engine import NeuronModel, SynapseModel

    # adaptive LIF: every spike adds delta_a to a current a that is subtracted from the drive
    MY_ALIF = NeuronModel(
        name="my_alif",
        equations="""
            dv/dt = (E_L - v + I_syn - a)/tau_m : volt (unless refractory)
            da/dt = -a/tau_a : volt
            dI_syn/dt = -I_syn/tau_syn : volt
        """,
        threshold="v > v_th", reset="v = v_reset; a += delta_a", refractory="t_ref",
        method="exact",
        parameters={"E_L": "-70 mV", "v_th": "-50 mV", "v_reset": "-65 mV", "tau_m": "20 ms",
                    "tau_a": "100 ms", "delta_a": "1 mV", "tau_syn": "5 ms", "t_ref": "2 ms"},
        init={"v": "E_L"})

    # potentiation-only Hebbian trace rule
    MY_HEBB = SynapseModel(
        name="my_hebb",
        model="w : 1\\ndapre/dt = -apre/tau : 1 (event-driven)",
        on_pre="apre += 1",
        on_post="w = clip(w + eta*apre, 0, w_max)",
        parameters={"eta": 0.01, "tau": "20 ms", "w_max": 10.0},
        learning_rates=("eta",))
'''

FILE_CONFIG = """
    model: network
    name: from_file
    data: {dataset: none}
    params:
      duration_ms: 400
      dt_ms: 0.1
      definitions: [../models/my_models.py]
      populations:
        - {name: inp, n: 100, kind: poisson, rate_hz: 20}
        - {name: cells, n: 8, model: my_alif}
      projections:
        - {name: inp_cells, pre: inp, post: cells, connectivity: random, p: 0.5,
           weight: [2.0, 4.0], delay_ms: 1.0, target: I_syn, rule: my_hebb}
"""


def test_model_from_user_file_runs(runner, tmp_path):
    write(tmp_path / "models" / "my_models.py", USER_FILE)
    cfg = write(tmp_path / "cfg" / "net.yaml", FILE_CONFIG)
    res = run(runner, cfg)
    assert res.exit_code == 0, res.output + res.stderr
    r = results()
    assert r["status"] == "completed"
    m = r["metrics"]
    assert m["spikes.cells"] > 0 and m["spikes.inp"] > 0
    assert m["rate_hz.inp"] == pytest.approx(20.0, rel=0.25)
    assert m["rate_hz.cells"] == pytest.approx(m["spikes.cells"] / 8 / 0.4)
    assert m["cv_isi.cells"] is None or 0.0 <= m["cv_isi.cells"] < 2.0
    # potentiation only: the mean weight grows from the initial uniform [2, 4]
    assert m["w_mean_initial.inp_cells"] == pytest.approx(3.0, abs=0.2)
    assert m["w_mean.inp_cells"] > m["w_mean_initial.inp_cells"]
    spikes = read_spikes("o/spikes.h5")
    assert len(spikes["cells"][0]) == m["spikes.cells"]
    assert spikes["cells"][1].max() < 8
    assert Path("o/raster.png").exists() and Path("o/weights.h5").exists()


# --------------------------------------------------------------------------------------------
# (b) the shipped configs: a model in the YAML, models in configs/user_models.py
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("config, recorded, plastic", [
    ("custom_neuron.yaml", ["alif", "izh"], "inp_alif"),
    ("custom_neuron_file.yaml", ["eif", "adex"], "inp_eif"),
])
def test_shipped_configs_run(runner, config, recorded, plastic):
    res = run(runner, ROOT / "configs" / config, "params.duration_ms=400")
    assert res.exit_code == 0, res.output + res.stderr
    m = results()["metrics"]
    for pop in recorded:
        assert m[f"spikes.{pop}"] > 0, (pop, m)
    assert m[f"w_mean.{plastic}"] != m[f"w_mean_initial.{plastic}"]
    assert set(read_spikes("o/spikes.h5")) == set(recorded)


# --------------------------------------------------------------------------------------------
# (c) mistakes in a definition: one line naming the model and the part
# --------------------------------------------------------------------------------------------

GOOD = {"equations": "dv/dt = (E_L - v)/tau_m : volt", "threshold": "v > v_th",
        "reset": "v = E_L", "method": "exact"}

BAD_CONFIG = """
    model: network
    name: bad
    data: {{dataset: none}}
    params:
      duration_ms: 10
      neuron_models:
        broken:
          equations: "{equations}"
          threshold: "{threshold}"
          reset: "{reset}"
          method: {method}
          parameters: {{E_L: -70 mV, tau_m: 20 ms, v_th: -50 mV}}
      populations:
        - {{name: cells, n: 2, model: broken}}
"""


@pytest.mark.parametrize("change, fragments", [
    ({"equations": "dv/dt = (E_L - v + I_foo)/tau_m : volt"},
     ["unknown identifier 'I_foo'", "in broken.equations"]),
    ({"reset": "v = E_L; v_th = v"},
     ["writes 'v_th', a parameter", "in broken.reset"]),
    ({"equations": "dv/dt = (E_L - v)**2/(mV*tau_m) : volt"},
     ["method 'exact' cannot integrate", "in broken.method"]),
    ({"equations": "dv/dt = v : volt"},
     ["inconsistent units", "in broken.equations"]),
    ({"threshold": "v > 1"},
     ["inconsistent units", "in broken.threshold"]),
])
def test_definition_mistake_is_one_line(runner, tmp_path, change, fragments):
    cfg = write(tmp_path / "bad.yaml", BAD_CONFIG.format(**{**GOOD, **change}))
    res = run(runner, cfg)
    line = one_error(res)
    assert res.exit_code == 2
    for frag in fragments:
        assert frag in line, line
    assert "bad.yaml line" in line  # where the model is written


def test_mistake_in_definitions_file_names_model_and_file(runner, tmp_path):
    write(tmp_path / "defs.py", """
        from biolearn.engine import NeuronModel
        WRONG = NeuronModel("wrong", "dv/dt = (E_L - v)/tau_m : volt", threshold="v > v_thr",
                            parameters={"E_L": "-70 mV", "tau_m": "20 ms"})
    """)
    cfg = write(tmp_path / "c.yaml", """
        model: network
        params:
          definitions: [defs.py]
          populations: [{name: a, n: 1, kind: poisson, rate_hz: 1}]
    """)
    line = one_error(run(runner, cfg))
    assert "unknown identifier 'v_thr'" in line and "in wrong.threshold (defs.py)" in line


@pytest.mark.parametrize("params, fragments", [
    ("populations: [{name: a, n: 2, model: adexx}]",
     ["unknown neuron model 'adexx'", "did you mean 'adex'", "c.yaml line"]),
    ("populations: [{name: a, n: 2, model: adex}, {name: b, n: 2, model: adex}]\n"
     "  projections: [{name: p, pre: a, post: b, rule: pair_stpd}]",
     ["unknown plasticity rule 'pair_stpd'", "did you mean 'pair_stdp'"]),
    ("populations: [{name: a, n: 2, model: adex}, {name: b, n: 3, model: adex}]\n"
     "  projections: [{name: p, pre: a, post: c}]",
     ["unknown population 'c'", "params.projections[0].post"]),
    ("populations: [{name: a, n: 2, model: adex}, {name: b, n: 2, model: adex}]\n"
     "  projections: [{name: p, pre: a, post: b, target: ge}]",
     ["has no variable 'ge'", "I_syn"]),
    ("populations: [{name: a, n: 2, model: adex}]\n  definitions: [nothere.py]",
     ["definitions file 'nothere.py' not found", "c.yaml line"]),
    ("populations: [{name: a, n: 2, model: adex, params: {C: 3 mV}}]",
     ["'3 mV' has dimension", "population 'a'"]),
    ("populations: [{name: a, n: 2, model: lif, options: {synapse: cuba}}]",
     ["invalid lif option synapse='cuba'", "conductance"]),
    ("populations: [{name: a, n: 2, kind: poisson, model: adex}]",
     ["a poisson source takes no model", "params.populations[0]"]),
    ("populations: [{name: a, n: 2, model: adex, t_ref_ms: 1.0}]",
     ["'t_ref_ms' is for poisson sources only", "params.populations[0]"]),
])
def test_network_mistake_is_one_line(runner, tmp_path, params, fragments):
    cfg = write(tmp_path / "c.yaml", "model: network\nparams:\n  " + params + "\n")
    line = one_error(run(runner, cfg))
    for frag in fragments:
        assert frag in line, line


def test_poisson_dead_time_from_the_config(runner, tmp_path):
    """t_ref_ms of a poisson source: a fraction p/(1 + p) of the steps fire at one blocked step
    (p = rate·dt = 0.1 here, so 200 Hz becomes 181.8 Hz)."""
    cfg = write(tmp_path / "c.yaml", """
        model: network
        data: {dataset: none}
        params:
          duration_ms: 2000
          dt_ms: 0.5
          populations: [{name: inp, n: 200, kind: poisson, rate_hz: 200, t_ref_ms: 1.0}]
    """)
    res = run(runner, cfg)
    assert res.exit_code == 0, res.output + res.stderr
    n = results()["metrics"]["spikes.inp"]
    expected = 200 * 4000 * 0.1 / 1.1
    assert abs(n - expected) < 5 * expected ** 0.5


# --------------------------------------------------------------------------------------------
# (d) correct, not just present: a user-written LIF against its closed form
# --------------------------------------------------------------------------------------------

LIF_CONFIG = """
    model: network
    name: lif_closed_form
    data: {{dataset: none}}
    params:
      duration_ms: 300
      dt_ms: {dt}
      neuron_models:
        lif_drive:
          equations: "dv/dt = (v_rest - v + RI)/tau_m : volt (unless refractory)"
          threshold: v > v_th
          reset: v = v_reset
          refractory: t_ref
          method: exact
          parameters: {{v_rest: -70 mV, RI: 0 mV, tau_m: 20 ms, v_th: -50 mV, v_reset: -70 mV,
                       t_ref: 2 ms}}
          init: {{v: v_rest}}
      populations:
        - {{name: d25, n: 2, model: lif_drive, params: {{RI: 25 mV}}}}
        - {{name: d30, n: 2, model: lif_drive, params: {{RI: 30 mV}}}}
        - {{name: d40, n: 2, model: lif_drive, params: {{RI: 40 mV}}}}
        - {{name: d15, n: 2, model: lif_drive, params: {{RI: 15 mV}}}}
        # the built-in LIF (current based, exact) looked up by name, driven by i_bias
        - {{name: builtin, n: 2, model: lif, options: {{synapse: current, integration: exact}},
           params: {{i_bias: 30 mV, v_rest: -70 mV, v_reset: -70 mV, v_thresh: -50 mV,
                    tau_m: 20 ms, t_ref: 2 ms}}}}
"""


def test_user_lif_matches_closed_form(runner, tmp_path):
    """T = t_ref + tau_m ln((V_inf - v_reset)/(V_inf - v_th)) with V_inf = v_rest + RI; below
    threshold (RI 15 mV < 20 mV) the neuron is silent."""
    dt = 0.1
    cfg = write(tmp_path / "lif.yaml", LIF_CONFIG.format(dt=dt))
    res = run(runner, cfg)
    assert res.exit_code == 0, res.output + res.stderr
    m = results()["metrics"]
    spikes = read_spikes("o/spikes.h5")
    tau, t_ref, gap = 20.0, 2.0, 20.0  # v_th - v_reset = v_th - v_rest = 20 mV
    for pop, drive in (("d25", 25.0), ("d30", 30.0), ("d40", 40.0), ("builtin", 30.0)):
        period = t_ref + tau * math.log(drive / (drive - gap))
        assert abs(m[f"isi_mean_ms.{pop}"] - period) < dt, (pop, m[f"isi_mean_ms.{pop}"], period)
        assert m[f"cv_isi.{pop}"] == pytest.approx(0.0, abs=1e-6)
        t, ids = spikes[pop]
        for k in range(2):
            tk = np.sort(t[ids == k])
            assert abs(tk[0] - (period - t_ref)) < dt  # first spike: from rest, no refractory
            assert np.all(np.abs(np.diff(tk) - period) < dt)
        assert m[f"spikes.{pop}"] == len(t)
    assert m["spikes.d15"] == 0 and m["cv_isi.d15"] is None
