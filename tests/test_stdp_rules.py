"""Triplet STDP (Pfister & Gerstner 2006) and reward-modulated STDP with an eligibility trace
(Izhikevich 2007): weight changes against closed forms written from the papers' equations, the
pairing-frequency protocol of Sjöström et al. 2001, and spike-for-spike identity with Brian2."""

from __future__ import annotations

import math

import numpy as np
import pytest
from spike_cases import grid_source, trains

from biolearn.engine import LIF, Network, SpikeMonitor, SpikeSource, connect
from biolearn.engine.front import Projection
from biolearn.rules.stdp import REWARD_STDP, TRIPLET_STDP, RewardSTDP, TripletSTDP

DT = 0.1
INF = math.inf


def _pairs_net(rule, pre: list, post: list, w0: float = 0.5, dt: float = DT) -> Network:
    """Independent synapses k: pre neuron k → post neuron k, pre spikes at the steps ``pre[k]``;
    post neuron k is forced to spike at the steps ``post[k]`` by a voltage kick one step earlier
    (the threshold is checked before synaptic input within a step)."""
    n = len(pre)
    pi = np.concatenate([np.full(len(s), k) for k, s in enumerate(pre)]).astype(int)
    pt = np.concatenate([np.asarray(s, float) for s in pre]) * dt
    di = np.concatenate([np.full(len(s), k) for k, s in enumerate(post)]).astype(int)
    dts = (np.concatenate([np.asarray(s, float) for s in post]) - 1) * dt
    net = Network(dt=dt)
    net.add(SpikeSource("pre", n, pi, pt))
    net.add(SpikeSource("drive", n, di, dts))
    net.add(LIF("post", n, synapse="current", integration="exact", t_ref=0.0))
    net.connect(Projection("p", "pre", "post", np.arange(n), np.arange(n), w0, target="e",
                           rule=rule))
    net.connect(Projection("kick", "drive", "post", np.arange(n), np.arange(n), 100.0, target="v"))
    net.monitor(SpikeMonitor(["post"]))
    return net


def _run_forced(net: Network, post: list, t_ms: float):
    """Compile and run; check that the post neurons spiked exactly on the forced steps."""
    sim = net.compile(seed=0)
    out = sim.run(t_ms)
    t, i = out["spikes"]["post"]
    steps = np.round(t / net.dt).astype(int)
    for k, s in enumerate(post):
        np.testing.assert_array_equal(np.sort(steps[i == k]), np.sort(s))
    return sim


# ------------------------------------------------------------------------------------ triplet
# All four amplitudes nonzero, so that both triplet terms show.
TR = TripletSTDP(A2_plus=5e-3, A3_plus=6e-3, A2_minus=7e-3, A3_minus=3e-3, tau_plus=16.8,
                 tau_minus=33.7, tau_x=101.0, tau_y=125.0)


def _triplet_dw(pre_steps: list, post_steps: list, dt: float = DT) -> float:
    return _run_forced(_pairs_net(TR, [pre_steps], [post_steps], 0.5, dt), [post_steps],
                       300.0).weights("p")[0] - 0.5


@pytest.mark.parametrize("delta", [-30.0, -7.5, -0.1, 0.0, 0.1, 4.0, 25.0])
def test_triplet_pair_closed_form(delta):
    """One pre at 0, one post at Δt: only the pair terms act (the other trace of each triplet
    term is still 0). Pfister & Gerstner: on post w += r1·(A2+ + A3+·o2), on pre
    w −= o1·(A2− + A3−·r2)."""
    d = int(round(delta / DT))
    dw = _triplet_dw([1000], [1000 + d])
    if delta >= 0:  # pre first (at Δt = 0 the pre event comes first in the step)
        expected = TR.A2_plus * math.exp(-delta / TR.tau_plus)
    else:
        expected = -TR.A2_minus * math.exp(delta / TR.tau_minus)
    assert dw == pytest.approx(expected, rel=1e-12, abs=1e-15)


