"""NIR export and import: biolearn → NIR → biolearn round trips, snntorch's NIR importer and
exporter against the engine, and the one-line errors for what NIR cannot express."""

from __future__ import annotations

import numpy as np
import pytest

nir = pytest.importorskip("nir")

from biolearn.engine import (  # noqa: E402
    LIF,
    Network,
    Neurons,
    PoissonSource,
    Projection,
    SpikeMonitor,
    SpikeSource,
    connect,
)
from biolearn.engine.neurons import ADEX, lif_model  # noqa: E402
from biolearn.errors import BiolearnError  # noqa: E402
from biolearn.io.nir import IF_MODEL, from_nir, read_nir, to_nir, write_nir  # noqa: E402

DT = 0.1


def _inputs(rng, n_in: int, n_steps: int, k: int):
    flat = rng.choice(n_steps * n_in, k, replace=False)
    return flat % n_in, (flat // n_in) * DT


def _layered(integration: str, seed: int = 3) -> Network:
    """SpikeSource → current LIF → current LIF, with a delay, an inhibitory ('i') projection,
    per-neuron thresholds and a constant bias current."""
    rng = np.random.default_rng(seed)
    net = Network(dt=DT)
    net.add(SpikeSource("in", 12, *_inputs(rng, 12, 300, 400)))
    net.add(LIF("h", 9, synapse="current", integration=integration, tau_m=10.0, tau_e=3.0,
                tau_i=3.0, v_rest=-1.0, v_reset=-2.0, v_thresh=1.0, t_ref=0.0, i_bias=0.5,
                v_init=-0.5))
    net.add(LIF("o", 5, synapse="current", integration=integration, tau_m=15.0, tau_e=4.0,
                tau_i=4.0, v_rest=0.0, v_reset=0.0, v_thresh=0.8, t_ref=0.0,
                theta_init=rng.uniform(0.0, 0.3, 5)))
    net.connect(connect.dense("in_h", "in", "h", rng.normal(2.0, 1.0, (12, 9))))
    net.connect(connect.dense("h_o", "h", "o", rng.normal(1.5, 1.0, (9, 5)), delay=0.5))
    net.connect(connect.dense("in_o", "in", "o", -np.abs(rng.normal(0.5, 0.2, (12, 5))),
                              target="i"))
    net.monitor(SpikeMonitor(None))
    return net


def _run(net: Network, steps: int) -> dict:
    return net.compile(0).run(steps=steps)["spikes"]


def _copy_inputs(src: Network, dst: Network) -> None:
    for p in src.populations:
        if isinstance(p, SpikeSource):
            q = dst.population(p.name)
            q.indices, q.times = p.indices, p.times


def _assert_same_spikes(a: dict, b: dict, pops) -> None:
    for k in pops:
        assert len(a[k][0]) > 20, k  # the network is active
        np.testing.assert_array_equal(a[k][0], b[k][0])
        np.testing.assert_array_equal(a[k][1], b[k][1])


@pytest.mark.parametrize("integration", ["euler", "exact", "euler_expsyn"])
@pytest.mark.parametrize("convention", ["step", "delta"])
def test_round_trip_file_identical_spikes(tmp_path, integration, convention):
    net = _layered(integration)
    path = write_nir(net, tmp_path / "net.nir", convention=convention)
    g = nir.read(str(path))
    assert {type(n).__name__ for n in g.nodes.values()} == {"Input", "CubaLIF", "Linear",
                                                            "Delay", "Output"}
    back = read_nir(path)
    _copy_inputs(net, back)
    assert [p.name for p in back.populations] == ["in", "h", "o"]
    by = {q.name: q for q in back.projections}
    for q in net.projections:
        r = by[q.name]
        assert (r.pre, r.post, r.target, r.delay) == (q.pre, q.post, q.target, q.delay)
        np.testing.assert_allclose(r.w, q.w, rtol=1e-15, atol=0)  # W/g·g: rounding only
    for name in ("h", "o"):
        a, b = net.population(name), back.population(name)
        assert (b.integration, b.tau_m, b.v_reset) == (a.integration, a.tau_m, a.v_reset)
    _assert_same_spikes(_run(net, 350), _run(back, 350), ("h", "o"))


def test_round_trip_if_li_v_inputs_instant_and_recurrence():
    """IF neurons, LIF with δ inputs onto v (exact), LIF whose ge lasts one step (nir.LIF), a
    never-firing readout (nir.CubaLI) and a delayed recurrent projection."""
    rng = np.random.default_rng(11)
    net = Network(dt=DT)
    net.add(SpikeSource("in", 6, *_inputs(rng, 6, 400, 300)))
    net.add(Neurons("if", 5, IF_MODEL, {"v_thresh": 2.0, "v_reset": -0.5},
                    {"theta": rng.uniform(0, 1, 5)}))
    net.add(LIF("dv", 4, synapse="current", integration="exact", tau_m=8.0, v_rest=0.0,
                v_reset=0.0, v_thresh=1.0, t_ref=0.0))
    net.add(LIF("inst", 4, synapse="current", integration="euler_expsyn", tau_m=5.0,
                tau_e=DT / 1000, tau_i=DT / 1000, v_rest=0.0, v_reset=0.0, v_thresh=1.0,
                t_ref=0.0))
    net.add(LIF("read", 3, synapse="current", integration="exact", tau_m=20.0, tau_e=5.0,
                v_rest=0.0, v_reset=0.0, v_thresh=np.inf, t_ref=0.0))
    net.connect(connect.dense("in_if", "in", "if", rng.uniform(0.2, 1.0, (6, 5)), target="ge"))
    net.connect(connect.dense("if_dv", "if", "dv", rng.uniform(0.3, 0.9, (5, 4)), target="v"))
    net.connect(connect.dense("dv_inst", "dv", "inst", rng.uniform(20, 60, (4, 4))))
    net.connect(connect.dense("inst_inst", "inst", "inst", -rng.uniform(5, 10, (4, 4)),
                              delay=1.0))
    net.connect(connect.dense("inst_read", "inst", "read", rng.uniform(0, 1, (4, 3))))
    net.monitor(SpikeMonitor(None))
    g = to_nir(net)
    kinds = {k: type(v).__name__ for k, v in g.nodes.items()}
    assert (kinds["if"], kinds["dv"], kinds["inst"], kinds["read"]) == (
        "IF", "LIF", "LIF", "CubaLI")
    back = from_nir(g)
    _copy_inputs(net, back)
    a, b = _run(net, 500), _run(back, 500)
    _assert_same_spikes(a, b, ("if", "dv", "inst"))
    assert len(b["read"][0]) == 0
    assert {q.name: q.delay for q in back.projections}["inst_inst"] == 1.0


def test_conventions_gain_by_hand():
    """One CubaLIF neuron, one Linear weight W: a spike adds r·w_in·a/τ_syn·W to ge, with
    a = dt (s) in the 'step' convention and a = 1 for 'delta'."""
    tau_syn, tau_mem, r, w_in, W = 0.005, 0.02, 3.0, 2.0, 0.7
    g = nir.NIRGraph(nodes={
        "x": nir.Input(input_type=np.array([1])),
        "w": nir.Linear(weight=np.array([[W]])),
        "n": nir.CubaLIF(tau_syn=np.array([tau_syn]), tau_mem=np.array([tau_mem]),
                         r=np.array([r]), v_leak=np.zeros(1), v_threshold=np.ones(1),
                         w_in=np.array([w_in])),
        "y": nir.Output(output_type=np.array([1]))},
        edges=[("x", "w"), ("w", "n"), ("n", "y")])
    for conv, area in (("step", DT / 1000), ("delta", 1.0)):
        net = from_nir(g, dt=DT, convention=conv)
        q = net.projections[0]
        assert q.target == "e" and q.w[0] == pytest.approx(r * w_in * area / tau_syn * W,
                                                           rel=1e-14)
        lif = net.population("n")
        assert lif.tau_m == pytest.approx(20.0, rel=1e-14)
        assert lif.tau_e == pytest.approx(5.0, rel=1e-14) and lif.integration == "euler"


def test_nested_graph_and_affine_bias():
    """A nested graph (snntorch's recurrent layers are written so) is inlined; an Affine bias
    becomes the one-neuron source 'bias' firing every step, delayed by the layer latency."""
    n = 3
    inner = nir.NIRGraph(nodes={
        "input": nir.Input(input_type=np.array([n])),
        "lif": nir.LIF(tau=np.full(n, 0.002), r=np.full(n, 20.0), v_leak=np.zeros(n),
                       v_threshold=np.ones(n)),
        "w_rec": nir.Linear(weight=-0.5 * np.eye(n)),
        "output": nir.Output(output_type=np.array([n]))},
        edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")])
    g = nir.NIRGraph(nodes={
        "x": nir.Input(input_type=np.array([2])),
        "fc": nir.Affine(weight=np.ones((n, 2)), bias=np.full(n, 0.1)),
        "rnn": inner, "fc2": nir.Affine(weight=np.ones((2, n)), bias=np.full(2, 0.2)),
        "lif2": nir.LIF(tau=np.full(2, 0.002), r=np.full(2, 20.0), v_leak=np.zeros(2),
                        v_threshold=np.ones(2)),
        "y": nir.Output(output_type=np.array([2]))},
        edges=[("x", "fc"), ("fc", "rnn"), ("rnn", "fc2"), ("fc2", "lif2"), ("lif2", "y")])
    net = from_nir(g, dt=DT)
    projs = {(q.pre, q.post): q for q in net.projections}
    assert {p.name for p in net.populations} == {"x", "rnn_lif", "lif2", "bias"}
    assert ("rnn_lif", "rnn_lif") in projs  # the recurrent weights
    assert projs[("bias", "rnn_lif")].delay == 0.0 and projs[("bias", "lif2")].delay == DT
    # bias per step = b·dt·r/τ (Δv) → ge weight Δv·τm/dt
    assert projs[("bias", "rnn_lif")].w[0] == pytest.approx(0.1 * 1e-4 * 20 / 0.002 * 20.0)
    net.compile(0).run(steps=50)


# ------------------------------------------------------------------ snntorch, both directions
def _snntorch():
    pytest.importorskip("nirtorch")
    torch = pytest.importorskip("torch")
    snn = pytest.importorskip("snntorch")
    torch.set_num_threads(1)
    return torch, snn


def _dense(spikes: tuple, n: int, steps: int) -> np.ndarray:
    out = np.zeros((steps, n))
    out[np.round(spikes[0] / DT).astype(int), spikes[1]] = 1
    return out


@pytest.mark.parametrize("dtype_name", ["float64", "float32"])
def test_snntorch_imports_biolearn_network(tmp_path, dtype_name):
    """biolearn → NIR file → snntorch.import_nir.import_from_nir: the same spikes, layer k of
    the engine k steps later (the engine's one-step latency per layer). dt = 0.1 ms, which is the
    1e-4 s snntorch's NIR code assumes. float32 is snntorch's default precision (equal here; a
    potential within ~1e-6 of threshold could differ)."""
    torch, _ = _snntorch()
    dtype = getattr(torch, dtype_name)
    from snntorch.import_nir import import_from_nir

    rng = np.random.default_rng(5)
    T, n_in = 400, 10
    idx, times = _inputs(rng, n_in, T, 500)
    net = Network(dt=DT)
    net.add(SpikeSource("inp", n_in, idx, times))
    net.add(LIF("hid", 8, synapse="current", integration="euler", tau_m=2.0, tau_e=0.5,
                v_rest=0.0, v_reset=0.0, v_thresh=1.0, t_ref=0.0))
    net.add(LIF("out", 4, synapse="current", integration="euler_expsyn", tau_m=1.5,
                tau_e=DT / 1000, v_rest=0.0, v_reset=0.0, v_thresh=1.0, t_ref=0.0))
    net.connect(connect.dense("w1", "inp", "hid", rng.normal(1.0, 1.0, (n_in, 8))))
    net.connect(connect.dense("w2", "hid", "out", rng.normal(12.0, 6.0, (8, 4))))
    net.monitor(SpikeMonitor(None))
    write_nir(net, tmp_path / "bl.nir")
    model = import_from_nir(nir.read(str(tmp_path / "bl.nir"))).to(dtype)
    assert {type(m).__name__ for _, m in model.named_children()} >= {"Synaptic", "Leaky"}
    rec: dict[str, list] = {}

    def hook(name):
        def f(mod, inp, out):
            rec.setdefault(name, []).append(out.detach().numpy().copy())
            return out.to(dtype)  # snntorch emits float32 spikes
        return f

    for name, mod in model.named_children():
        if name in ("hid", "out"):
            mod.register_forward_hook(hook(name))
    x = np.zeros((T, 1, n_in))
    x[np.round(times / DT).astype(int), 0, idx] = 1
    with torch.no_grad():
        for t in range(T):
            model(torch.as_tensor(x[t], dtype=dtype))
    got = _run(net, T + 2)
    for k, (name, n) in enumerate((("hid", 8), ("out", 4)), start=1):
        ref = np.concatenate(rec[name])
        assert ref.sum() > 20
        np.testing.assert_array_equal(_dense(got[name], n, T + 2)[k:k + T], ref)


@pytest.mark.parametrize("dtype_name", ["float64", "float32"])
def test_biolearn_imports_snntorch_network(tmp_path, dtype_name):
    """An snntorch Linear → Leaky → Linear → Synaptic stack with biases, exported by
    snntorch.export_nir.export_to_nir, runs in biolearn with snntorch's spikes (layer k k steps
    later). float64: parameters agree to ~1e-16; float32 (snntorch's default): snntorch's own
    arithmetic is float32, the engine's float64 — equal here, but a membrane potential within
    ~1e-6 of threshold could flip a spike."""
    torch, snn = _snntorch()
    from snntorch.export_nir import export_to_nir

    dtype = getattr(torch, dtype_name)
    torch.manual_seed(0)
    T, n_in = 300, 6

    def full(n, v):
        return torch.full((n,), v, dtype=dtype)

    # per-neuron β and ϑ: scalar ones export 0-d arrays that nir's type check rejects
    model = torch.nn.Sequential(
        torch.nn.Linear(n_in, 5),
        snn.Leaky(beta=full(5, 0.8), threshold=full(5, 0.5), init_hidden=True,
                  reset_mechanism="zero"),
        torch.nn.Linear(5, 3),
        snn.Synaptic(alpha=full(3, 0.7), beta=full(3, 0.9), threshold=full(3, 1.0),
                     init_hidden=True, reset_mechanism="zero", reset_delay=False),
    ).to(dtype)
    with torch.no_grad():
        model[0].weight.mul_(3.0)
        model[2].weight.mul_(2.0)
        model[0].bias.fill_(0.05)
        model[2].bias.fill_(0.02)

    def cast(mod, inp, out):  # snntorch emits float32 spikes
        return out.to(dtype)

    rec: dict[str, list] = {"1": [], "3": []}
    for k in ("1", "3"):
        model[int(k)].register_forward_hook(cast)
        model[int(k)].register_forward_hook(
            lambda mod, inp, out, k=k: rec[k].append(out.detach().numpy().copy()))
    x = (torch.rand(T, 1, n_in, dtype=dtype) < 0.2).to(dtype)
    with torch.no_grad():
        for t in range(T):
            model(x[t])
    graph = export_to_nir(model, torch.zeros(1, n_in, dtype=dtype), ignore_dims=[0])
    nir.write(str(tmp_path / "snn.nir"), graph)
    st, si = np.nonzero(x[:, 0].numpy())
    net = read_nir(tmp_path / "snn.nir", inputs={"input": (si, st * DT)})
    assert {p.name for p in net.populations} == {"input", "1", "3", "bias"}
    got = _run(net, T + 2)
    for k, (name, n) in enumerate((("1", 5), ("3", 3)), start=1):
        ref = np.concatenate(rec[name][:T])
        assert ref.sum() > 20
        np.testing.assert_array_equal(_dense(got[name], n, T + 2)[k:k + T], ref)


# ------------------------------------------------------------------ what NIR cannot express
def _base(**kw) -> Network:
    net = Network(dt=DT)
    net.add(SpikeSource("in", 2))
    opts = {"synapse": "current", "integration": "euler", "t_ref": 0.0}
    opts.update(kw)
    net.add(LIF("pop", 2, **opts))
    net.connect(connect.dense("proj", "in", "pop", np.ones((2, 2))))
    return net


@pytest.mark.parametrize("net,words", [
    (lambda: _base(synapse="conductance"), "population 'pop' has conductance-based"),
    (lambda: _base(theta_rule="add", theta_plus=0.1, tau_theta=1e4), "adaptive threshold"),
    (lambda: _base(v_floor=-100.0), "voltage floor"),
    (lambda: _base(t_ref=2.0), "refractory period"),
    (lambda: _base(v_init=np.array([0.0, 1.0])), "does not start at rest"),
])
def test_unsupported_neurons_one_line(net, words):
    with pytest.raises(BiolearnError, match=words) as e:
        to_nir(net())
    assert "\n" not in str(e.value)


def test_unsupported_models_projections_one_line():
    from biolearn.rules.stdp import PAIR_STDP

    cases = []
    net = Network(dt=DT)
    net.add(SpikeSource("in", 2))
    net.add(Neurons("adex", 2, ADEX))
    net.connect(connect.dense("p", "in", "adex", np.ones((2, 2)), target="I_syn"))
    cases.append((net, "population 'adex' uses model 'adex', which NIR cannot map"))
    net = _base()
    net.projections[0].rule = PAIR_STDP
    cases.append((net, "projection 'proj' is plastic"))
    net = _base()
    net.projections[0].delay = np.array([0.0, 0.1, 0.2, 0.3])
    cases.append((net, "projection 'proj' has several delays"))
    net = _base()
    net.connect(connect.dense("pv", "in", "pop", np.ones((2, 2)), target="v"))
    cases.append((net, "population 'pop' receives inputs onto v and onto ge/gi"))
    net = _base(tau_e=2.0, tau_i=7.0)
    net.connect(connect.dense("pi", "in", "pop", -np.ones((2, 2)), target="i"))
    cases.append((net, "different time constants"))
    net = Network(dt=DT)
    net.add(SpikeSource("in", 2))
    net.add(Neurons("lif", 2, lif_model("current", "euler"), {"t_ref": 0.0, "theta_ten": 3.0}))
    cases.append((net, "population 'lif' sets theta_ten"))
    for net, words in cases:
        with pytest.raises(BiolearnError, match=words) as e:
            to_nir(net)
        assert "\n" not in str(e.value)


def test_from_nir_refuses_unknown_nodes_one_line():
    g = nir.NIRGraph(nodes={"x": nir.Input(input_type=np.array([2])),
                            "i": nir.I(r=np.ones(2)),
                            "y": nir.Output(output_type=np.array([2]))},
                     edges=[("x", "i"), ("i", "y")])
    with pytest.raises(BiolearnError, match="NIR node 'i' \\(I\\) has no biolearn equivalent"):
        from_nir(g)
    g = nir.NIRGraph(nodes={"x": nir.Input(input_type=np.array([2])),
                            "n": nir.LIF(tau=np.array([0.01, 0.02]), r=np.ones(2),
                                         v_leak=np.zeros(2), v_threshold=np.ones(2)),
                            "y": nir.Output(output_type=np.array([2]))},
                     edges=[("x", "n"), ("n", "y")])
    with pytest.raises(BiolearnError, match="per-neuron tau that differ"):
        from_nir(g)


def test_bias_source_round_trip():
    """A network from from_nir with an Affine bias exports the bias back onto an Affine."""
    net = Network(dt=DT)
    net.add(SpikeSource("in", 3, [0, 1, 2, 0], [0.0, 0.5, 1.0, 1.5]))
    net.add(PoissonSource("bias", 1, rates=1000.0 / DT))
    net.add(LIF("n", 2, synapse="current", integration="euler", tau_m=3.0, tau_e=1.0,
                v_rest=0.0, v_reset=0.0, v_thresh=1.0, t_ref=0.0))
    net.connect(connect.dense("w", "in", "n", np.full((3, 2), 8.0)))
    net.connect(Projection("b", "bias", "n", [0, 0], [0, 1], [0.3, 0.6]))
    net.monitor(SpikeMonitor(None))
    g = to_nir(net)
    assert isinstance(g.nodes["w"], nir.Affine) and "bias" not in g.nodes
    back = from_nir(g)
    _copy_inputs(net, back)
    a, b = _run(net, 300), _run(back, 300)
    _assert_same_spikes(a, b, ("n",))


def test_cli_export_nir(tmp_path):
    from biolearn.cli import main

    cfg = tmp_path / "lif_net.yaml"
    cfg.write_text("""model: network
name: lif_net
seed: 1
data: {dataset: none}
params:
  duration_ms: 10.0
  dt_ms: 0.1
  populations:
    - {name: inp, n: 4, kind: spikes, indices: [0, 1, 2, 3], times_ms: [0.0, 0.1, 0.2, 0.3]}
    - {name: hid, n: 3, model: lif, options: {synapse: current, integration: exact},
       params: {t_ref: 0 ms, tau_m: 10 ms}}
  projections:
    - {name: inp_hid, pre: inp, post: hid, connectivity: dense, weight: [1.0, 3.0],
       target: e}
""")
    out = tmp_path / "x.nir"
    with pytest.raises(SystemExit) as e:
        main(["export", "nir", str(cfg), "-o", str(out), "--convention", "delta"])
    assert e.value.code == 0
    g = nir.read(str(out))
    assert isinstance(g.nodes["hid"], nir.CubaLIF) and g.metadata["convention"] == "delta"
    net = from_nir(g)
    assert [p.name for p in net.populations] == ["inp", "hid"]
    # a recipe whose network is not in its config: one line, exit code 2
    other = tmp_path / "lif.yaml"
    other.write_text("model: example_lif\nname: e\ndata: {dataset: none}\n")
    with pytest.raises(SystemExit) as e:
        main(["export", "nir", str(other)])
    assert e.value.code == 2
