"""Engine tests against closed forms and an independent per-step reference implementation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from spike_cases import isi_fit_dead_time

from biolearn.engine import (
    LIF,
    Network,
    PoissonSource,
    SpikeMonitor,
    SpikeSource,
    StateMonitor,
    connect,
)
from biolearn.engine.front import Projection
from biolearn.errors import BiolearnError
from biolearn.rules.stdp import DiehlCookSTDP, PairSTDP, SymmetricSTDP

# ----------------------------------------------------------------------------- single neuron


def _period_steps(v_inf: float, v_from: float, v_th: float, tau: float, dt: float,
                  method: str) -> int:
    """Steps of integration from ``v_from`` until v first exceeds ``v_th`` (closed form)."""
    if method == "exact":  # v(t) = v_inf + (v_from − v_inf) e^{−t/τ}
        t_cross = tau * math.log((v_inf - v_from) / (v_inf - v_th))
        return math.ceil(t_cross / dt)
    # forward Euler: v_n = v_inf + (v_from − v_inf)(1 − dt/τ)^n
    return math.ceil(math.log((v_inf - v_th) / (v_inf - v_from)) / math.log(1 - dt / tau))


@pytest.mark.parametrize("synapse,integration", [("current", "exact"), ("conductance", "exact"),
                                                 ("current", "euler"),
                                                 ("conductance", "euler")])
@pytest.mark.parametrize("t_ref", [0.0, 2.0])
def test_lif_constant_current_period(synapse, integration, t_ref):
    dt, tau, i_bias = 0.1, 20.0, 17.3
    net = Network(dt=dt)
    net.add(LIF("n", 1, synapse=synapse, integration=integration, tau_m=tau, v_rest=-60.0,
                v_reset=-60.0, v_thresh=-50.0, t_ref=t_ref, i_bias=i_bias, v_init=-57.0))
    net.monitor(SpikeMonitor())
    t, _ = net.compile().run(500.0)["spikes"]["n"]
    steps = np.round(t / dt).astype(int)
    v_inf = -60.0 + i_bias
    first = _period_steps(v_inf, -57.0, -50.0, tau, dt, integration) - 1  # spike on that step
    period = _period_steps(v_inf, -60.0, -50.0, tau, dt, integration)
    ref = int(round(t_ref / dt))
    isi = period + max(ref - 1, 0)  # v_reset holds until step s + ref, then integrates again
    expect = first + isi * np.arange(len(steps))
    assert len(steps) > 10
    np.testing.assert_array_equal(steps, expect)
    if integration == "exact":  # and within one step of the continuous solution
        t_an = tau * math.log((v_inf + 60.0) / (v_inf + 50.0)) + t_ref
        assert abs(np.diff(t).mean() - t_an) <= dt


def test_refractory_clamps_v():
    dt = 0.1
    net = Network(dt=dt)
    net.add(LIF("n", 1, synapse="current", integration="exact", t_ref=3.0, i_bias=30.0))
    net.monitor(SpikeMonitor())
    net.monitor(StateMonitor("n", "v"))
    out = net.compile().run(100.0)
    s = np.round(out["spikes"]["n"][0] / dt).astype(int)
    v = out["states"]["n.v"][:, 0]
    assert len(s) > 3
    for k in s[:-1]:
        np.testing.assert_array_equal(v[k:k + 30], -60.0)  # reset step + 29 clamped steps
        assert v[k + 30] > -60.0


# ----------------------------------------------------------------------------- STDP closed forms


def _pair_net(rule, dt_ms: float, w0: float = 0.5, post_steps=(), dt: float = 0.1,
              pre_step: int = 1000):
    """One pre spike at ``pre_step`` and post spikes forced by a voltage kick one step after
    each of ``post_steps`` (threshold is checked before synaptic input within a step)."""
    net = Network(dt=dt)
    net.add(SpikeSource("pre", 1, [0], [pre_step * dt]))
    drive = [s - 1 for s in post_steps]
    net.add(SpikeSource("drive", 1, np.zeros(len(drive), int), np.array(drive) * dt))
    net.add(LIF("post", 1, synapse="current", integration="exact", t_ref=0.0))
    net.connect(Projection("p", "pre", "post", [0], [0], w0, target="e", rule=rule))
    net.connect(Projection("kick", "drive", "post", [0], [0], 100.0, target="v"))
    net.monitor(SpikeMonitor(["post"]))
    sim = net.compile()
    out = sim.run(300.0)
    got = np.round(out["spikes"]["post"][0] / dt).astype(int)
    np.testing.assert_array_equal(got, post_steps)  # the forcing worked, nothing else fired
    return sim.weights("p")[0]


DTS = [-30.0, -7.5, -0.1, 0.0, 0.1, 4.0, 25.0]


@pytest.mark.parametrize("delta", DTS)
@pytest.mark.parametrize("mult", [False, True])
def test_pair_stdp_closed_form(delta, mult):
    r = PairSTDP(a_plus=0.01, a_minus=0.012, tau_pre=17.0, tau_post=23.0, multiplicative=mult)
    w0 = 0.4
    post = 1000 + int(round(delta / 0.1))
    w = _pair_net(r, delta, w0, post_steps=[post])
    if delta >= 0:  # pre (then) post: potentiation; at Δt = 0 the pre event comes first
        dw = r.a_plus * math.exp(-delta / r.tau_pre) * ((r.w_max - w0) if mult else 1.0)
    else:
        dw = -r.a_minus * math.exp(delta / r.tau_post) * ((w0 - r.w_min) if mult else 1.0)
    assert w - w0 == pytest.approx(dw, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("delta", DTS)
def test_symmetric_stdp_closed_form(delta):
    r = SymmetricSTDP(eta=0.02, tau=20.0, inc=0.1, w_max=1.0)
    w = _pair_net(r, delta, 0.3, post_steps=[1000 + int(round(delta / 0.1))])
    assert w - 0.3 == pytest.approx(r.eta * r.inc * math.exp(-abs(delta) / r.tau), rel=1e-12)


@pytest.mark.parametrize("delta", DTS)
def test_symmetric_stdp_unequal_increments_closed_form(delta):
    """Pre then post: the post spike reads the pre trace (inc); post then pre: the pre spike
    reads the post trace (inc_post)."""
    r = SymmetricSTDP(eta=0.02, tau=20.0, inc=0.1, inc_post=0.7, w_max=1.0)
    w = _pair_net(r, delta, 0.3, post_steps=[1000 + int(round(delta / 0.1))])
    inc = r.inc if delta >= 0 else 0.7
    assert w - 0.3 == pytest.approx(r.eta * inc * math.exp(-abs(delta) / r.tau), rel=1e-12)


def test_genn_race_increments_are_the_warp_bounds():
    from biolearn.rules.stdp import genn_race_increments

    # 784 inputs -> 400 hidden: a pre spike is written by 400 threads = 13 warps, a post spike
    # by 784 threads = 25 warps
    assert genn_race_increments(0.1, 784, 400, 0.0) == (0.1, 0.1)
    pre, post = genn_race_increments(0.1, 784, 400, 1.0)
    assert pre == pytest.approx(1.3) and post == pytest.approx(2.5)
    pre, post = genn_race_increments(0.1, 6400, 10, 0.5)  # hidden -> class: 1 warp per pre spike
    assert pre == pytest.approx(0.1) and post == pytest.approx(0.1 * (1 + 0.5 * 199))
    with pytest.raises(ValueError):
        genn_race_increments(0.1, 10, 10, 1.5)


@pytest.mark.parametrize("t0,t2", [(-12.0, 5.0), (-3.0, 30.0), (-50.0, 0.5)])
def test_diehl_cook_closed_form(t0, t2):
    """Post at t0 < 0, pre at 0, post at t2 > 0 (ms relative to the pre spike)."""
    r = DiehlCookSTDP(nu_pre=1e-3, nu_post=2e-2, tau_pre=20.0, tau_post1=20.0, tau_post2=40.0)
    s0, s2 = 1000 + int(round(t0 / 0.1)), 1000 + int(round(t2 / 0.1))
    w = _pair_net(r, 0.0, 0.5, post_steps=[s0, s2])
    dw = (-r.nu_pre * math.exp(t0 / r.tau_post1)  # on pre: − ν_pre·x_post1
          + r.nu_post * math.exp(-t2 / r.tau_pre) * math.exp(-(t2 - t0) / r.tau_post2))
    assert w - 0.5 == pytest.approx(dw, rel=1e-12)


def test_diehl_cook_needs_previous_post_spike():
    r = DiehlCookSTDP()
    w = _pair_net(r, 5.0, 0.5, post_steps=[1050])  # pre then post, no earlier post spike
    assert w == 0.5  # x_post2 before the post spike is 0: no potentiation


# ----------------------------------------------------------------------------- lazy traces


def _reference_weights(rule, w0, pre_steps, post_steps, ii, jj, n_pre, n_post, delay, n_steps,
                       dt, set_w=None):
    """Per-step simulation of a trace rule: every trace is decayed on every step.

    ``set_w`` maps a step to ``(mask, value)``: ``w[mask] = value`` before that step runs."""
    p = rule.params()
    tau_pre, tau1, tau2, inc_pre, inc_post, setm, eta_pre, eta_post, wmin, wmax = p
    f_pre, f1, f2 = (math.exp(-dt / tau_pre), math.exp(-dt / tau1), math.exp(-dt / tau2))
    xp, x1, x2 = np.zeros(n_pre), np.zeros(n_post), np.zeros(n_post)
    w = np.array(w0, float)
    arrivals: dict[int, list[int]] = {}
    for s, i in pre_steps:
        arrivals.setdefault(s + delay, []).append(i)
    posts: dict[int, list[int]] = {}
    for s, j in post_steps:
        posts.setdefault(s, []).append(j)
    code = rule.code
    for t in range(n_steps):
        if set_w and t in set_w:
            w[set_w[t][0]] = set_w[t][1]
        xp *= f_pre
        x1 *= f1
        x2 *= f2
        for i in arrivals.get(t, []):
            for s in np.flatnonzero(ii == i):
                j = jj[s]
                if code == 4:  # symmetric
                    w[s] = min(w[s] + eta_pre * x1[j], wmax)
                elif code == 2:  # multiplicative
                    w[s] = np.clip(w[s] - eta_pre * x1[j] * (w[s] - wmin), wmin, wmax)
                else:
                    w[s] = np.clip(w[s] - eta_pre * x1[j], wmin, wmax)
            xp[i] = inc_pre if setm else xp[i] + inc_pre
        for j in posts.get(t, []):
            for s in np.flatnonzero(jj == j):
                i = ii[s]
                if code == 4:
                    w[s] = min(w[s] + eta_post * xp[i], wmax)
                elif code == 3:  # Diehl & Cook: post2 before its update
                    w[s] = np.clip(w[s] + eta_post * xp[i] * x2[j], wmin, wmax)
                elif code == 2:
                    w[s] = np.clip(w[s] + eta_post * xp[i] * (wmax - w[s]), wmin, wmax)
                else:
                    w[s] = np.clip(w[s] + eta_post * xp[i], wmin, wmax)
            x1[j] = inc_post if setm else x1[j] + inc_post
            x2[j] = inc_post if setm else x2[j] + inc_post
    return w


@pytest.mark.parametrize("rule", [PairSTDP(a_plus=0.02, a_minus=0.021),
                                  PairSTDP(a_plus=0.05, a_minus=0.04, multiplicative=True),
                                  DiehlCookSTDP(nu_pre=5e-3, nu_post=5e-2),
                                  SymmetricSTDP(eta=0.05, w_max=0.8)],
                         ids=["pair_add", "pair_mult", "diehl_cook", "symmetric"])
def test_lazy_traces_equal_per_step_traces(rule):
    rng = np.random.default_rng(11)
    dt, n_steps, n_pre, n_post, d = 0.1, 12000, 8, 4, 7
    # sparse pre spikes incl. a silence longer than the 4096-step decay table
    pre_idx, pre_t = [], []
    for i in range(n_pre):
        st = np.unique(np.concatenate([rng.integers(0, 3000, 6), rng.integers(8000, 11000, 6)]))
        pre_idx += [i] * len(st)
        pre_t += list(st * dt)
    drive_idx, drive_t = [], []
    for j in range(n_post):
        st = np.unique(np.concatenate([rng.integers(1, 3000, 5), rng.integers(8500, 11500, 5)]))
        drive_idx += [j] * len(st)
        drive_t += list((st - 1) * dt)
    net = Network(dt=dt)
    net.add(SpikeSource("pre", n_pre, pre_idx, pre_t))
    net.add(SpikeSource("drive", n_post, drive_idx, drive_t))
    net.add(LIF("post", n_post, synapse="current", integration="exact", t_ref=0.0))
    ii, jj = np.divmod(np.arange(n_pre * n_post), n_post)
    w0 = rng.uniform(0.1, 0.6, len(ii))
    net.connect(Projection("p", "pre", "post", ii, jj, w0, delay=d * dt, target="e", rule=rule))
    net.connect(connect.one_to_one("kick", "drive", "post", n_post, 100.0, target="v"))
    net.monitor(SpikeMonitor(["pre", "post"]))
    sim = net.compile()
    out = sim.run(steps=n_steps)
    post = [(int(round(t / dt)), int(j)) for t, j in zip(*out["spikes"]["post"], strict=True)]
    pre = [(int(round(t / dt)), int(i)) for t, i in zip(*out["spikes"]["pre"], strict=True)]
    assert len(post) >= 30 and len(pre) >= 60
    ref = _reference_weights(rule, w0, pre, post, ii, jj, n_pre, n_post, d, n_steps, dt)
    np.testing.assert_allclose(sim.weights("p"), ref, rtol=0, atol=1e-12)
    assert np.abs(ref - w0).max() > 1e-3


@pytest.mark.parametrize("rule", [SymmetricSTDP(eta=0.05, tau=20.0, inc=0.1, w_max=0.8),
                                  PairSTDP(a_plus=0.02, a_minus=0.021, w_max=0.8),
                                  PairSTDP(a_plus=0.05, a_minus=0.04, multiplicative=True),
                                  DiehlCookSTDP(nu_pre=5e-3, nu_post=5e-2)],
                         ids=["symmetric", "pair_add", "pair_mult", "diehl_cook"])
def test_few_active_posts_equal_per_step_reference(rule):
    """Wide dense projection where only a few posts fire: the kernel then updates only the posts
    that spiked since the last reset, plus a clip pass. It must equal the full per-step rule,
    including weights outside [w_min, w_max] being clipped at the next pre spike (for silent and
    for firing posts), across a state reset and a state_dict round trip."""
    rng = np.random.default_rng(5)
    dt, n_pre, n_post, n_steps = 0.1, 6, 64, 6000
    pre_idx, pre_t = [], []
    for i in range(n_pre):
        st = np.unique(rng.integers(0, n_steps - 10, 25))
        pre_idx += [i] * len(st)
        pre_t += list(st * dt)
    half = n_steps // 2
    pre_idx += list(range(n_pre))  # every pre fires just after post 55, which is above w_max
    pre_t += [(half + 10) * dt] * n_pre
    firing = [3, 17, 47, 55]  # 4 of 64 posts fire: below the kernel's quarter
    drive_idx, drive_t = [55], [(half + 4) * dt]
    for j in firing:
        st = np.unique(rng.integers(1, n_steps - 10, 8))
        st = st[np.abs(st - half - 7) > 8]
        drive_idx += [j] * len(st)
        drive_t += list((st - 1) * dt)
    w_max = rule.w_max
    w0 = rng.uniform(0.1, 0.6, (n_pre, n_post))
    w0[:, 50:] = w_max + 0.15  # above w_max, silent (50–63) and firing (55) posts
    w0[:, 44:50] = -0.05  # below w_min = 0 (the symmetric rule has no lower bound)
    net = Network(dt=dt)
    net.add(SpikeSource("pre", n_pre, pre_idx, pre_t))
    net.add(SpikeSource("drive", n_post, drive_idx, drive_t))
    net.add(LIF("post", n_post, synapse="current", integration="exact", t_ref=0.0))
    net.connect(connect.dense("p", "pre", "post", w0 * 1e-3, target="e", rule=rule))
    net.connect(connect.one_to_one("kick", "drive", "post", n_post, 100.0, target="v"))
    net.monitor(SpikeMonitor(["pre", "post"]))
    sim = net.compile()
    sim.set_weights("p", w0)
    out1 = sim.run(steps=half)
    assert 0 < sim.act_n[0] <= len(firing)
    sim.load_state_dict(sim.state_dict())  # rebuilds the active lists from the traces
    sim.reset_state()  # traces cleared: the second half starts from zero traces

    def events(out, pop, shift):
        return [(int(round(t / dt)) - shift, int(k))
                for t, k in zip(*out["spikes"][pop], strict=True)]

    ii, jj = np.divmod(np.arange(n_pre * n_post), n_post)
    ref = _reference_weights(rule, w0.ravel(), events(out1, "pre", 0), events(out1, "post", 0),
                             ii, jj, n_pre, n_post, 0, half, dt).reshape(n_pre, n_post)
    # Second half in pieces; before each, weights of posts 50–63 are pushed out of range again
    # (as synaptic scaling can do). Post 55 fires at half + 5 and every pre at half + 10, so the
    # second push hits an active post with an out-of-range weight.
    outs, t0, set_w = [], 0, {}
    above = np.zeros((n_pre, n_post), bool)
    above[:, 50:] = True
    for n in (7, 5, n_steps - half - 12):
        w_now = sim.weights("p")
        w_now[above] = w_max + 0.15
        sim.set_weights("p", w_now)
        set_w[t0] = (above.ravel(), w_max + 0.15)
        outs.append(sim.run(steps=n))
        if t0 == 7:
            w_early = sim.weights("p")
        t0 += n
    pre2 = [e for o in outs for e in events(o, "pre", half)]
    post2 = [e for o in outs for e in events(o, "post", half)]
    early = _reference_weights(rule, ref.ravel(), pre2, post2, ii, jj, n_pre, n_post, 0, 12, dt,
                               {k: v for k, v in set_w.items() if k < 12})
    np.testing.assert_allclose(w_early.ravel(), early, rtol=0, atol=1e-12)
    ref = _reference_weights(rule, ref.ravel(), pre2, post2, ii, jj, n_pre, n_post, 0,
                             n_steps - half, dt, set_w)
    assert sorted({j for _, j in events(out1, "post", 0) + post2}) == firing
    w = sim.weights("p")
    np.testing.assert_allclose(w.ravel(), ref, rtol=0, atol=1e-12)
    assert (w[:, 56:] == w_max).all()
    assert (w[:, 44:47] == (-0.05 if isinstance(rule, SymmetricSTDP) else 0.0)).all()
    assert np.abs(ref - w0.ravel()).max() > 1e-2


# ----------------------------------------------------------------------------- delays


def test_delays_homogeneous_and_heterogeneous():
    dt = 0.1
    delays = np.array([0, 1, 5, 17, 40])  # steps, one per post neuron
    for hetero in (False, True):
        net = Network(dt=dt)
        net.add(SpikeSource("s", 1, [0], [10 * dt]))
        net.add(LIF("n", 5, synapse="conductance", t_ref=0.0))
        d = delays * dt if hetero else 3 * dt
        net.connect(Projection("p", "s", "n", np.zeros(5, int), np.arange(5), 0.25, delay=d))
        net.monitor(StateMonitor("n", "ge"))
        ge = net.compile().run(10.0)["states"]["n.ge"]
        first = np.argmax(ge > 0, axis=0)
        np.testing.assert_array_equal(first, 10 + (delays if hetero else 3))
        np.testing.assert_allclose(ge[first, np.arange(5)], 0.25)  # arrives after integration


# ----------------------------------------------------------------------------- threshold rules


def test_decay_theta_matches_a_silent_rest():
    """sim.decay_theta(n) after a reset stands for n silent steps of the threshold's decay."""
    dt, tau_th, n = 0.5, 300.0, 300

    def sim_():
        net = Network(dt=dt)
        net.add(LIF("n", 3, synapse="current", theta_rule="hao", theta_plus=0.1,
                    theta_init=25.0, tau_theta=tau_th))
        return net.compile()

    rest, jump = sim_(), sim_()
    rest.run(steps=n)  # no input: v stays at rest, θ only decays
    jump.decay_theta(n)
    np.testing.assert_allclose(jump.theta, rest.theta, rtol=1e-12)
    np.testing.assert_allclose(jump.theta, 25.0 * math.exp(-n * dt / tau_th), rtol=1e-12)
    jump.freeze_theta("n")
    before = jump.theta.copy()
    jump.decay_theta(n)
    np.testing.assert_array_equal(jump.theta, before)