# (order, t1, t2, t3) in ms from the first spike of the triplet
TRIPLETS = [("post-pre-post", 0.0, 12.0, 20.0), ("post-pre-post", 0.0, 40.0, 45.5),
            ("pre-post-pre", 0.0, 8.0, 18.0), ("pre-post-pre", 0.0, 3.0, 60.0),
            ("pre-post-post", 0.0, 6.0, 15.0), ("post-pre-pre", 0.0, 5.0, 30.0)]


@pytest.mark.parametrize("order,t1,t2,t3", TRIPLETS)
def test_triplet_closed_form(order, t1, t2, t3):
    """Three spikes: each spike's update uses the traces of the earlier ones, r2 and o2 read
    before the spike's own increment."""
    s1, s2, s3 = (1000 + int(round(t / DT)) for t in (t1, t2, t3))
    a2p, a3p, a2m, a3m = TR.A2_plus, TR.A3_plus, TR.A2_minus, TR.A3_minus
    tp, tm, tx, ty = TR.tau_plus, TR.tau_minus, TR.tau_x, TR.tau_y
    ex = math.exp
    if order == "post-pre-post":
        pre, post = [s2], [s1, s3]
        dw = -a2m * ex(-(t2 - t1) / tm) + ex(-(t3 - t2) / tp) * (a2p + a3p * ex(-(t3 - t1) / ty))
        pair_only = -a2m * ex(-(t2 - t1) / tm) + a2p * ex(-(t3 - t2) / tp)
    elif order == "pre-post-pre":
        pre, post = [s1, s3], [s2]
        dw = a2p * ex(-(t2 - t1) / tp) - ex(-(t3 - t2) / tm) * (a2m + a3m * ex(-(t3 - t1) / tx))
        pair_only = a2p * ex(-(t2 - t1) / tp) - a2m * ex(-(t3 - t2) / tm)
    elif order == "pre-post-post":
        pre, post = [s1], [s2, s3]
        dw = a2p * ex(-(t2 - t1) / tp) + ex(-(t3 - t1) / tp) * (a2p + a3p * ex(-(t3 - t2) / ty))
        pair_only = a2p * (ex(-(t2 - t1) / tp) + ex(-(t3 - t1) / tp))
    else:  # post-pre-pre
        pre, post = [s2, s3], [s1]
        dw = -a2m * ex(-(t2 - t1) / tm) - ex(-(t3 - t1) / tm) * (a2m + a3m * ex(-(t3 - t2) / tx))
        pair_only = -a2m * (ex(-(t2 - t1) / tm) + ex(-(t3 - t1) / tm))
    assert abs(dw - pair_only) > 1e-4  # the triplet term matters in this case
    assert _triplet_dw(pre, post) == pytest.approx(dw, rel=1e-12)


def _triplet_sum(pre: list, post: list, r: TripletSTDP) -> float:
    """Weight change of the all-to-all triplet rule written as sums over earlier spikes
    (Pfister & Gerstner 2006): at a pre spike −Σ_post e^{−Δ/τ−}·(A2− + A3−·Σ_pre' e^{−Δ/τx}), at a
    post spike Σ_pre e^{−Δ/τ+}·(A2+ + A3+·Σ_post' e^{−Δ/τy}); primed sums over strictly earlier
    spikes of the same side, a pre and a post at the same time count as pre first."""
    dw = 0.0
    for t, kind in sorted([(t, 0) for t in pre] + [(t, 1) for t in post]):
        if kind == 0:
            o1 = sum(math.exp(-(t - s) / r.tau_minus) for s in post if s < t)
            r2 = sum(math.exp(-(t - s) / r.tau_x) for s in pre if s < t)
            dw -= o1 * (r.A2_minus + r.A3_minus * r2)
        else:
            r1 = sum(math.exp(-(t - s) / r.tau_plus) for s in pre if s <= t)
            o2 = sum(math.exp(-(t - s) / r.tau_y) for s in post if s < t)
            dw += r1 * (r.A2_plus + r.A3_plus * o2)
    return dw


