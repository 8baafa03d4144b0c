"""Values a user can get wrong are refused up front with one clean ``error:`` line.

Table-driven: a config (a file of configs/ or inline YAML) with ``--set`` overrides, or a function
call, and the expected outcome: success, or an error whose message holds the given fragments,
names no "unexpected" failure and fits on one line. ``biolearn run`` rows go through the CLI with
the runner replaced, so nothing is trained. A property-based test then feeds random overrides of
every registered recipe's params through the config validation alone.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import typing
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from biolearn import config, registry
from biolearn.config import dump_yaml, load_config
from biolearn.errors import BiolearnError

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
HUGE_INT = "1" + "0" * 400  # an integer beyond the float range


def cli_run(args: list[str], monkeypatch, capsys) -> tuple[int, str]:
    """``biolearn <args>`` in-process; the runner is replaced so that a valid config trains
    nothing. Returns (exit code, stderr)."""
    from biolearn import runner
    from biolearn.cli import cli

    def fake_execute(cfg, **kw):
        return {"metrics": {}, "wall_time_s": 0.0}

    monkeypatch.setattr(runner, "execute", fake_execute)
    capsys.readouterr()
    code = cli.main(args, standalone_mode=False)
    return code, capsys.readouterr().err


def config_path(tmp_path: Path, cfg: str) -> Path:
    """A configs/ file by name, or inline YAML written to a file."""
    if "\n" not in cfg:
        return CONFIGS / cfg
    p = tmp_path / "inline.yaml"
    p.write_text(cfg)
    return p


def assert_clean(code: int, err: str, fragments: tuple[str, ...]) -> None:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "unexpected" not in err, err
    for frag in fragments:
        assert frag in err, f"{frag!r} not in {err!r}"


# ---------------------------------------------------------------------------------------------
# biolearn run CONFIG --set ...: expected error fragments, or None for success
# ---------------------------------------------------------------------------------------------

SMOKE = "stdp_mnist_smoke.yaml"
DC = "diehl_cook_mnist.yaml"
ROWS: list[tuple[str, str, list[str], tuple[str, ...] | None]] = [
    # 1. non-finite floats: refused unless the field gives infinity a meaning
    ("inf_tau_m", SMOKE, ["params.exc.tau_m=.inf"],
     ("'params.exc.tau_m' = inf is not a finite number", "--set 'params.exc.tau_m=.inf'")),
    ("nan_tau_m", SMOKE, ["params.exc.tau_m=.nan"], ("'params.exc.tau_m' = nan is not a finite",)),
    ("overflowing_literal", SMOKE, ["params.plasticity.eta_in=1e999"],
     ("'params.plasticity.eta_in' = inf is not a finite number",)),
    ("int_beyond_float", SMOKE, [f"params.exc.tau_m={HUGE_INT}"],
     ("'params.exc.tau_m'", "a number within ±1.8e308")),
    ("int_beyond_int64", SMOKE, ["params.epochs=1e30"], ("'params.epochs'", "out of range")),
    ("inf_in_list", "example_lif.yaml", ["params.inputs_mv=[25, .inf]"],
     ("'params.inputs_mv' = inf is not a finite number",)),
    ("tau_theta_inf_allowed", SMOKE, ["params.exc.tau_theta=.inf"], None),
    ("v_floor_minus_inf_allowed", SMOKE, ["params.exc.v_floor=-.inf"], None),
    ("dc_v_floor_minus_inf_allowed", DC, ["params.exc.v_floor=-.inf",
                                          "params.exc.tau_theta=.inf"], None),
    ("dc_tau_theta_nan", DC, ["params.exc.tau_theta=.nan"], ("'params.exc.tau_theta' = nan",)),
    ("theta_plus_huge", SMOKE, ["params.exc.theta_plus=1e308"],
     ("'params.exc.theta_plus' = 1e+308", "one spike would silence the neuron")),
    ("theta_init_huge", DC, ["params.exc.theta_init=1e300"],
     ("'params.exc.v_thresh' + 'params.exc.theta_init' − 20", "can never fire")),
    # 2. contradictory values: one line naming both fields
    ("max_below_intensity0", SMOKE, ["params.presentation.max_intensity=1"],
     ("'params.presentation.intensity0' = 2 must be at most "
      "'params.presentation.max_intensity' = 1",)),
    ("intensity_step_zero", SMOKE, ["params.presentation.intensity_step=0"],
     ("'params.presentation.intensity_step' = 0 never raises the intensity",
      "'params.presentation.min_spikes'", "presented forever")),
    ("intensity_step_zero_no_retry", SMOKE, ["params.presentation.intensity_step=0",
                                             "params.presentation.min_spikes=0"], None),
    ("intensity_step_negative", DC, ["params.presentation.intensity_step=-1"],
     ("'params.presentation.intensity_step' = -1.0 is out of range",)),
    ("union_a_above_n", "dendrites_union.yaml", ["params.a=5000"],
     ("'params.a' = 5000 must be at most 'params.n' = 2048",)),
    ("noise_s_above_a", "dendrites_noise.yaml", ["params.s=100"],
     ("'params.s' = 100 must be at most 'params.a' = 40",)),
    ("false_match_a_above_n", "dendrites_false_match.yaml", ["params.populations=[[10, 20]]"],
     ("'params.populations[0]' = [10, 20]", "between 1 and the cells n")),
    ("inputs_empty", "example_lif.yaml", ["params.inputs_mv=[]"], ("'params.inputs_mv' is empty",)),
    ("lif_reset_above_threshold", "example_lif.yaml", ["params.v_reset=30"],
     ("'params.v_reset' = 30 must be below 'params.v_thresh' = 20",)),
    ("inh_reset_at_threshold", SMOKE, ["params.inh.v_reset=-40"],
     ("'params.inh.v_reset' = -40 must be below 'params.inh.v_thresh' = -40",)),
    ("exc_reset_above_threshold", SMOKE, ["params.exc.v_reset=-40"],
     ("'params.exc.v_reset' = -40 must be below the initial threshold",)),
    ("pspm_neuron_reset", "pspm_recurrent.yaml", ["params.neuron.v_reset=-40"],
     ("'params.neuron.v_reset' = -40 must be below 'params.neuron.v_thresh' = -50",)),
    ("pspm_w_min_above_w_max", "pspm_pif.yaml", ["params.rule.w_min=30"],
     ("'params.rule.w_min' = 30 must be below 'params.rule.w_max' = 20",)),
    ("pspm_dt_above_update", "pspm_pif.yaml", ["params.dt_ms=1000"],
     ("'params.dt_ms' = 1000 must be at most 'params.update_every_ms'",)),
    ("dc_w_init_above_w_max", DC, ["params.plasticity.w_init=2"],
     ("'params.plasticity.w_init' = 2 must be at most 'params.plasticity.w_max' = 1",)),
    ("norm_above_bound", SMOKE, ["params.plasticity.norm_in=1000"],
     ("'params.plasticity.norm_in' = 1000 exceeds 784 × 'params.plasticity.w_max_in'",)),
    ("norm_class_factor_above_1", SMOKE, ["params.plasticity.norm_class_factor=2"],
     ("'params.plasticity.norm_class_factor' = 2.0 is out of range",)),
    ("class_threshold_unreachable", SMOKE, ["params.cls.v_thresh=10"],
     ("'params.cls.v_thresh' = 10 mV is not below max('params.cls.e_e', 'params.cls.v_rest')",)),
    ("e_i_above_e_e", SMOKE, ["params.exc.e_i=10"],
     ("'params.exc.e_i' = 10 must be below 'params.exc.e_e' = 0",)),
    ("floor_above_reset", DC, ["params.exc.v_floor=-50"],
     ("'params.exc.v_floor' = -50 must be at most 'params.exc.v_reset' = -65",)),
    ("unknown_spike_population", SMOKE, ["params.output.spike_populations=[exc, foo]"],
     ("'params.output.spike_populations[1]' = 'foo' is not a population",)),
    ("dc_has_no_class_population", DC, ["params.output.spike_populations=[class]"],
     ("'params.output.spike_populations[0]' = 'class'",)),
    ("foldiak_off_above_on", "foldiak_spiking.yaml", ["params.rate_off_hz=300"],
     ("'params.rate_off_hz' = 300 must be below 'params.rate_on_hz' = 200",)),
    ("curl_converge_above_1", "curl_descent.yaml", ["params.converge_rel=2"],
     ("'params.converge_rel' = 2 counts every run as converged",)),
    ("curl_empty_sweep", "curl_descent.yaml", ["params.activations=[]"],
     ("'params.activations' is empty",)),
    ("similarity_k_above_dim", "similarity_matching.yaml", ["params.k=1000"],
     ("'params.k' = 1000 must be at most 'params.dim'",)),
    ("similarity_eigenvalues_swapped", "similarity_matching.yaml", ["params.kth_eigenvalue=2"],
     ("'params.kth_eigenvalue' = 2 must be at most 'params.top_eigenvalue' = 1",)),
    ("oja_components_above_dim", "oja_pca.yaml", ["params.n_components=20"],
     ("'params.n_components' = 20 exceeds", "'params.eigenvalues'")),
    ("vit_patch", "convshare_vit_mnist.yaml", ["params.patch=5"],
     ("'params.patch' = 5 does not divide",)),
    ("vit_heads", "convshare_vit_mnist.yaml", ["params.heads=5"],
     ("'params.dim' = 32 is not divisible by 'params.heads' = 5",)),
    ("optical_even_kernel", "optical4f_cnn_mnist.yaml", ["params.kernel_size=4"],
     ("'params.kernel_size' = 4 is even",)),
    ("pmnist_no_hidden", "active_dendrites_permuted_mnist.yaml", ["params.hidden=[]"],
     ("'params.hidden' is empty",)),
    ("device_scheme", "stdp_mnist_memristor.yaml", ["params.device.schemes=[foo]"],
     ("'params.device.schemes[0]': unknown update scheme 'foo'",)),
    ("device_projection", "stdp_mnist_memristor.yaml", ["params.device.projections=[exc_inh]"],
     ("'params.device.projections[0]' = 'exc_inh' is not a plastic projection",)),
    ("memristor_mapping", "memristor_mlp.yaml", ["params.schemes=[ideal:bar]"],
     ("'params.schemes[0]': unknown mapping 'bar'",)),
    ("compare_sub_params", "compare_smoke.yaml", ["params.sym_stdp={epochs: 0}"],
     ("'params.sym_stdp.epochs' = 0 is out of range", "--set 'params.sym_stdp={epochs: 0}'")),
    ("compare_shared_setting", "compare_smoke.yaml", ["params.max_rate_hz=5000"],
     ("'params.sym_stdp.presentation.intensity0' comes from 'params.max_rate_hz'",
      "--set 'params.max_rate_hz=5000'")),
    # 3. memory: a network that cannot fit is refused with the estimate
    ("n_exc_1e12", SMOKE, ["params.n_exc=1e12"],
     ("'params.n_exc' = 1,000,000,000,000 needs at least", "available",
      "use at most n_exc:")),
    ("dc_n_exc_1e9", DC, ["params.n_exc=1e9"], ("'params.n_exc' = 1,000,000,000 needs at least",)),
    # 4. user-caused errors that used to escape as "unexpected"
    ("populations_not_pairs", "dendrites_false_match.yaml", ["params.populations=[[1024]]"],
     ("'params.populations[0]' = [1024] must be an [n, a] pair",
      "--set 'params.populations=[[1024]]'")),
    ("populations_empty", "dendrites_false_match.yaml", ["params.populations=[]"],
     ("'params.populations' is empty",)),
    # 5. a bad --set value is reported at the --set argument, not at the file's line
    ("set_section_over_file_key", SMOKE, ["params.plasticity={eta_in: -1}"],
     ("'params.plasticity.eta_in' = -1.0 is out of range",
      "in --set 'params.plasticity={eta_in: -1}'")),
    ("set_section_over_data", SMOKE, ["data={n_train: 0}"],
     ("'data.n_train' = 0 is out of range", "in --set 'data={n_train: 0}'")),
    ("set_list_over_file_list", "dendrites_false_match.yaml", ["params.populations=[[1024, x]]"],
     ("'params.populations[0][1]'", "in --set 'params.populations=[[1024, x]]'")),
    ("later_set_wins", SMOKE, ["params.plasticity.eta_in=-2", "params.plasticity={eta_in: -1}"],
     ("in --set 'params.plasticity={eta_in: -1}'",)),
    ("file_value_keeps_its_line", "model: sym_stdp\nparams:\n  exc:\n    tau_m: .inf\n", [],
     ("'params.exc.tau_m' = inf is not a finite number", "line 4")),
    ("both_places_named", "dendrites_union.yaml", ["params.n=30"],
     ("'params.a' = 40 must be at most 'params.n' = 30", "in --set 'params.n=30' and ",
      "dendrites_union.yaml line")),
    # the shipped configs themselves still pass
    ("smoke_as_shipped", SMOKE, [], None),
    ("dc_as_shipped", DC, [], None),
]


@pytest.mark.parametrize("cfg, overrides, expected", [r[1:] for r in ROWS],
                         ids=[r[0] for r in ROWS])
def test_run_config_rows(tmp_path, monkeypatch, capsys, cfg, overrides, expected):
    path = config_path(tmp_path, cfg)
    args = ["run", str(path), "--out", str(tmp_path / "run"), "--quiet"]
    for o in overrides:
        args += ["--set", o]
    code, err = cli_run(args, monkeypatch, capsys)
    if expected is None:
        assert code == 0, err
    else:
        assert_clean(code, err, expected)


def test_set_error_names_the_argument_not_the_file_line(tmp_path):
    with pytest.raises(BiolearnError) as ei:
        load_config(CONFIGS / SMOKE, ["params.plasticity={eta_in: -1}"])
    assert ei.value.where == "in --set 'params.plasticity={eta_in: -1}'"


def test_memory_refusal_uses_the_machine_memory(monkeypatch):
    monkeypatch.setattr(config, "machine_memory_bytes", lambda: 1 << 30)  # a 1 GiB machine
    with pytest.raises(BiolearnError) as ei:
        load_config(CONFIGS / SMOKE, ["params.n_exc=10000"])
    msg = str(ei.value)
    assert "'params.n_exc' = 10,000 needs at least" in msg and "1 GiB" in msg
    n_max = int(msg.rsplit("n_exc: ", 1)[1].split()[0].replace(",", ""))
    from biolearn.models.sym_stdp import stdp_memory_bytes

    assert stdp_memory_bytes(n_max, 10) <= 1 << 30 < stdp_memory_bytes(n_max + 1, 10)
    assert load_config(CONFIGS / SMOKE, [f"params.n_exc={n_max}"]).params.n_exc == n_max
    monkeypatch.setattr(config, "machine_memory_bytes", lambda: None)  # unknown: no refusal
    assert load_config(CONFIGS / SMOKE, ["params.n_exc=10000"]).params.n_exc == 10000


def test_machine_memory_is_known_here():
    total = config.machine_memory_bytes()
    assert total is None or total > 1 << 20


# ---------------------------------------------------------------------------------------------
# function calls: inspect, data files
# ---------------------------------------------------------------------------------------------

def _h5_spikes_plus_dataset(p: Path) -> None:
    with h5py.File(p, "w") as f:
        g = f.create_group("spikes/exc")
        g["timestamps"] = np.array([1.0, 2.5])
        g["node_ids"] = np.array([0, 3], np.uint64)
        f["extra"] = np.arange(5)
        f["scalar"] = 3.5


def _h5_odd_attrs(p: Path) -> None:
    with h5py.File(p, "w") as f:
        f.attrs["magic"] = np.array([1, 2, 3])
        g = f.create_group("spikes/exc")
        g["timestamps"] = np.array([1.0])
        g["node_ids"] = np.array([0], np.uint64)
        g.attrs["n_nodes"] = "many"
        pres = f.create_group("presentations/test")
        pres["start_ms"] = 0.0  # a scalar where a column is expected


def _h5_spikes_dataset(p: Path) -> None:
    with h5py.File(p, "w") as f:
        f["spikes"] = np.arange(3)


INSPECT_ROWS = [
    ("spikes_group_plus_dataset", _h5_spikes_plus_dataset,
     ("SONATA spike file", "population exc: 2 spikes", "extra: int64 (5,)", "scalar: float64")),
    ("odd_attributes", _h5_odd_attrs, ("population exc: 1 spikes", "presentations test")),
    ("spikes_is_a_dataset", _h5_spikes_dataset, ("HDF5 file", "spikes: int64 (3,)")),
]


@pytest.mark.parametrize("make, fragments", [r[1:] for r in INSPECT_ROWS],
                         ids=[r[0] for r in INSPECT_ROWS])
def test_inspect_rows(tmp_path, monkeypatch, capsys, make, fragments):
    p = tmp_path / "f.h5"
    make(p)
    code, err = cli_run(["inspect", str(p)], monkeypatch, capsys)
    if code == 0:
        from biolearn.io.inspect import describe

        text = describe(p)
        for frag in fragments:
            assert frag in text, text
    else:
        assert_clean(code, err, ())


def _mnist_folder(tmp_path: Path, monkeypatch) -> tuple[Path, dict]:
    """Four small MNIST-like files whose digests stand in for the official ones."""
    from biolearn.data import mnist as mnist_mod
    from biolearn.data.idx import idx_bytes, write_idx

    rng = np.random.default_rng(0)
    arrays = {"train_images": rng.integers(0, 256, (20, 28, 28), dtype=np.uint8),
              "train_labels": (np.arange(20) % 10).astype(np.uint8),
              "test_images": rng.integers(0, 256, (10, 28, 28), dtype=np.uint8),
              "test_labels": (np.arange(10) % 10)[::-1].astype(np.uint8)}
    spec = mnist_mod.DATASETS["mnist"]
    files = tuple(dataclasses.replace(f, sha256=hashlib.sha256(idx_bytes(arrays[f.key]))
                                      .hexdigest()) for f in spec.files)
    monkeypatch.setitem(mnist_mod.DATASETS, "mnist", dataclasses.replace(spec, files=files))
    monkeypatch.setenv("BIOLEARN_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "data" / "mnist"
    folder.mkdir(parents=True)
    names = {f.key: f.name for f in spec.files}
    for key, arr in arrays.items():
        write_idx(folder / (names[key] + ".gz"), arr)
    return folder, names


def _swap_label_files(folder: Path, names: dict) -> None:
    a, b = folder / (names["train_labels"] + ".gz"), folder / (names["test_labels"] + ".gz")
    da, db = a.read_bytes(), b.read_bytes()
    a.write_bytes(db)
    b.write_bytes(da)


def _empty_file(folder: Path, names: dict) -> None:
    (folder / (names["train_images"] + ".gz")).write_bytes(b"")


def _empty_gzip(folder: Path, names: dict) -> None:
    (folder / (names["test_images"] + ".gz")).write_bytes(gzip.compress(b""))


DATA_ROWS = [
    ("swapped_label_files", _swap_label_files,
     ("wrong file: it holds MNIST's t10k-labels-idx1-ubyte, not MNIST's train-labels-idx1-ubyte "
      "expected here", "train-labels-idx1-ubyte.gz", "swapped or misnamed")),
    ("zero_byte_file", _empty_file,
     ("data file is empty (0 bytes of data)", "train-images-idx3-ubyte.gz")),
    ("empty_gzip", _empty_gzip, ("data file is empty", "t10k-images-idx3-ubyte.gz")),
]


@pytest.mark.parametrize("damage, fragments", [r[1:] for r in DATA_ROWS],
                         ids=[r[0] for r in DATA_ROWS])
def test_data_file_rows(tmp_path, monkeypatch, damage, fragments):
    from biolearn.data import load_mnist

    folder, names = _mnist_folder(tmp_path, monkeypatch)
    assert len(load_mnist(folder.parent, download=False)[0]) == 20  # intact: loads
    damage(folder, names)
    with pytest.raises(BiolearnError) as ei:
        load_mnist(folder.parent, download=False)
    msg = str(ei.value)
    assert "\n" not in msg and "checksum" not in msg
    for frag in fragments:
        assert frag in msg, msg


# ---------------------------------------------------------------------------------------------
# options of `biolearn run` checked in the command itself (biolearn/cli.py)
# ---------------------------------------------------------------------------------------------

def _nest_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("nest") is not None


CLI_ROWS = [
    ("threads_zero", ["--backend", "nest", "--threads", "0"], ("--threads",)),
    pytest.param("backend_nest_missing", ["--backend", "nest"], ("nest",),
                 marks=pytest.mark.skipif(_nest_installed(), reason="NEST is installed")),
]


@pytest.mark.parametrize("name, options, fragments", CLI_ROWS)
def test_run_option_rows(tmp_path, monkeypatch, capsys, name, options, fragments):
    from biolearn import runner
    from biolearn.cli import cli

    def no_training(*a, **kw):
        raise AssertionError("training started before the options were checked")

    monkeypatch.setattr(runner, "execute", no_training)
    capsys.readouterr()
    code = cli.main(["run", str(CONFIGS / SMOKE), "--out", str(tmp_path / "run"), "--quiet",
                     *options], standalone_mode=False)
    assert_clean(code, capsys.readouterr().err, fragments)


# ---------------------------------------------------------------------------------------------
# property-based: random overrides of every recipe's params fail only cleanly
# ---------------------------------------------------------------------------------------------

def _shipped() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for p in sorted(CONFIGS.glob("*.yaml")):
        model = (yaml.safe_load(p.read_text()) or {}).get("model")
        out.setdefault(model, p)
    return out


SHIPPED = _shipped()
RECIPES = sorted(registry.recipes())


def _keys(cls: type, prefix: str = "params") -> list[str]:
    """Every dotted key of a params dataclass: sections, fields and fields of sections."""
    hints = config._hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        tp = hints.get(f.name, f.type)
        key = f"{prefix}.{f.name}"
        out.append(key)
        if dataclasses.is_dataclass(tp):
            out += _keys(tp, key)
        for arg in typing.get_args(tp):  # list[Section], dict[str, Section]
            if dataclasses.is_dataclass(arg):
                out += _keys(arg, f"{key}[0]" if typing.get_origin(tp) is list else key)
    return out


_scalars = st.one_of(
    st.none(), st.booleans(), st.text(max_size=8),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 1, 2, 0.0, -0.5, 1e308, -1e308, 1e-320, float("inf"),
                     float("-inf"), float("nan"), "", "abc", "1e3", ".inf", 10**20]),
)
_values = st.one_of(_scalars, st.lists(_scalars, max_size=3),
                    st.lists(st.lists(_scalars, max_size=3), max_size=2),
                    st.dictionaries(st.sampled_from(["a", "n", "x"]), _scalars, max_size=2))


def _set(data: dict, key: str, value: Any) -> None:
    """Set a dotted key (``a.b[0].c``) in plain data, creating sections; skip what cannot be."""
    parts = key.replace("[0]", ".[0]").split(".")
    node: Any = data
    for part in parts[:-1]:
        if part == "[0]":
            if not (isinstance(node, list) and node and isinstance(node[0], dict)):
                return
            node = node[0]
            continue
        nxt = node.get(part) if isinstance(node, dict) else None
        if nxt is None:
            nxt = node[part] = {}
        if not isinstance(nxt, (dict, list)):
            return
        node = nxt
    if isinstance(node, dict):
        node[parts[-1]] = value


@pytest.mark.parametrize("model", RECIPES)
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.data_too_large])
@given(data=st.data())
def test_random_overrides_fail_only_cleanly(model, data):
    keys = _keys(registry.get_recipe(model).params)
    base = yaml.safe_load(SHIPPED[model].read_text()) if model in SHIPPED else {"model": model}
    cfg = {**base, "model": model}
    if keys:
        for _ in range(data.draw(st.integers(1, 3), label="n_overrides")):
            cfg = yaml.safe_load(yaml.safe_dump(cfg))  # a fresh deep copy
            _set(cfg, data.draw(st.sampled_from(keys), label="key"),
                 data.draw(_values, label="value"))
    try:
        run_cfg = config.config_from_dict(cfg)
    except BiolearnError as e:
        msg = str(e)
        assert msg and "\n" not in msg and "unexpected" not in msg
    else:
        # what validates also survives the resolved-config round trip
        again = config.config_from_dict(yaml.safe_load(dump_yaml(run_cfg)))
        assert dump_yaml(again) == dump_yaml(run_cfg)