@pytest.mark.parametrize("rule", ["add", "hao"])
def test_adaptive_threshold(rule):
    dt, tau_th, plus, th0 = 0.5, 300.0, 0.4, 3.0
    net = Network(dt=dt)
    net.add(LIF("n", 1, synapse="current", integration="exact", t_ref=1.0, i_bias=25.0,
                theta_rule=rule, theta_plus=plus, theta_init=th0, tau_theta=tau_th))
    net.monitor(SpikeMonitor())
    net.monitor(StateMonitor("n", "theta"))
    out = net.compile().run(400.0)
    s = np.round(out["spikes"]["n"][0] / dt).astype(int)
    th = out["states"]["n.theta"][:, 0]
    f = math.exp(-dt / tau_th)
    ref = np.empty(len(th))  # decay in the update, increment at the reset, record at step end
    x = th0
    spikes = set(s.tolist())
    for t in range(len(th)):
        x *= f
        if t in spikes:
            x += plus if rule == "add" else plus * 10.0 / max(abs(x - 10.0), 1e-3)
        ref[t] = x
    np.testing.assert_allclose(th, ref, rtol=1e-12)
    isi = np.diff(s)
    assert len(s) > 10 and isi[-1] > isi[0]  # a rising threshold slows the neuron down


# ----------------------------------------------------------------------------- sources & control