FREQS = [0.1, 1.0, 10.0, 20.0, 40.0, 50.0]


@pytest.fixture(scope="module")
def pairing_frequency():
    """60 pairings at f (Hz), post 10 ms after (+10) or before (−10) the pre spike; the paper's
    minimal all-to-all visual-cortex model without weight bounds, from w = 0."""
    r = TripletSTDP.visual_cortex_minimal(w_min=-INF, w_max=INF)
    dt = 0.5
    cases, pre, post = [], [], []
    for f in FREQS:
        for lag in (10.0, -10.0):
            tk = 100.0 + np.arange(60) * 1000.0 / f
            a, b = (tk, tk + lag) if lag > 0 else (tk - lag, tk)
            cases.append((f, lag))
            pre.append(np.round(a / dt).astype(int))
            post.append(np.round(b / dt).astype(int))
    net = _pairs_net(r, pre, post, 0.0, dt)
    sim = _run_forced(net, post, 100.0 + 60 * 1000.0 / min(FREQS))
    dw = dict(zip(cases, sim.weights("p"), strict=True))
    ref = {c: _triplet_sum(list(a * dt), list(b * dt), r) for c, a, b in zip(cases, pre, post,
                                                                            strict=True)}
    return dw, ref


def test_pairing_frequency_matches_sum_over_pairings(pairing_frequency):
    dw, ref = pairing_frequency
    for c in dw:
        assert dw[c] == pytest.approx(ref[c], rel=1e-9), c


def test_pairing_frequency_signs(pairing_frequency):
    """Sjöström et al. 2001 as the triplet model reproduces it: post-pre (−10 ms) pairings
    depress at low frequency and potentiate at 40–50 Hz; pre-post (+10 ms) pairings do nothing
    at 0.1 Hz (A2+ = 0: potentiation needs an earlier post spike) and potentiate more the higher
    the frequency. A pair rule cannot turn −10 ms pairings into potentiation."""
    dw, _ = pairing_frequency
    for f in (0.1, 1.0, 10.0, 20.0):
        assert dw[(f, -10.0)] < -0.1, f
    for f in (40.0, 50.0):
        assert dw[(f, -10.0)] > 0.1, f
    assert abs(dw[(0.1, 10.0)]) < 1e-12
    plus = [dw[(f, 10.0)] for f in FREQS[1:]]
    assert plus[0] > 0 and all(b > a for a, b in zip(plus, plus[1:], strict=False))
    assert dw[(50.0, 10.0)] > 0.5


def test_triplet_parameter_sets():
    """Visual-cortex fits of Pfister & Gerstner 2006 (all-to-all), and the definition's defaults
    equal the dataclass defaults."""
    m, f = TripletSTDP.visual_cortex_minimal(), TripletSTDP.visual_cortex_full()
    assert (m.A2_plus, m.A3_plus, m.A2_minus, m.A3_minus, m.tau_y) == (0.0, 6.5e-3, 7.1e-3, 0.0,
                                                                       114.0)
    assert (f.A2_plus, f.A3_plus, f.A2_minus, f.A3_minus, f.tau_x, f.tau_y) == (
        5e-10, 6.2e-3, 7e-3, 2.3e-4, 101.0, 125.0)
    assert (m.tau_plus, m.tau_minus) == (f.tau_plus, f.tau_minus) == (16.8, 33.7)
    from biolearn.engine.definitions import synapse_ir

    for defn, rule in ((TRIPLET_STDP, TripletSTDP()), (REWARD_STDP, RewardSTDP())):
        ir = synapse_ir(defn)
        assert {p.name: p.default for p in ir.params} == pytest.approx(rule.values())
    ir = synapse_ir(TRIPLET_STDP)
    assert (ir.pre_traces, ir.post_traces, ir.syn_traces) == (["r1", "r2"], ["o1", "o2"], [])
    ir = synapse_ir(REWARD_STDP)
    assert (ir.pre_traces, ir.post_traces, ir.syn_traces) == (["apre"], ["apost"], ["c"])


