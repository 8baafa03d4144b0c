"""The crossbar MLP: an ideal-parameter device learns like software backprop; recipe smoke run."""

from __future__ import annotations

import json

import numpy as np
import pytest
from mnist_data import mnist_root

from biolearn.hardware.presets import device_from_dict
from biolearn.models.memristor_mlp import (
    MemristorMLPParams,
    neurosim_initial_write,
    preprocess,
    train_hardware,
    train_software,
)


@pytest.fixture(scope="module")
def mnist_subset():
    from biolearn.data import load_mnist

    root = mnist_root()
    if root is None:
        pytest.skip("full MNIST copy not found (set BIOLEARN_DATA)")
    xtr, ytr, xte, yte = load_mnist(root, n_train=5000, n_test=2000, download=False, quiet=True)
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


def test_ideal_preset_with_neurosim_periphery_learns_like_software(mnist_subset):
    # Table I "ideal" device (64 levels, linear) with NeuroSim's hardware protocol: 1-bit
    # inputs and hidden activations into the arrays, 8-bit ADC, NeuroSim pulse quantisation
    p = MemristorMLPParams(epochs=2, images_per_epoch=4000, n_hidden=50)
    sw = train_software(p, mnist_subset, np.random.default_rng(0))
    hw = train_hardware(device_from_dict("ideal"), "bidirectional", "offset", p, mnist_subset,
                        np.random.default_rng(0))
    assert sw["test_accuracy"] > 0.8
    assert hw["test_accuracy"] > sw["test_accuracy"] - 0.05


def test_coincidence_scheme_learns_like_software(mnist_subset):
    # Gokmen & Vlasov 2016: stochastic pulse-coincidence outer-product updates (BL = 10) on the
    # Table I ideal device, differential pairs, NeuroSim periphery
    p = MemristorMLPParams(epochs=2, images_per_epoch=4000, n_hidden=50)
    sw = train_software(p, mnist_subset, np.random.default_rng(0))
    hw = train_hardware(device_from_dict("ideal"), "coincidence", "differential", p,
                        mnist_subset, np.random.default_rng(0))
    assert hw["test_accuracy"] > sw["test_accuracy"] - 0.03
    assert hw["pulses"] > 0


def test_neurosim_initial_write_closed_form():
    # MLP+NeuroSim v3 WeightToConductance: G = (w + 1)/2 * (G_max - G_min), clipped at G_min,
    # read back as w' = 2 (G - G_min)/(G_max - G_min) - 1
    w = np.arange(-3, 4) / 3.0
    for on_off in (2.0, 6.84, 12.5, 50.0):
        g_min, g_max = 1.0 / on_off, 1.0
        g = np.clip((w + 1) / 2 * (g_max - g_min), g_min, g_max)
        expect = 2 * (g - g_min) / (g_max - g_min) - 1
        np.testing.assert_allclose(neurosim_initial_write(w, on_off, 1.0), expect, atol=1e-12)
    assert np.all(neurosim_initial_write(w, 2.0, 1.0) == -1.0)  # TaOx/TiO2: every weight at -1


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
    # every image is the same, so each network predicts one class for all 20 test images, whose
    # labels hold each class twice: exactly 2 / 20 correct, whatever the class
    assert m["test_accuracy"] == 0.1
    assert [r["test_accuracy"] for r in m["table"]] == [0.1] * len(m["table"])


@pytest.mark.parametrize("readout", ["mid_reference", "gmax_reference"])
def test_forward_readout_closed_form(readout):
    # mid reference (NeuroSim v3): preact = scale * sum x (2 (G - G_min)/dG - 1);
    # G_max reference (v1/v2): preact = scale * sum x (2 G / G_max - 1)
    from biolearn.models.memristor_mlp import HardwareMLP, build_hardware_mlp

    rng = np.random.default_rng(3)
    dev = device_from_dict({"base": "pcmo", "sigma_c2c": 0.0})
    p = MemristorMLPParams(n_hidden=7, dac_bits=0, hidden_bits=0, adc_bits=0, readout=readout,
                           preact_scale=0.7)
    net: HardwareMLP = build_hardware_mlp(dev, "bidirectional", "offset", p, 12, 3, rng)
    x = rng.random((5, 12))
    g1 = net.l1.syn.pos.g.reshape(12, 7)
    g2 = net.l2.syn.pos.g.reshape(7, 3)
    if readout == "mid_reference":
        def wf(g):
            return 2 * (g - dev.g_min) / (dev.g_max - dev.g_min) - 1
    else:
        def wf(g):
            return 2 * g / dev.g_max - 1
    h = 1 / (1 + np.exp(-0.7 * (x @ wf(g1))))
    o = 1 / (1 + np.exp(-0.7 * (h @ wf(g2))))
    pred = net.predict(x, 0)
    np.testing.assert_array_equal(pred, np.argmax(o, axis=1))
    from biolearn.models.memristor_mlp import _forward_hw

    s = net.l1.syn
    args = net._dev_args()
    hh, a1, oo, a2 = np.empty(7), np.empty(7), np.empty(3), np.empty(3)
    _forward_hw(x[0], 12, 7, 3, args[0], args[1], args[3], args[4], args[6], args[7], args[9],
                args[10], s.mapping_code, s.pos.nominal, s.w_max, False, *net._periph(), hh,
                a1, oo, a2)
    np.testing.assert_allclose(a1, h[0], rtol=1e-10)
    np.testing.assert_allclose(a2, o[0], rtol=1e-10)