def test_teacher_fires_only_chosen_neurons_at_rate():
    net = Network(dt=0.5)
    net.add(LIF("c", 10, synapse="conductance"))
    net.monitor(SpikeMonitor())
    sim = net.compile(seed=5)
    rates = np.zeros(10)
    rates[[2, 7]] = 200.0
    sim.set_teacher("c", rates)
    t, i = sim.run(5000.0)["spikes"]["c"]
    counts = np.bincount(i, minlength=10)
    assert set(np.flatnonzero(counts)) == {2, 7}
    # per-step Bernoulli(rate·dt): mean 1000 spikes per neuron, sd ≈ 30
    assert np.all(np.abs(counts[[2, 7]] - 1000) < 5 * math.sqrt(1000))
    sim.set_teacher("c", None)
    t, _ = sim.run(100.0)["spikes"]["c"]
    assert len(t) == 0  # dynamics restored: no input, no spikes


def _poisson_net() -> Network:
    net = Network(dt=0.1)
    net.add(PoissonSource("in", 50, rates=30.0))
    net.add(LIF("out", 10, synapse="conductance"))
    net.connect(connect.dense("w", "in", "out", np.full((50, 10), 0.08)))
    net.monitor(SpikeMonitor())
    return net


def test_seed_determinism():
    def spikes(seed):
        out = _poisson_net().compile(seed=seed).run(500.0)["spikes"]
        return np.concatenate([out["in"][0], out["out"][0]]), out["in"][1]

    a, b, c = spikes(3), spikes(3), spikes(4)
    assert len(a[0]) > 100
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert len(a[0]) != len(c[0]) or not np.array_equal(a[0], c[0])


