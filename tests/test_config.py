"""YAML → typed config: type coercion, range/choice checks, dotted overrides, clean errors."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from biolearn import registry
from biolearn.config import (
    DataConfig,
    RunConfig,
    dump_yaml,
    load_config,
    param,
    parse_override,
    to_dict,
)
from biolearn.errors import BiolearnError
from biolearn.runner import resolve_data_root


@dataclass
class Inner:
    gain: float = param(1.0, "gain", min=0.0, max=10.0)
    mode: str = param("fast", "mode", choices=["fast", "exact"])


@dataclass
class ToyParams:
    n_neurons: int = param(10, "number of neurons", min=1)
    lr: float = param(0.01, "learning rate", min=0.0)
    plastic: bool = param(True, "learn or freeze")
    label: str = param("x", "free text")
    limit: int | None = param(None, "optional cap", min=0)
    sizes: list[int] = param(factory=lambda: [2, 3], help="layer sizes", min=1)
    shape: tuple[int, int] = param((28, 28), "image shape")
    inner: Inner = param(factory=Inner, help="nested section")


def _toy_run(cfg, ctx) -> dict:
    return {}


@pytest.fixture(autouse=True, scope="module")
def toy_recipe():
    registry.recipes()  # load the real ones first so ours is not shadowed by a later load
    registry._RECIPES["toy_cfg"] = registry.Recipe("toy_cfg", ToyParams, _toy_run, "toy")
    yield
    registry._RECIPES.pop("toy_cfg", None)


def write(tmp_path: Path, text: str, name: str = "toy.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


BASE = "model: toy_cfg\nname: toy\nseed: 3\nparams:\n  n_neurons: 5\n  inner:\n    gain: 2\n"


def err(excinfo) -> str:
    return str(excinfo.value)


def test_loads_types_defaults_and_nested(tmp_path):
    cfg = load_config(write(tmp_path, BASE), [], None)
    assert isinstance(cfg, RunConfig) and cfg.model == "toy_cfg" and cfg.name == "toy"
    assert cfg.seed == 3 and isinstance(cfg.data, DataConfig) and cfg.data.dataset == "mnist"
    p = cfg.params
    assert isinstance(p, ToyParams) and p.n_neurons == 5 and p.lr == 0.01
    # int accepted for a float field, and converted
    assert isinstance(p.inner, Inner) and p.inner.gain == 2.0 and type(p.inner.gain) is float
    assert p.shape == (28, 28) and p.sizes == [2, 3] and p.limit is None


def test_name_defaults_to_file_stem_and_seed_override(tmp_path):
    cfg = load_config(write(tmp_path, "model: toy_cfg\n", "my_exp.yaml"), [], 42)
    assert cfg.name == "my_exp" and cfg.seed == 42 and cfg.params == ToyParams()


def test_overrides_with_yaml_scalar_coercion(tmp_path):
    cfg = load_config(write(tmp_path, BASE), [
        "params.lr=1e-3",            # PyYAML reads 1e-3 as a string: accepted for a float
        "params.plastic=false",
        "params.limit=7",
        "params.sizes=[4, 5, 6]",
        "params.shape=[8, 9]",
        "params.inner.mode=exact",
        "params.label=123",         # a number is fine for a string field
        "data.n_train=1000",
        "name=other",
    ], None)
    p = cfg.params
    assert p.lr == pytest.approx(1e-3) and p.plastic is False and p.limit == 7
    assert p.sizes == [4, 5, 6] and p.shape == (8, 9) and p.inner.mode == "exact"
    assert p.label == "123" and cfg.data.n_train == 1000 and cfg.name == "other"
    # null resets an Optional
    cfg2 = load_config(write(tmp_path, BASE), ["params.limit=7", "params.limit=null"], None)
    assert cfg2.params.limit is None


def test_override_creates_missing_sections(tmp_path):
    cfg = load_config(write(tmp_path, "model: toy_cfg\n"), ["params.inner.gain=3.5"], None)
    assert cfg.params.inner.gain == 3.5 and cfg.params.n_neurons == 10


@pytest.mark.parametrize("override, fragment", [
    ("params.plastic=yes please", "expected true or false"),
    ("params.plastic=1", "expected true or false"),        # no bool <- int
    ("params.plastic='true'", "expected true or false"),   # no bool <- str
    ("params.n_neurons=2.5", "expected an integer"),
    ("params.n_neurons=true", "expected an integer"),
    ("params.lr=abc", "expected a number"),
    ("params.sizes=3", "expected a list"),
    ("params.shape=[1, 2, 3]", "a list of 2 items"),
    ("params.inner=5", "expected a mapping"),
])
def test_wrong_types_name_key_and_expectation(tmp_path, override, fragment):
    with pytest.raises(BiolearnError) as ei:
        load_config(write(tmp_path, BASE), [override], None)
    key = override.split("=")[0]
    assert f"'{key}" in err(ei) and fragment in err(ei) and "--set" in err(ei)


def test_wrong_type_inside_list_names_index_and_line(tmp_path):
    text = BASE + "  sizes: [1, two]\n"
    with pytest.raises(BiolearnError) as ei:
        load_config(write(tmp_path, text), [], None)
    assert "'params.sizes[1]'" in err(ei) and "line 8" in err(ei)


@pytest.mark.parametrize("override, fragment", [
    ("params.n_neurons=0", "at least 1"),
    ("params.lr=-0.5", "at least 0.0"),
    ("params.inner.gain=11", "between 0.0 and 10.0"),
    ("params.sizes=[1, 0]", "at least 1"),
    ("params.limit=-1", "at least 0"),
])
def test_out_of_range(tmp_path, override, fragment):
    with pytest.raises(BiolearnError) as ei:
        load_config(write(tmp_path, BASE), [override], None)
    assert "out of range" in err(ei) and fragment in err(ei)


def test_choices_with_suggestion(tmp_path):
    with pytest.raises(BiolearnError) as ei:
        load_config(write(tmp_path, BASE), ["params.inner.mode=exakt"], None)
    assert "'params.inner.mode'" in err(ei) and "did you mean 'exact'" in err(ei)
    assert "fast, exact" in err(ei)


def test_unknown_dataset_with_suggestion(tmp_path):
    with pytest.raises(BiolearnError) as ei:
        load_config(write(tmp_path, BASE + "data:\n  dataset: fashion\n"), [], None)
    assert "'data.dataset'" in err(ei) and "did you mean 'fashion_mnist'" in err(ei)
    assert "line 9" in err(ei)


def test_unknown_keys_name_path_allowed_and_hint(tmp_path):
    with pytest.raises(BiolearnError) as ei:
        load_config(write(tmp_path, BASE + "  inner_x: 1\n"), [], None)
    assert "unknown key 'params.inner_x'" in err(ei) and "did you mean 'inner'" in err(ei)
    assert "n_neurons" in err(ei) and "line 8" in err(ei)
    with pytest.raises(BiolearnError) as ei:
        load_config(write(tmp_path, BASE), ["params.inner.gian=1"], None)
    assert "unknown key 'params.inner.gian'" in err(ei) and "did you mean 'gain'" in err(ei)
    assert "--set 'params.inner.gian=1'" in err(ei)
    with pytest.raises(BiolearnError) as ei:
        load_config(write(tmp_path, "modle: toy_cfg\n"), [], None)
    assert "unknown key 'modle'" in err(ei) and "did you mean 'model'" in err(ei)


def test_unknown_model_suggests_closest(tmp_path):
    with pytest.raises(BiolearnError) as ei:
        load_config(write(tmp_path, "model: toy_cgf\n"), [], None)
    assert "unknown model 'toy_cgf'" in err(ei) and "did you mean 'toy_cfg'" in err(ei)


def test_yaml_syntax_error_has_line(tmp_path):
    with pytest.raises(BiolearnError) as ei:
        load_config(write(tmp_path, "model: toy_cfg\nparams:\n  lr: [0.1\n  n: 2\n"), [], None)
    assert "invalid YAML" in err(ei) and "line " in err(ei)
    with pytest.raises(BiolearnError) as ei:
        load_config(write(tmp_path, "model: toy_cfg\n\tparams: 1\n"), [], None)
    assert "line 2" in err(ei)


def test_duplicate_key_rejected(tmp_path):
    with pytest.raises(BiolearnError) as ei:
        load_config(write(tmp_path, BASE + "  n_neurons: 6\n"), [], None)
    assert "duplicate key 'params.n_neurons'" in err(ei) and "line 8" in err(ei)


@pytest.mark.parametrize("text", ["- a\n- b\n", "just text\n", "42\n"])
def test_top_level_must_be_mapping(tmp_path, text):
    with pytest.raises(BiolearnError, match="must be a mapping"):
        load_config(write(tmp_path, text), [], None)


def test_missing_file_and_missing_model(tmp_path):
    with pytest.raises(BiolearnError, match="does not exist"):
        load_config(tmp_path / "absent.yaml", [], None)
    with pytest.raises(BiolearnError, match="missing key 'model'"):
        load_config(write(tmp_path, "name: x\n"), [], None)
    with pytest.raises(BiolearnError, match="not UTF-8"):
        p = tmp_path / "bin.yaml"
        p.write_bytes(b"model: \xff\xfe\n")
        load_config(p, [], None)


@pytest.mark.parametrize("seed", [-1, 2**32])
def test_seed_range(tmp_path, seed):
    with pytest.raises(BiolearnError, match="seed"):
        load_config(write(tmp_path, BASE), [], seed)


def test_override_into_scalar_and_malformed(tmp_path):
    with pytest.raises(BiolearnError, match="is a value, not a section"):
        load_config(write(tmp_path, BASE), ["params.n_neurons.x=1"], None)
    with pytest.raises(BiolearnError, match="--set 'params.lr.x=1'"):
        load_config(write(tmp_path, BASE), ["params.lr.x=1"], None)
    for bad in ["noequals", "=1", "a..b=1", "params.1x=2", " =3"]:
        with pytest.raises(BiolearnError, match="malformed"):
            load_config(write(tmp_path, BASE), [bad], None)


def test_resolved_yaml_round_trips(tmp_path):
    cfg = load_config(write(tmp_path, BASE), ["params.shape=[4, 7]", "params.lr=0.5"], None)
    d = to_dict(cfg)
    assert d["params"]["shape"] == [4, 7] and d["params"]["inner"] == {"gain": 2.0, "mode": "fast"}
    assert yaml.safe_load(dump_yaml(cfg)) == d
    again = load_config(write(tmp_path, dump_yaml(cfg), "resolved.yaml"), [], None)
    assert again == cfg


def test_real_example_config_loads():
    path = Path(__file__).resolve().parent.parent / "configs" / "example_lif.yaml"
    cfg = load_config(path, [], None)
    assert cfg.model == "example_lif" and cfg.data.dataset == "none"


def test_data_root_resolution_order(monkeypatch, tmp_path):
    monkeypatch.setenv("BIOLEARN_DATA", str(tmp_path / "env"))
    assert resolve_data_root("/cli", "/cfg") == "/cli"
    assert resolve_data_root(None, "/cfg") == "/cfg"
    assert resolve_data_root(None, None) == str(tmp_path / "env")
    monkeypatch.delenv("BIOLEARN_DATA")
    assert resolve_data_root(None, None) == str(Path.home() / ".cache" / "biolearn")


# ---- property-based: the override parser and the whole loader fail only cleanly -------------

@given(st.text(max_size=60))
def test_parse_override_never_raises_anything_else(text):
    try:
        parts, _ = parse_override(text)
    except BiolearnError as e:
        assert str(e) and "\n" not in str(e)
    else:
        assert parts and all(parts)


_keys = st.sampled_from(["params", "params.lr", "params.n_neurons", "params.inner",
                         "params.inner.gain", "params.inner.mode", "params.sizes", "params.shape",
                         "params.plastic", "params.limit", "data", "data.dataset", "data.n_train",
                         "seed", "name", "model", "params.nope", "zzz", "params.lr.x"])
_values = st.one_of(
    st.text(max_size=20),
    st.integers(-5, 2**40).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["true", "false", "null", "[]", "{}", "[1, 2]", "{a: 1}", "- x", "[",
                     "!!python/name:os.system", "2020-99-99", "1e3", ".inf", "'quoted'"]),
)


@given(st.lists(st.one_of(st.tuples(_keys, _values).map(lambda kv: f"{kv[0]}={kv[1]}"),
                          st.text(max_size=30)), max_size=4))
def test_loader_with_arbitrary_overrides_fails_only_cleanly(tmp_path_factory, overrides):
    path = tmp_path_factory.getbasetemp() / "hyp_toy.yaml"
    if not path.exists():
        path.write_text(BASE)
    try:
        cfg = load_config(path, overrides, None)
    except BiolearnError as e:
        assert str(e) and "\n" not in str(e)
    else:
        assert isinstance(cfg.params, ToyParams)
        assert isinstance(cfg.params.plastic, bool) and isinstance(cfg.params.lr, float)
