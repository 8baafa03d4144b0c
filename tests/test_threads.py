"""The thread count changes speed and nothing else: spikes, weights, traces and states of the
threaded kernels (``run_steps_mt``) are bit-identical to one thread for 2 and 4 threads."""

from __future__ import annotations

import numpy as np
import pytest

from biolearn.benchmarks._common import brette_network
from biolearn.engine import (
    LIF,
    Network,
    NeuronModel,
    Neurons,
    PoissonSource,
    Projection,
    SpikeMonitor,
    SpikeSource,
    StateMonitor,
    connect,
    simulation,
)
from biolearn.engine.neurons import ADEX
from biolearn.errors import BiolearnError
from biolearn.rules.stdp import DiehlCookSTDP, PairSTDP, SymmetricSTDP


@pytest.fixture(autouse=True)
def small_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Split even small test populations between threads."""
    monkeypatch.setattr(simulation, "_MIN_PART", 8)


def _state(sim) -> dict:  # noqa: ANN001
    d = sim.state_dict()
    d.pop("rng")
    d["hist"] = np.concatenate([row[:c] for row, c in zip(d["hist"], d["hist_n"], strict=True)])
    d["counts"] = sim.counts.copy()
    return d


def _same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        if k == "spikes":
            for pop in a[k]:
                np.testing.assert_array_equal(a[k][pop][0], b[k][pop][0], err_msg=pop)
                np.testing.assert_array_equal(a[k][pop][1], b[k][pop][1], err_msg=pop)
        elif k == "states":
            for v in a[k]:
                np.testing.assert_array_equal(a[k][v], b[k][v], err_msg=v)
        else:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def _coba(threads: int) -> dict:
    sim = brette_network("coba").compile(seed=1, threads=threads)
    assert sim._mt == (threads > 1)  # the threaded loop runs
    out = sim.run(150.0)
    assert len(out["spikes"]["P"][0]) > 500
    return {"spikes": out["spikes"], **_state(sim)}


def test_coba_identical_across_thread_counts() -> None:
    one = _coba(1)
    for t in (2, 4):
        _same(one, _coba(t))


def _diehl_cook_like(threads: int) -> dict:
    """Poisson input → adaptive-threshold excitatory layer with Diehl & Cook STDP (the
    few-active-posts path) and lateral inhibition; three presentations with resets between."""
    rng = np.random.default_rng(3)
    n_in, n_exc = 120, 48
    net = Network(dt=0.5)
    net.add(PoissonSource("in", n_in, rates=0.0))
    net.add(LIF("exc", n_exc, synapse="conductance", tau_m=100.0, v_rest=-65.0, v_reset=-65.0,
                v_thresh=-52.0, t_ref=5.0, tau_e=1.0, tau_i=2.0, e_e=0.0, e_i=-100.0,
                theta_rule="add", theta_plus=0.05, tau_theta=1e7))
    net.add(LIF("inh", n_exc, synapse="conductance", tau_m=10.0, v_rest=-60.0, v_reset=-45.0,
                v_thresh=-40.0, t_ref=2.0, tau_e=1.0, tau_i=2.0, e_e=0.0, e_i=-85.0))
    net.connect(connect.dense("xe", "in", "exc", rng.uniform(0, 1.0, (n_in, n_exc)),
                              target="e", rule=DiehlCookSTDP()))
    net.connect(connect.one_to_one("ei", "exc", "inh", n_exc, 10.4, target="e"))
    net.connect(connect.all_but_self("ie", "inh", "exc", n_exc, 17.0, target="i"))
    net.monitor(SpikeMonitor(["exc", "in"]))
    sim = net.compile(seed=5, threads=threads)
    assert sim._mt == (threads > 1)
    spikes = []
    for _ in range(3):
        sim.reset_state()
        sim.set_rates("in", rng.uniform(0, 120.0, n_in))
        out = sim.run(150.0)
        spikes.append(out["spikes"])
        sim.normalize("xe", 0.1 * n_in * 0.3)
    assert sum(len(s["exc"][0]) for s in spikes) > 20
    return {"spikes": {f"{p}{k}": s[p] for k, s in enumerate(spikes) for p in s},
            **_state(sim)}


def test_plastic_network_identical_across_thread_counts() -> None:
    one = _diehl_cook_like(1)
    for t in (2, 4):
        _same(one, _diehl_cook_like(t))


def _teacher(threads: int, dead: float = 0.0) -> dict:
    """Symmetric STDP onto a class layer driven by a teacher (thread 0 draws its spikes); with
    ``dead``, the inputs and the teacher have that dead time (ms)."""
    rng = np.random.default_rng(4)
    net = Network(dt=0.5)
    net.add(PoissonSource("in", 64, rates=rng.uniform(0, 40, 64) * (1 + 10 * dead),
                          t_ref=dead))
    net.add(LIF("cls", 40, synapse="conductance", theta_rule="hao", theta_plus=0.1,
                tau_theta=1e4, v_floor=-100.0))
    net.connect(connect.dense("xc", "in", "cls", rng.uniform(0, 0.5, (64, 40)), target="e",
                              rule=SymmetricSTDP(eta=0.01)))
    net.monitor(SpikeMonitor())
    sim = net.compile(seed=2, threads=threads)
    assert sim._mt == (threads > 1)
    rates = np.zeros(40)
    rates[:10] = 200.0
    sim.set_teacher("cls", rates, t_ref=dead)
    a = sim.run(200.0)
    sim.set_teacher("cls", None)
    b = sim.run(200.0)
    return {"spikes": {**{f"a{k}": v for k, v in a["spikes"].items()},
                       **{f"b{k}": v for k, v in b["spikes"].items()}}, **_state(sim)}


@pytest.mark.parametrize("dead", [0.0, 1.0])
def test_teacher_identical_across_thread_counts(dead: float) -> None:
    one = _teacher(1, dead)
    assert len(one["spikes"]["acls"][0]) > 50
    for t in (2, 4):
        _same(one, _teacher(t, dead))


def _mixed(threads: int) -> dict:
    """Spike sources, heterogeneous delays, sparse pair STDP, AdEx, a model drawing random
    numbers, and state monitors."""
    rng = np.random.default_rng(6)
    n_src = 60
    idx = rng.integers(0, n_src, 3000)
    times = np.round(rng.uniform(0, 300, 3000), 1)
    pairs = np.unique(np.stack([np.round(times * 10), idx], axis=1), axis=0)  # no repeats
    times, idx = pairs[:, 0] / 10, pairs[:, 1].astype(np.int64)
    net = Network(dt=0.1)
    net.add(SpikeSource("src", n_src, idx, times))
    net.add(Neurons("adex", 40, ADEX))
    net.add(Neurons("noisy", 32, NeuronModel(
        "noisy_lif", "dv/dt = (v_rest - v)/tau + sigma*randn()/sqrt(tau*ms) : volt",
        threshold="v > v_th", reset="v = v_rest", refractory="2 ms",
        parameters={"tau": "10 ms", "sigma": "4 mV", "v_rest": "-60 mV", "v_th": "-55 mV"},
        init={"v": "v_rest"})))
    net.add(LIF("lif", 48, synapse="current", integration="exact", t_ref=2.0))
    i, j = rng.integers(0, n_src, 500), rng.integers(0, 48, 500)
    net.connect(Projection("het", "src", "lif", i, j, 4.0, delay=rng.uniform(0.5, 3.0, 500),
                           target="e"))
    i, j = np.nonzero(rng.random((n_src, 48)) < 0.3)
    net.connect(Projection("stdp", "src", "lif", i, j, rng.uniform(0.2, 0.8, len(i)),
                           delay=1.0, target="e", rule=PairSTDP(a_plus=0.02, a_minus=0.021)))
    i, j = np.nonzero(rng.random((n_src, 40)) < 0.2)
    net.connect(Projection("drive", "src", "adex", i, j, 400.0, target="I_syn"))
    i, j = np.nonzero(rng.random((48, 32)) < 0.2)
    net.connect(Projection("ln", "lif", "noisy", i, j, 2.0, delay=0.4, target="v"))
    net.monitor(SpikeMonitor())
    net.monitor(StateMonitor("lif", "v", every=5))
    net.monitor(StateMonitor("adex", "v", neurons=[0, 5, 39], every=10))
    sim = net.compile(seed=8, threads=threads)
    assert sim._mt == (threads > 1)
    out = sim.run(300.0)
    assert len(out["spikes"]["lif"][0]) > 50 and len(out["spikes"]["noisy"][0]) > 10
    return {"spikes": out["spikes"], "states": out["states"], **_state(sim)}


def test_mixed_network_identical_across_thread_counts() -> None:
    one = _mixed(1)
    for t in (2, 4):
        _same(one, _mixed(t))


def test_thread_count_changed_mid_run_and_through_checkpoints() -> None:
    """Spikes in flight survive a change of thread count and a checkpoint taken on one count
    and loaded on another."""
    def build(threads: int):  # noqa: ANN202
        sim = brette_network("cuba").compile(seed=3, threads=threads)
        return sim

    ref = build(1)
    a = ref.run(60.0)["spikes"]["P"]
    b = ref.run(60.0)["spikes"]["P"]
    sim = build(2)
    a2 = sim.run(60.0)["spikes"]["P"]
    ckpt = sim.state_dict()
    sim.set_threads(4)
    b4 = sim.run(60.0)["spikes"]["P"]
    other = build(1)
    other.load_state_dict(ckpt)
    b1 = other.run(60.0)["spikes"]["P"]
    for x in (a2,):
        np.testing.assert_array_equal(a[1], x[1])
    for x in (b4, b1):
        np.testing.assert_array_equal(b[0], x[0])
        np.testing.assert_array_equal(b[1], x[1])
    np.testing.assert_array_equal(ref.S, sim.S)
    np.testing.assert_array_equal(ref.S, other.S)


def test_small_record_buffer_runs_in_several_calls() -> None:
    one = brette_network("coba").compile(seed=1, threads=1)
    two = brette_network("coba").compile(seed=1, threads=2)
    two.rec_cap = 9000  # the threaded loop stops early and is called again
    x, y = one.run(100.0)["spikes"]["P"], two.run(100.0)["spikes"]["P"]
    assert len(x[0]) > 3000
    np.testing.assert_array_equal(x[0], y[0])
    np.testing.assert_array_equal(x[1], y[1])


def test_thread_count_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    net = brette_network("cuba", n_e=40, n_i=10)
    with pytest.raises(BiolearnError, match="not a positive integer"):
        net.compile(threads=0)
    monkeypatch.setenv("BIOLEARN_THREADS", "two")
    with pytest.raises(BiolearnError, match="BIOLEARN_THREADS"):
        simulation.default_threads()
    monkeypatch.setenv("BIOLEARN_THREADS", "3")
    assert simulation.default_threads() == 3
    simulation.set_default_threads(2)
    try:
        assert simulation.default_threads() == 2
        assert net.compile().threads == 2
    finally:
        simulation.set_default_threads(None)


def test_default_thread_count_splits_only_large_populations(monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    """Every core by default, but a population is split only where threads gain (thousands of
    neurons per thread); a thread count asked for splits smaller ones too."""
    from biolearn.benchmarks._common import indegree_network

    for var in ("BIOLEARN_THREADS", "NUMBA_NUM_THREADS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(simulation, "default_threads", lambda: 2)
    small = brette_network("cuba").compile()
    assert small.threads == 2 and not small._mt  # 4000 neurons: the one-thread loop
    assert indegree_network(10_000).compile()._mt
    assert brette_network("cuba").compile(threads=2)._mt


def test_repeated_source_spikes_into_rules_run_on_one_thread() -> None:
    """A spike source firing a neuron twice in one step into a plastic projection: the one-thread
    loop updates the pre traces between the two arrivals, so the threaded loop is not used."""
    net = Network(dt=0.1)
    net.add(SpikeSource("s", 4, [0, 0, 1], [1.0, 1.0, 2.0]))
    net.add(LIF("n", 600, synapse="current", integration="exact"))
    net.connect(connect.dense("p", "s", "n", np.full((4, 600), 0.1), target="e",
                              rule=PairSTDP()))
    assert not net.compile(threads=2)._mt