def test_poisson_rate():
    net = Network(dt=0.1)
    net.add(PoissonSource("in", 200, rates=40.0))
    net.monitor(SpikeMonitor())
    n = len(net.compile(seed=2).run(2000.0)["spikes"]["in"][0])
    assert abs(n - 16000) < 5 * math.sqrt(16000)


@pytest.mark.parametrize("t_ref,R", [(1.0, 2), (3.0, 6)])
def test_poisson_dead_time_has_the_closed_form_interval_distribution(t_ref, R):
    """GeNN 2's Poisson neuron blocks the step after a spike (t_ref = 2·dt): it fires a fraction
    q/(1 + q) of steps; in general 1/(R − 1 + 1/q) for a dead time of R steps."""
    q, steps = 0.1, 8000
    net = Network(dt=0.5)
    net.add(PoissonSource("in", 100, rates=q / 0.5e-3, t_ref=t_ref))
    net.monitor(SpikeMonitor())
    t, i = net.compile(seed=3).run(steps * 0.5)["spikes"]["in"]
    st = np.round(t / 0.5).astype(np.int64)
    n = len(st)
    expected = 100 * steps / (R - 1 + 1 / q)
    assert abs(n - expected) < 5 * math.sqrt(expected)
    assert isi_fit_dead_time(st, i, q, R) > 0.9 * n


