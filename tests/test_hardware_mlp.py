"""The crossbar MLP: an ideal-parameter device learns like software backprop; recipe smoke run."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from biolearn.hardware.presets import device_from_dict
from biolearn.models.memristor_mlp import (
    MemristorMLPParams,
    preprocess,
    train_hardware,
    train_software,
)

MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


def _idx(path: Path) -> np.ndarray:
    raw = gzip.open(path).read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * k:8 + 4 * k], "big") for k in range(ndim)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)


@pytest.fixture(scope="module")
def mnist_subset():
    if not (MNIST / "train-images-idx3-ubyte.gz").exists():
        pytest.skip("full MNIST copy not present next to the repository")
    xtr = _idx(MNIST / "train-images-idx3-ubyte.gz")[:5000]
    ytr = _idx(MNIST / "train-labels-idx1-ubyte.gz")[:5000]
    xte = _idx(MNIST / "t10k-images-idx3-ubyte.gz")[:2000]
    yte = _idx(MNIST / "t10k-labels-idx1-ubyte.gz")[:2000]
    return (preprocess(xtr, 20), ytr.astype(np.int64), preprocess(xte, 20),
            yte.astype(np.int64))


def test_ideal_device_learns_like_software_bp(mnist_subset):
    # ideal parameters: linear, 4096 levels, no noise or variation; analog converters
    p = MemristorMLPParams(epochs=2, images_per_epoch=4000, hidden_bits=0, adc_bits=0, n_hidden=50)
    dev = device_from_dict({"base": "ideal", "levels": 4096})
    sw = train_software(p, mnist_subset, np.random.default_rng(0))
    hw = train_hardware(dev, "bidirectional", "offset", p, mnist_subset, np.random.default_rng(0))
    assert sw["test_accuracy"] > 0.75  # it learns at all
    assert abs(hw["test_accuracy"] - sw["test_accuracy"]) < 0.02
    assert hw["pulses"] > 0


def test_recipe_writes_table_and_figures(mnist_subset, tmp_path, monkeypatch):
    from biolearn.config import DataConfig, RunConfig
    from biolearn.models import memristor_mlp
    from biolearn.runner import RunContext

    monkeypatch.setattr("biolearn.data.load_mnist", lambda *a, **k: (
        np.zeros((50, 28, 28), np.uint8) + 200, np.arange(50) % 10,
        np.zeros((20, 28, 28), np.uint8) + 200, np.arange(20) % 10))
    p = MemristorMLPParams(epochs=1, images_per_epoch=50, devices=["ideal", "mine"],
                           custom_devices={"mine": {"base": "pcmo", "sigma_c2c": 0.0}},
                           schemes=["bidirectional:offset", "unidirectional"])
    cfg = RunConfig(model="memristor_mlp", name="t", seed=0, data=DataConfig(), params=p)
    ctx = RunContext(tmp_path, 0, quiet=True)
    m = memristor_mlp.run(cfg, ctx)
    json.dumps(m)
    assert len(m["table"]) == 1 + 2 * 2
    assert {r["device"] for r in m["table"]} == {"software", "ideal", "mine"}
    assert "uni_minus_bi/ideal" not in m  # needs bidirectional:differential too
    for f in ("results_table.md", "results_table.csv", "device_curves.png",
              "accuracy_by_device.png"):
        assert (tmp_path / f).exists(), f
    assert 0.0 <= m["test_accuracy"] <= 1.0
