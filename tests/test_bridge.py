"""PyTorch bridge: torch twin and snntorch conversions, energy counts, gradient baselines,
``biolearn compare``.

References: the engine itself (an independent implementation of the same update), closed-form
CUBA responses, snntorch's own Leaky neurons, the snntorch tutorial (93.87 % after one epoch).
"""

from __future__ import annotations

import csv
import dataclasses
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from mnist_data import mnist_root, needs_mnist  # noqa: E402

from biolearn.bridge import energy  # noqa: E402
from biolearn.bridge.conversion import (  # noqa: E402
    from_snntorch,
    run_snntorch_stack,
    spikes_to_tensor,
    to_network,
    to_snntorch,
    to_torch,
)
from biolearn.engine import (  # noqa: E402
    LIF,
    Network,
    SpikeMonitor,
    SpikeSource,
    StateMonitor,
    connect,
)

torch.set_num_threads(1)


def _small_net(integration: str, synapse: str, seed: int = 1):
    rng = np.random.default_rng(seed)
    dt, T, n_in = 0.5, 400, 20
    flat = rng.choice(T * n_in, 300, replace=False)
    idx, times = flat % n_in, (flat // n_in) * dt
    net = Network(dt=dt)
    net.add(SpikeSource("in", n_in, idx, times))
    kw = dict(synapse=synapse, integration=integration, tau_m=10.0, v_rest=-65.0, v_reset=-70.0,
              v_thresh=-55.0, t_ref=2.0, tau_e=3.0, tau_i=5.0, e_e=0.0, e_i=-80.0)
    net.add(LIF("h", 12, **kw))
    net.add(LIF("o", 4, **kw))
    sc = 1.0 if synapse == "current" else 0.05
    net.connect(connect.dense("in_h", "in", "h", rng.uniform(0, 8 * sc, (n_in, 12))))
    net.connect(connect.dense("h_o", "h", "o", rng.uniform(0, 10 * sc, (12, 4))))
    net.connect(connect.fixed_probability("h_o_i", "h", "o", 12, 4, 0.5, rng.uniform(0, 3 * sc, 1),
                                          rng, target="i", delay=1.0))
    net.monitor(SpikeMonitor(["h", "o"]))
    net.monitor(StateMonitor("o", "v"))
    return net, idx, times, T


def _dense_spikes(t_ms, ids, dt, T, n):
    s = np.zeros((T, n))
    np.add.at(s, (np.round(np.asarray(t_ms) / dt).astype(int), np.asarray(ids, int)), 1)
    return s


@pytest.mark.parametrize("integration,synapse", [
    ("exact", "current"), ("euler", "current"), ("euler_expsyn", "current"),
    ("euler", "conductance"), ("exact", "conductance")])
def test_torch_twin_identical_spike_trains(integration, synapse):
    net, idx, times, T = _small_net(integration, synapse)
    sim = net.compile(0)
    rec = sim.run(steps=T)
    module = to_torch(net)
    out = module(spikes_to_tensor(idx, times, 20, T, net.dt), record_v=True)
    for pop, n in (("h", 12), ("o", 4)):
        ref = _dense_spikes(*rec["spikes"][pop], net.dt, T, n)
        assert ref.sum() > 10  # the test must exercise spiking
        np.testing.assert_array_equal(out[pop][:, 0].detach().numpy(), ref)
    np.testing.assert_allclose(out["o.v"][:, 0].detach().numpy(), rec["states"]["o.v"],
                               rtol=0, atol=1e-9)


def test_weights_round_trip_exactly_including_sparse_and_trained():
    net, *_ = _small_net("exact", "current")
    sim = net.compile(0)
    sim.set_weights("in_h", sim.weights("in_h") * 1.37)  # "trained" weights live in the sim
    module = to_torch(net, sim)
    with torch.no_grad():  # a torch-side update must come back too
        module.weights["h_o"].add_(0.125)
    back = to_network(module).compile(0)
    np.testing.assert_array_equal(back.weights("in_h"), sim.weights("in_h"))
    np.testing.assert_array_equal(back.weights("h_o"), sim.weights("h_o") + 0.125)
    np.testing.assert_array_equal(back.weights("h_o_i"), sim.weights("h_o_i"))  # sparse order
    q0 = net.projections[2]
    q1 = back.net.projections[2]
    assert sorted(zip(q0.i, q0.j, strict=True)) == sorted(zip(q1.i, q1.j, strict=True))


def test_twin_matches_closed_form_cuba_psp():
    """One input spike of weight w into an exact CUBA neuron (no threshold reached):
    v(t) − v_rest = w·τe/(τe − τm)·(e^{−t/τe} − e^{−t/τm}) (Brette et al. 2007 CUBA kernel)."""
    dt, taum, taue, w = 0.1, 20.0, 5.0, 2.0
    net = Network(dt=dt)
    net.add(SpikeSource("in", 1, [0], [0.0]))
    net.add(LIF("n", 1, synapse="current", integration="exact", tau_m=taum, tau_e=taue,
                v_rest=-65.0, v_thresh=0.0))
    net.connect(connect.dense("w", "in", "n", np.array([[w]])))
    out = to_torch(net)(spikes_to_tensor([0], [0.0], 1, 500, dt), record_v=True)
    v = out["n.v"][:, 0, 0].detach().numpy() + 65.0
    t = np.arange(500) * dt  # input delivered at the end of step 0, v recorded after step k
    ref = w * taue / (taue - taum) * (np.exp(-t / taue) - np.exp(-t / taum))
    np.testing.assert_allclose(v, ref, rtol=1e-12, atol=1e-12)


def test_twin_is_trainable_by_bptt():
    net, idx, times, T = _small_net("exact", "current")
    module = to_torch(net)
    out = module(spikes_to_tensor(idx, times, 20, T, net.dt))
    out["o"].sum().backward()
    g = module.weights["in_h"].grad
    assert g is not None and torch.isfinite(g).all() and g.abs().sum() > 0


def test_snntorch_leaky_stack_runs_identically_in_the_engine():
    snn = pytest.importorskip("snntorch")
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(30, 20), snn.Leaky(beta=0.9, reset_mechanism="zero"),
        torch.nn.Linear(20, 5), snn.Leaky(beta=0.8, threshold=0.7, reset_mechanism="zero"),
    ).double()
    with torch.no_grad():
        model[0].weight.mul_(3.0)
        model[0].bias.add_(0.05)
    T = 200
    x = (torch.rand(T, 1, 30, generator=torch.Generator().manual_seed(1)) < 0.1).double()
    ref = run_snntorch_stack(model, x)
    net = from_snntorch(model, dt=1.0)
    net.monitor(SpikeMonitor(["layer1", "layer2"]))
    st, si = np.nonzero(x[:, 0].numpy())
    net.population("input").indices, net.population("input").times = si, st * 1.0
    rec = net.compile(0).run(steps=T + 2)
    for k, name in enumerate(("layer1", "layer2")):
        got = _dense_spikes(*rec["spikes"][name], 1.0, T + 2, ref[k].shape[2])
        assert ref[k].sum() > 5
        np.testing.assert_array_equal(got[k + 1:k + 1 + T], ref[k][:, 0].numpy())  # k+1 late
    back = to_snntorch(net)
    for a, b in zip(model.parameters(), back.parameters(), strict=True):
        np.testing.assert_allclose(b.detach().numpy(), a.detach().numpy(), rtol=1e-14, atol=0)
    assert float(back[1].beta) == pytest.approx(float(model[1].beta), rel=1e-7)  # float32
    assert float(back[3].threshold) == pytest.approx(0.7, rel=1e-7)