def test_teacher_dead_time_has_the_closed_form_interval_distribution():
    """The teacher of GeNN 2's class neuron blocks the step after a spike too."""
    q, steps = 0.1, 8000
    net = Network(dt=0.5)
    net.add(LIF("c", 50, synapse="conductance"))
    net.monitor(SpikeMonitor())
    sim = net.compile(seed=4)
    sim.set_teacher("c", np.full(50, q / 0.5e-3), t_ref=1.0)
    t, i = sim.run(steps * 0.5)["spikes"]["c"]
    st = np.round(t / 0.5).astype(np.int64)
    expected = 50 * steps * q / (1 + q)
    assert abs(len(st) - expected) < 5 * math.sqrt(expected)
    isi_fit_dead_time(st, i, q, 2)
    sim.set_teacher("c", np.full(50, q / 0.5e-3))  # no dead time again: R = 1
    t, i = sim.run(steps * 0.5)["spikes"]["c"]
    isi_fit_dead_time(np.round(t / 0.5).astype(np.int64), i, q, 1)


def test_new_rates_keep_the_dead_time_of_the_last_spike():
    """Rates set right after a spike redraw from the end of the dead time: at p = rate·dt = 1
    and R = 3 a source fires every third step however often its rate is set."""
    net = Network(dt=0.5)
    net.add(PoissonSource("in", 4, rates=2000.0, t_ref=1.5))
    net.monitor(SpikeMonitor())
    sim = net.compile(seed=0)
    got = []
    for _ in range(30):
        sim.set_rates("in", np.full(4, 2000.0))
        t, i = sim.run(0.5)["spikes"]["in"]
        got.append(np.round(t / 0.5).astype(int))
    st = np.concatenate(got)
    assert len(st) == 4 * 10
    np.testing.assert_array_equal(np.unique(st), np.arange(0, 30, 3))