# ------------------------------------------------------------------------------------- reward
RW = RewardSTDP(A_plus=1.0, A_minus=1.5, tau_plus=17.0, tau_minus=23.0, tau_c=400.0, eta=0.02)


@pytest.mark.parametrize("delta", [5.0, 0.0, -8.0])
def test_reward_turns_eligibility_into_weight_change(delta):
    """One pair at Δt; w is unchanged by the spikes; a reward R at T adds eta·R·c(T) with
    c(T) = A+·e^{−Δt/τ+}·e^{−(T − t_post)/τc} (Δt ≥ 0) or −A−·e^{Δt/τ−}·e^{−(T − t_pre)/τc}
    (Δt < 0); a later reward sees c decayed further; reward 0 changes nothing."""
    w0 = 0.5
    s_pre, s_post = 1000, 1000 + int(round(delta / DT))
    sim = _run_forced(_pairs_net(RW, [[s_pre]], [[s_post]], w0), [[s_post]], 250.0)
    assert sim.weights("p")[0] == w0  # spikes move only the eligibility trace
    t_pre, t_post = s_pre * DT, s_post * DT
    if delta >= 0:
        c_at = lambda t: RW.A_plus * math.exp(-delta / RW.tau_plus) * math.exp(  # noqa: E731
            -(t - t_post) / RW.tau_c)
    else:
        c_at = lambda t: -RW.A_minus * math.exp(delta / RW.tau_minus) * math.exp(  # noqa: E731
            -(t - t_pre) / RW.tau_c)
    sim.apply_event("p", "reward", reward=0.0)
    assert sim.weights("p")[0] == w0
    r1, r2 = 3.0, -2.0
    sim.apply_event("p", "reward", reward=r1)  # at T = 250 ms
    w1 = sim.weights("p")[0]
    assert w1 - w0 == pytest.approx(RW.eta * r1 * c_at(250.0), rel=1e-12)
    sim.run(350.0)  # no spikes: c decays to T = 600 ms; w stays
    assert sim.weights("p")[0] == w1
    sim.apply_event("p", "reward", reward=r2)
    assert sim.weights("p")[0] - w1 == pytest.approx(RW.eta * r2 * c_at(600.0), rel=1e-12)


def test_reward_eligibility_sums_pairs_and_respects_bounds():
    """All-to-all: two pre spikes then a post add both pairings to c; the reward's weight change
    is clipped to [w_min, w_max]; scale_learning_rate scales eta."""
    r = RewardSTDP(A_plus=1.0, A_minus=1.5, tau_plus=20.0, tau_minus=20.0, tau_c=1000.0, eta=0.1,
                   w_max=0.6)
    sim = _run_forced(_pairs_net(r, [[1000, 1100]], [[1150]], 0.5), [[1150]], 200.0)
    c = math.exp(-15.0 / 20.0) + math.exp(-5.0 / 20.0)
    c *= math.exp(-(200.0 - 115.0) / 1000.0)
    sim.scale_learning_rate("p", 0.5)
    sim.apply_event("p", "reward", reward=1.0)
    assert sim.weights("p")[0] - 0.5 == pytest.approx(0.05 * c, rel=1e-12)
    sim.scale_learning_rate("p", 1.0)
    sim.apply_event("p", "reward", reward=10.0)
    assert sim.weights("p")[0] == 0.6


# ------------------------------------------------------------------------------------- Brian2
B2_DT = 0.5
B2_T = 1000.0