def test_energy_counts():
    assert energy.mlp_macs([784, 400, 10]) == 784 * 400 + 400 * 10
    assert energy.feedforward_events([3.0, 2.0], [400, 10]) == 1220.0
    net = Network(dt=1.0)
    net.add(SpikeSource("a", 3))
    net.add(LIF("b", 4))
    net.connect(connect.dense("ab", "a", "b", np.ones((3, 4))))
    net.connect(connect.one_to_one("bb", "b", "b", 4, 1.0, delay=1.0))
    fan = energy.fan_out(net)
    np.testing.assert_array_equal(fan["a"], [4, 4, 4])
    np.testing.assert_array_equal(fan["b"], [1, 1, 1, 1])
    # 2 spikes of a0 (4 targets each) + 1 spike of b3 (1 target)
    assert energy.network_events({"a": [2, 0, 0], "b": [0, 0, 0, 1]}, fan) == 9.0


# ------------------------------------------------------------------------------ compare command
def _fake_mnist(tmp_path, monkeypatch, n_train=40, n_test=20):
    from biolearn.data import idx as idx_mod
    from biolearn.data import mnist as mnist_mod

    rng = np.random.default_rng(0)
    y_tr, y_te = np.arange(n_train) % 10, np.arange(n_test) % 10
    proto = rng.integers(0, 256, (10, 28, 28))
    arrays = {"train-images-idx3-ubyte": (proto[y_tr] * (rng.random((n_train, 28, 28)) < 0.8)),
              "train-labels-idx1-ubyte": y_tr,
              "t10k-images-idx3-ubyte": (proto[y_te] * (rng.random((n_test, 28, 28)) < 0.8)),
              "t10k-labels-idx1-ubyte": y_te}
    root = tmp_path / "data" / "mnist"
    root.mkdir(parents=True)
    for name, a in arrays.items():
        idx_mod.write_idx(root / name, a.astype(np.uint8))
    spec = mnist_mod.DATASETS["mnist"]
    files = tuple(dataclasses.replace(f, sha256=None) for f in spec.files)
    monkeypatch.setitem(mnist_mod.DATASETS, "mnist", dataclasses.replace(spec, files=files))
    monkeypatch.setenv("BIOLEARN_CACHE", str(tmp_path / "cache"))
    return tmp_path / "data"