def test_reset_state_ends_dead_times_and_silence_does_not():
    """At p = rate·dt = 1 and R = 4 a source and a teacher fire every fourth step. A reset
    (standing in for a rest) lets both fire on the next step; silencing them does not."""
    net = Network(dt=0.5)
    net.add(PoissonSource("in", 3, rates=2000.0, t_ref=2.0))
    net.add(LIF("c", 3))
    net.monitor(SpikeMonitor())
    sim = net.compile(seed=0)
    sim.set_teacher("c", np.full(3, 2000.0), t_ref=2.0)

    def fired(reset: bool) -> np.ndarray:  # the steps the two fire at, after one step
        sim.run(0.5)  # both spike now (their block has ended)
        if reset:
            sim.reset_state()
        else:
            sim.silence()
        sim.set_rates("in", np.full(3, 2000.0))
        sim.set_rates("c", np.full(3, 2000.0))
        t0 = sim.t
        out = sim.run(3.0)["spikes"]
        sim.run(2.0)  # past any block
        return np.array([np.unique(np.round(out[k][0] / 0.5).astype(int) - t0)
                         for k in ("in", "c")])

    np.testing.assert_array_equal(fired(reset=False), [[3], [3]])
    np.testing.assert_array_equal(fired(reset=True), [[0, 4], [0, 4]])