def _b2_network(rule_dense, rule_sparse, seed: int = 5) -> Network:
    rng = np.random.default_rng(seed)
    net = Network(dt=B2_DT)
    n_in, n_out = 40, 12
    idx, tim = grid_source(rng, n_in, 20.0, B2_T, B2_DT)
    net.add(SpikeSource("in", n_in, idx, tim))
    net.add(LIF("out", n_out, synapse="current", integration="exact", t_ref=2.0, i_bias=8.0,
                v_init=rng.uniform(-60, -52, n_out)))
    net.connect(connect.dense("in_out", "in", "out", rng.uniform(0, 1.2, (n_in, n_out)),
                              delay=1.0, rule=rule_dense))
    m = 150
    net.connect(Projection("in_out2", "in", "out", rng.integers(0, n_in, m),
                           rng.integers(0, n_out, m), rng.uniform(0, 0.8, m), rule=rule_sparse))
    net.monitor(SpikeMonitor())
    return net




@pytest.mark.brian2
def test_triplet_identical_to_brian2():
    pytest.importorskip("brian2")
    from biolearn.backends.brian2 import run_brian2

    net = _b2_network(TripletSTDP(A2_plus=5e-3, A3_plus=8e-3, A2_minus=7e-3, A3_minus=3e-3),
                      TripletSTDP.visual_cortex_full(A3_plus=2e-2, A3_minus=2e-3, w_max=0.8))
    sim = net.compile(seed=0)
    ours = sim.run(B2_T)
    theirs = run_brian2(net, B2_T, target="numpy")
    a, b = trains(ours["spikes"], B2_DT), trains(theirs["spikes"], B2_DT)
    assert len(a["out"]) >= 100
    assert a["out"] == b["out"]
    for q in net.projections:
        w = sim.weights(q.name).reshape(-1)
        assert np.abs(w - q.w).max() > 1e-3, q.name  # the rule did change the weights
        np.testing.assert_allclose(w, theirs["weights"][q.name], rtol=0, atol=1e-9)


@pytest.mark.brian2
def test_reward_stdp_eligibility_identical_to_brian2():
    """Same spikes, weights untouched during the run, and the same eligibility traces."""
    b2 = pytest.importorskip("brian2")
    from biolearn.backends.brian2 import to_brian2

    r1 = RewardSTDP(tau_c=300.0)
    r2 = RewardSTDP(A_plus=0.5, A_minus=0.8, tau_plus=15.0, tau_minus=30.0, tau_c=700.0)
    net = _b2_network(r1, r2)
    sim = net.compile(seed=0)
    ours = sim.run(B2_T)
    old = b2.prefs.codegen.target
    b2.prefs.codegen.target = "numpy"
    try:
        network, h = to_brian2(net)
        network.run(B2_T * b2.ms)
    finally:
        b2.prefs.codegen.target = old
    spk = {k: (np.asarray(m.t / b2.ms), np.asarray(m.i[:])) for k, m in h["spikes"].items()}
    a, b = trains(ours["spikes"], B2_DT), trains(spk, B2_DT)
    assert len(a["out"]) >= 100
    assert a["out"] == b["out"]
    for k, (q, r) in enumerate(zip(net.projections, (r1, r2), strict=True)):
        s = h["synapses"][q.name]
        np.testing.assert_array_equal(np.asarray(s.w[:]), q.w)
        np.testing.assert_array_equal(sim.weights(q.name).reshape(-1), q.w)
        # c of both, decayed to the end of the run, in the projection's synapse order
        c_b2 = np.asarray(s.c[:]) * np.exp(-(B2_T - np.asarray(s.lastupdate / b2.ms)) / r.tau_c)
        seg = slice(sim.syn_off[k], sim.syn_off[k + 1])
        ir = sim.rules[sim.pr_rule[k] - 1]
        row = len(ir.syn_vars) + ir.syn_traces.index("c")
        c_ours = np.empty(seg.stop - seg.start)
        c_ours[q._order] = sim.syn_x[row, seg] * np.exp(-(sim.t - sim.syn_t[seg]) * B2_DT / r.tau_c)
        assert np.abs(c_ours).max() > 1e-2
        np.testing.assert_allclose(c_ours, c_b2, rtol=0, atol=1e-12)
