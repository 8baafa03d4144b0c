"""biolearn vs its Brian2 export: identical spike trains and weights on deterministic networks.

The Brian2 side runs the network written by :func:`biolearn.backends.brian2.to_brian2`
(numpy code generation, so no compiler is needed). Same maths, so the same spikes on the same
steps are required, not just similar statistics.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("brian2")

from spike_cases import isi_fit_dead_time  # noqa: E402

from biolearn.backends.brian2 import run_brian2, spike_steps  # noqa: E402
from biolearn.engine import (  # noqa: E402
    LIF,
    Network,
    PoissonSource,
    SpikeMonitor,
    SpikeSource,
    connect,
)
from biolearn.engine.front import Projection  # noqa: E402
from biolearn.rules.stdp import DiehlCookSTDP, PairSTDP, SymmetricSTDP  # noqa: E402

DT = 0.5
T = 1000.0


def _trains(spikes: dict, dt: float) -> dict:
    return {k: sorted(zip(spike_steps(t, dt).tolist(), i.tolist(), strict=True))
            for k, (t, i) in spikes.items()}


def _source(rng: np.random.Generator, n: int, rate_hz: float, t_ms: float, dt: float):
    """On-grid random spike times, at most one spike per neuron and step."""
    idx, tim = [], []
    n_steps = int(t_ms / dt)
    for i in range(n):
        st = np.unique(rng.integers(0, n_steps, size=int(rate_hz * t_ms / 1000)))
        idx.append(np.full(len(st), i))
        tim.append(st * dt)
    return np.concatenate(idx), np.concatenate(tim)


def _mixed_network(seed: int = 3) -> Network:
    """Current/conductance LIFs (Euler, exact, Euler with exact synapses), θ (add, hao), v floor,
    refractoriness,
    homogeneous and heterogeneous delays, excitatory/inhibitory/voltage targets, four STDP rules."""
    rng = np.random.default_rng(seed)
    net = Network(dt=DT)
    n_in = 60
    idx, tim = _source(rng, n_in, 15.0, T, DT)
    net.add(SpikeSource("in", n_in, idx, tim))
    net.add(LIF("a", 20, synapse="current", integration="exact", t_ref=2.0, i_bias=8.0,
                v_init=rng.uniform(-60, -50, 20)))
    net.add(LIF("b", 20, synapse="conductance", integration="euler", t_ref=3.0, i_bias=6.0,
                theta_rule="add", theta_plus=0.3, tau_theta=200.0, tau_e=2.0, tau_i=4.0))
    net.add(LIF("c", 15, synapse="conductance", integration="exact", t_ref=1.0, tau_m=30.0,
                v_rest=-65.0, v_reset=-65.0, v_thresh=-52.0, i_bias=12.0, theta_rule="hao",
                theta_plus=0.07, theta_init=20.0, theta_offset=20.0, tau_theta=500.0,
                v_floor=-70.0, e_i=-100.0))
    net.connect(connect.dense("in_a", "in", "a", rng.uniform(0, 2.0, (n_in, 20)), delay=1.0))
    m = 400
    net.connect(Projection("in_b", "in", "b", rng.integers(0, n_in, m), rng.integers(0, 20, m),
                           rng.uniform(0, 0.4, m), delay=rng.integers(0, 12, m) * DT))
    net.connect(connect.dense("a_b", "a", "b", rng.uniform(0, 0.3, (20, 20)), delay=0.5,
                              rule=PairSTDP(a_plus=0.02, a_minus=0.021, w_max=0.6)))
    net.connect(connect.dense("b_a", "b", "a", rng.uniform(-0.6, 0, (20, 20)), target="i"))
    net.connect(connect.dense("in_c", "in", "c", rng.uniform(0, 0.3, (n_in, 15)),
                              rule=DiehlCookSTDP(nu_pre=1e-3, nu_post=2e-2, w_max=0.5)))
    net.connect(connect.dense("a_c", "a", "c", rng.uniform(0, 0.2, (20, 15)), delay=2.0,
                              rule=SymmetricSTDP(eta=0.01, w_max=0.4)))
    net.connect(connect.dense("b_c", "b", "c", rng.uniform(0, 0.3, (20, 15)),
                              rule=PairSTDP(a_plus=0.03, a_minus=0.03, w_max=0.5,
                                            multiplicative=True)))
    net.connect(connect.all_but_self("c_c", "c", "c", 15, 0.4, target="i", delay=1.5))
    net.add(LIF("d", 10, synapse="current", integration="euler_expsyn", t_ref=2.5, i_bias=9.5,
                tau_e=1.5))
    net.connect(connect.dense("in_d", "in", "d", rng.uniform(0, 3.0, (n_in, 10))))
    net.connect(connect.dense("c_d", "c", "d", rng.uniform(-0.3, 0, (15, 10)), target="i"))
    net.monitor(SpikeMonitor())
    return net


@pytest.fixture(scope="module")
def mixed():
    net = _mixed_network()
    sim = net.compile(seed=0)
    ours = sim.run(T)
    theirs = run_brian2(net, T, target="numpy")
    return net, sim, ours, theirs


def test_identical_spike_trains(mixed):
    net, sim, ours, theirs = mixed
    a, b = _trains(ours["spikes"], DT), _trains(theirs["spikes"], DT)
    for pop in ("a", "b", "c", "d"):
        assert len(a[pop]) >= 100, (pop, len(a[pop]))  # enough activity to be a real test
        assert a[pop] == b[pop], pop


def test_identical_weights(mixed):
    net, sim, ours, theirs = mixed
    for name in ("a_b", "in_c", "a_c", "b_c"):
        w0 = net.projections[[q.name for q in net.projections].index(name)].w
        ours_w = sim.weights(name).reshape(-1)
        assert np.abs(ours_w - w0).max() > 1e-3, name  # the rule did change the weights
        np.testing.assert_allclose(ours_w, theirs["weights"][name], rtol=0, atol=1e-9)


def _voltage_net(t_ref: float) -> Network:
    """Spike-time inputs kicking v directly (``target="v"``) of LIFs with a constant drive."""
    rng = np.random.default_rng(7)
    net = Network(dt=DT)
    idx, tim = _source(rng, 30, 20.0, T, DT)
    net.add(SpikeSource("in", 30, idx, tim))
    net.add(LIF("out", 10, synapse="current", integration="euler", t_ref=t_ref, i_bias=9.0))
    net.connect(connect.dense("in_out", "in", "out", rng.uniform(0, 1.5, (30, 10)),
                              target="v", delay=rng.integers(0, 6) * DT))
    net.monitor(SpikeMonitor(["out"]))
    return net


def _compare(net: Network) -> tuple[list, list]:
    ours = net.compile(seed=0).run(T)["spikes"]
    theirs = run_brian2(net, T, target="numpy")["spikes"]
    return _trains(ours, DT)["out"], _trains(theirs, DT)["out"]


def test_voltage_target_without_refractoriness():
    a, b = _compare(_voltage_net(0.0))
    assert len(a) >= 100
    assert a == b


def test_voltage_target_during_refractoriness():
    # Brian2's '(unless refractory)' also drops synaptic writes 'v += w' while refractory.
    a, b = _compare(_voltage_net(2.0))
    assert len(a) >= 100
    assert a == b


def test_poisson_dead_time_exports_as_brian2_refractoriness():
    """A source with a dead time runs in Brian2 as per-step Bernoulli draws with its
    ``refractory``; its intervals follow the same closed form as the engine's
    (tests/test_engine.py), P(ISI = k) = q (1 − q)^(k − R) for k ≥ R."""
    q, steps = 0.1, 4000
    net = Network(dt=DT)
    net.add(PoissonSource("in", 100, rates=q / (DT * 1e-3), t_ref=2 * DT))
    net.monitor(SpikeMonitor())
    t, i = run_brian2(net, steps * DT, target="numpy")["spikes"]["in"]
    expected = 100 * steps * q / (1 + q)
    assert abs(len(t) - expected) < 5 * np.sqrt(expected)
    isi_fit_dead_time(spike_steps(t, DT), i, q, 2)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["coba", "cuba"])
def test_brette_statistics_match_brian2(kind):
    """Brette et al. 2007 networks (4000 neurons, 1 s): mean rate and CV of ISI within 5%."""
    from biolearn.benchmarks._common import T_MS, brette_network, spike_stats

    net = brette_network(kind, seed=2)
    n = net.populations[0].n
    ours = net.compile(seed=0).run(T_MS)["spikes"]["P"]
    theirs = run_brian2(net, T_MS, target="cython")["spikes"]["P"]
    a = spike_stats(ours[0], ours[1], n, T_MS)
    b = spike_stats(theirs[0], theirs[1], n, T_MS)
    assert a["rate_hz"] > 1.0 and b["rate_hz"] > 1.0
    assert a["rate_hz"] == pytest.approx(b["rate_hz"], rel=0.05)
    assert a["cv_isi"] == pytest.approx(b["cv_isi"], rel=0.05)