def test_dead_time_must_be_non_negative():
    with pytest.raises(BiolearnError, match="t_ref"):
        Network(dt=0.5).add(PoissonSource("in", 4, t_ref=-1.0))
    net = Network(dt=0.5)
    net.add(LIF("c", 3))
    with pytest.raises(BiolearnError, match="t_ref"):
        net.compile().set_teacher("c", np.ones(3), t_ref=float("nan"))


def test_checkpoint_without_the_dead_time_column_loads_with_none():
    """A checkpoint written before sources had a dead time resumes without one."""
    def net() -> Network:
        n = Network(dt=0.5)
        n.add(PoissonSource("in", 50, rates=200.0, t_ref=1.0))
        n.monitor(SpikeMonitor())
        return n

    sim = net().compile(seed=1)
    sim.run(20.0)
    d = sim.state_dict()
    d["pop_i"] = d["pop_i"][:, :3]
    other = net().compile(seed=1)
    assert other.pop_i[0, 3] == 2
    other.load_state_dict(d)
    assert other.pop_i[0, 3] == 0
    t, i = other.run(500.0)["spikes"]["in"]
    isi = np.concatenate([np.diff(np.round(t[i == k] / 0.5)) for k in range(50)])
    assert isi.min() == 1  # consecutive steps: no dead time