def test_compare_command_tiny_config(tmp_path, monkeypatch):
    pytest.importorskip("snntorch")
    import click
    from click.testing import CliRunner

    from biolearn.bridge.cli import compare_command

    data = _fake_mnist(tmp_path, monkeypatch)
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(
        "model: compare\nname: tiny\nseed: 1\ndata: {dataset: mnist, n_train: 20, n_test: 10}\n"
        "params:\n  n_hidden: 8\n  t_present_ms: 20.0\n  dt_ms: 0.5\n"
        "  diehl_cook: {n_label: 10}\n  sym_stdp: {output: {figures: false}}\n"
        "  surrogate_snn: {batch_size: 10, reset: zero}\n  snn_num_steps: 5\n  energy_images: 5\n"
        "  bridge_images: 5\n")

    @click.group()
    def group() -> None:
        pass

    group.add_command(compare_command)
    out = tmp_path / "run"
    res = CliRunner().invoke(group, ["compare", str(cfg), "--out", str(out), "--quiet",
                                     "--data-root", str(data)])
    assert res.exit_code == 0, res.output + repr(res.exception)
    lines = res.stdout.splitlines()  # warnings (e.g. chance-level accuracy) go to stderr
    assert lines[0].split()[:2] == ["method", "accuracy"]
    assert set(lines[1]) <= {"-", " "}
    body = lines[2:6]
    for label, line in zip(("sym-STDP", "Diehl", "BP-MLP", "surrogate"), body, strict=True):
        assert line.startswith(label)
        assert line.split()[-2].isdigit()  # parameter count (then total seconds)
    results = json.loads((out / "results.json").read_text())
    rows = results["metrics"]["methods"]
    assert [r["method"] for r in rows] == ["sym_stdp", "diehl_cook", "bp_mlp", "surrogate_snn"]
    for r in rows:  # 10 test images: every accuracy is a whole number of them
        assert r["n_test_images"] == 10 and r["ops_per_image"] >= 0
        assert 10 * r["test_accuracy"] == pytest.approx(round(10 * r["test_accuracy"]), abs=1e-9)
    for r in rows[:2]:  # an STDP row is its own run's count: the trace of its confusion matrix,
        # whose rows are the fake test labels (one image per class)
        cm = np.array(json.loads((out / r["method"] / "results.json").read_text())
                      ["metrics"]["confusion_matrix"])
        assert cm.sum(axis=1).tolist() == [1] * 10
        assert r["test_accuracy"] == pytest.approx(np.trace(cm) / 10)
    n = 8
    assert rows[2]["ops_per_image"] == 784 * n + n * 10  # MLP MACs
    assert rows[2]["parameters"] == 784 * n + n + n * 10 + 10
    assert rows[0]["parameters"] == 784 * n + n * 10 + n  # learned weights + adaptive θ
    with open(out / "compare.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert [r["method"] for r in table] == [r["method"] for r in rows]
    assert (out / "compare.png").stat().st_size > 1000
    assert (out / "sym_stdp" / "results.json").exists()
    for r in rows:  # per-method wall and CPU time of the whole method (CPU clock ticks are
        # coarse: a few-ms method can read 0)
        assert r["method_wall_s"] > 0 and r["method_cpu_s"] >= 0
    assert sum(r["method_cpu_s"] for r in rows) > 0
    d = results["metrics"]["details"]["surrogate_snn"]
    assert d["bridge_prediction_agreement"] >= 0.8


def test_compare_command_rejects_other_models(tmp_path):
    import click
    from click.testing import CliRunner

    from biolearn.bridge.cli import compare_command
    from biolearn.errors import BiolearnError

    cfg = tmp_path / "x.yaml"
    cfg.write_text("model: sym_stdp\n")

    @click.group()
    def group() -> None:
        pass

    group.add_command(compare_command)
    res = CliRunner().invoke(group, ["compare", str(cfg)])
    assert isinstance(res.exception, BiolearnError)


# ------------------------------------------------------------------------------ baselines (slow)
@pytest.mark.slow
@needs_mnist
def test_surrogate_snn_learns_mnist_above_90_percent():
    """snntorch tutorial 5 reaches 93.87 % after one epoch (60 000 images, 1000 hidden, pixels as
    current); half an epoch with Bernoulli rate-coded inputs and 400 hidden neurons (the compare
    default) passes 90 % with the default SNNParams (~1.5 min on one core)."""
    pytest.importorskip("snntorch")
    from biolearn.bridge.baselines import SNNParams, train_surrogate_snn
    from biolearn.data import load_mnist

    x_tr, y_tr, x_te, y_te = load_mnist(mnist_root(), n_train=30000, n_test=2000, quiet=True)
    _, m = train_surrogate_snn(x_tr, y_tr, x_te, y_te, 400, SNNParams(epochs=1), 25)
    assert m["test_accuracy"] > 0.90, m


# ------------------------------------------------------------------------------ model mapping
def test_lif_definition_population_runs_identically_in_the_twin():
    """A Neurons population of a LIF definition (targets named by variable) maps as its LIF."""
    from biolearn.engine import Neurons
    from biolearn.engine.neurons import lif_model

    rng = np.random.default_rng(2)
    dt, T = 0.5, 300
    flat = rng.choice(T * 10, 200, replace=False)
    idx, times = flat % 10, (flat // 10) * dt
    net = Network(dt=dt)
    net.add(SpikeSource("in", 10, idx, times))
    net.add(Neurons("h", 6, lif_model("conductance", "euler", "add", True),
                    params={"tau_m": 10.0, "v_floor": -75.0, "t_ref": 2.0},
                    init={"v": rng.uniform(-65, -55, 6), "ge": 0.3}))
    net.connect(connect.dense("in_h", "in", "h", rng.uniform(0, 0.4, (10, 6)), target="ge"))
    net.connect(connect.dense("in_h_i", "in", "h", rng.uniform(0, 0.2, (10, 6)), target="gi",
                              delay=1.0))
    net.monitor(SpikeMonitor(["h"]))
    rec = net.compile(0).run(steps=T)
    out = to_torch(net)(spikes_to_tensor(idx, times, 10, T, dt))
    ref = _dense_spikes(*rec["spikes"]["h"], dt, T, 6)
    assert ref.sum() > 5
    np.testing.assert_array_equal(out["h"][:, 0].detach().numpy(), ref)
    h = to_network(to_torch(net)).population("h")
    assert (h.synapse, h.integration, h.v_floor, h.tau_m) == ("conductance", "euler", -75.0, 10.0)
    assert h.ge_init == 0.3 and np.array_equal(h.v_init, net.population("h").init["v"])


def test_unmappable_model_is_one_line_error():
    from biolearn.engine import Neurons
    from biolearn.engine.neurons import ADEX
    from biolearn.errors import BiolearnError

    net = Network(dt=0.1)
    net.add(SpikeSource("in", 2))
    net.add(Neurons("a", 3, ADEX))
    net.connect(connect.dense("w", "in", "a", np.ones((2, 3)), target="I_syn"))
    with pytest.raises(BiolearnError) as e:
        to_torch(net)
    msg = str(e.value)
    assert "\n" not in msg
    assert "population 'a' uses model 'adex'" in msg and "torch bridge cannot map" in msg
