"""Run store: weights.h5 round trip and compression, atomic JSON, provenance."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess

import h5py
import numpy as np
import pytest

import biolearn
from biolearn.errors import BiolearnError
from biolearn.io import (
    git_info,
    load_weights,
    provenance,
    read_json,
    save_weights,
    to_jsonable,
    write_json_atomic,
)


def test_weights_round_trip_compressed(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {
        "exc/weights": rng.random((784, 400)).astype(np.float32),
        "exc/theta_mV": rng.normal(size=400),
        "inh/mask": rng.random((10, 10)) > 0.5,
        "step": np.int64(12),
        "empty": np.zeros((0, 3)),
        "classes": np.array(["zero", "one"]),
    }
    attrs = {"seed": 3, "eta": 0.01, "model": "sym_stdp", "shape": [784, 400],
             "config": {"params": {"tau_ms": 20.0}, "note": None}}
    p = save_weights(tmp_path / "weights.h5", arrays, attrs)
    got, got_attrs = load_weights(p)
    assert set(got) == set(arrays)
    for key, value in arrays.items():
        np.testing.assert_array_equal(got[key], value)
        if key != "classes":
            assert got[key].dtype == np.asarray(value).dtype
    assert list(got["classes"]) == ["zero", "one"]
    np.testing.assert_array_equal(got_attrs.pop("shape"), [784, 400])
    assert got_attrs == {"seed": 3, "eta": 0.01, "model": "sym_stdp",
                         "config": {"params": {"tau_ms": 20.0}, "note": None}}
    with h5py.File(p, "r") as f:
        assert f["exc/weights"].compression == "gzip"
        assert f["exc/weights"].shuffle
    # gzip + shuffle must beat the raw size on compressible data (a smooth ramp)
    ramp = {"w": np.tile(np.linspace(0, 1, 1000, dtype=np.float32), (200, 1))}
    save_weights(tmp_path / "ramp.h5", ramp)
    assert (tmp_path / "ramp.h5").stat().st_size < ramp["w"].nbytes / 5


def test_failed_save_keeps_previous_file(tmp_path):
    p = tmp_path / "weights.h5"
    save_weights(p, {"w": np.ones(3)}, {"version": 1})
    with pytest.raises(BiolearnError, match="unsupported dtype"):
        save_weights(p, {"w": np.zeros(3), "bad": np.array([object(), object()])})
    arrays, attrs = load_weights(p)
    np.testing.assert_array_equal(arrays["w"], np.ones(3))
    assert attrs == {"version": 1}
    assert sorted(x.name for x in tmp_path.iterdir()) == ["weights.h5"]


def test_load_weights_errors(tmp_path):
    with pytest.raises(BiolearnError, match="not found"):
        load_weights(tmp_path / "missing.h5")
    (tmp_path / "w.h5").write_bytes(b"\x00" * 100)
    with pytest.raises(BiolearnError, match="not an HDF5 file"):
        load_weights(tmp_path / "w.h5")


def test_json_atomic_converts_numpy_and_is_strict(tmp_path):
    obj = {"metrics": {"test_accuracy": np.float32(0.9), "n": np.int64(7),
                       "confusion": np.eye(2, dtype=np.int32), "loss": float("nan"),
                       "ok": np.bool_(True)},
           "path": tmp_path, "tags": {"b", "a"}, "pair": (1, 2)}
    p = write_json_atomic(tmp_path / "results.json", obj)
    text = p.read_text()
    assert "NaN" not in text

    def reject(token: str) -> None:
        raise AssertionError(f"non-standard JSON token {token}")

    data = json.loads(text, parse_constant=reject)
    assert data["metrics"] == {"test_accuracy": 0.9, "n": 7, "confusion": [[1, 0], [0, 1]],
                               "loss": None, "ok": True}
    assert data["path"] == str(tmp_path) and data["tags"] == ["a", "b"] and data["pair"] == [1, 2]
    assert read_json(p) == data
    with pytest.raises(TypeError):
        write_json_atomic(p, {"x": object()})
    assert read_json(p) == data  # the failed write left the old file
    assert sorted(x.name for x in tmp_path.iterdir()) == ["results.json"]
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(BiolearnError, match="malformed JSON"):
        read_json(tmp_path / "bad.json")
    assert to_jsonable(np.float64(np.inf)) is None


def test_provenance_fields():
    before = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    info = provenance(seed=5)
    after = dt.datetime.now(dt.timezone.utc)
    assert info["biolearn_version"] == biolearn.__version__
    assert info["numpy"] == np.__version__ and info["h5py"] == h5py.__version__
    assert info["seed"] == 5 and "git_commit" in info and "python" in info
    t = dt.datetime.fromisoformat(info["time_utc"].replace("Z", "+00:00"))
    assert before <= t <= after
    json.dumps(info)  # JSON-ready as is


@pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")
def test_git_info_reads_commit(tmp_path):
    assert git_info(tmp_path) == {"git_commit": None, "git_dirty": None}  # not a checkout

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(tmp_path), *args], check=True,
                              capture_output=True, text=True).stdout.strip()

    git("init", "-q")
    (tmp_path / "a.txt").write_text("1")
    git("add", "a.txt")
    git("-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-q", "-m", "x")
    info = git_info(tmp_path)
    assert info["git_commit"] == git("log", "-1", "--format=%H") and len(info["git_commit"]) == 40
    assert info["git_dirty"] is False
    (tmp_path / "a.txt").write_text("2")
    assert git_info(tmp_path)["git_dirty"] is True
    sub = tmp_path / "sub"
    sub.mkdir()
    assert git_info(sub)["git_commit"] is None  # only the checkout's own root counts