def test_normalize_restores_target_sums():
    rng = np.random.default_rng(0)
    net = Network(dt=0.5)
    net.add(PoissonSource("in", 30))
    net.add(LIF("out", 6))
    net.connect(connect.dense("w", "in", "out", rng.uniform(0, 1, (30, 6)),
                              rule=SymmetricSTDP()))
    ii = rng.integers(0, 30, 50)
    jj = rng.integers(0, 6, 50)
    net.connect(Projection("sp", "in", "out", ii, jj, rng.uniform(0, 1, 50)))
    sim = net.compile()
    sim.normalize("w", 7.8)
    np.testing.assert_allclose(sim.weights("w").sum(axis=0), 7.8, rtol=1e-13)
    target = np.arange(1.0, 7.0)
    sim.normalize("sp", target)
    w = sim.weights("sp")
    sums = np.bincount(jj, weights=w, minlength=6)
    has = np.bincount(jj, minlength=6) > 0
    np.testing.assert_allclose(sums[has], target[has], rtol=1e-13)


def test_state_monitor_intervals():
    net = Network(dt=0.1)
    net.add(PoissonSource("in", 20, rates=50.0))
    net.add(LIF("out", 5, synapse="conductance"))
    net.connect(connect.dense("w", "in", "out", np.full((20, 5), 0.1)))
    net.monitor(StateMonitor("out", "v", every=1))
    net.monitor(StateMonitor("out", "ge", neurons=[1, 3], every=10))
    out = net.compile(seed=1).run(100.0)
    v, ge = out["states"]["out.v"], out["states"]["out.ge"]
    assert v.shape == (1000, 5) and ge.shape == (100, 2)
    assert np.ptp(v) > 0 and np.ptp(ge) > 0
    # the coarse monitor samples the same steps as every 10th row of a fine one
    net2 = Network(dt=0.1, populations=net.populations, projections=net.projections)
    net2.monitor(StateMonitor("out", "ge", neurons=[1, 3], every=1))
    ge1 = net2.compile(seed=1).run(100.0)["states"]["out.ge"]
    np.testing.assert_array_equal(ge, ge1[::10])
