"""The built-in non-linear neuron models: AdEx, Izhikevich and the quadratic integrate-and-fire
neuron, against their Brian2 export and against published / closed-form behaviour.

* Identity: one network of AdEx (excitatory and inhibitory), Izhikevich (regular and fast
  spiking) and QIF populations driven by on-grid spike-time inputs, with heterogeneous weights,
  per-neuron initial states, homogeneous and per-synapse delays and recurrent inhibition, run by
  biolearn and by :func:`biolearn.backends.brian2.run_brian2` (numpy target): the same neurons must
  spike on the same steps.
* Behaviour under constant drive (biolearn only): AdEx with the values of Brette & Gerstner
  (2005) starts firing at the current where its rest state loses stability and adapts above it;
  Izhikevich (2003) regular-spiking, fast-spiking and chattering neurons at I = 10 fire as in his
  Fig. 2 and match a tightly integrated reference (scipy); the QIF period equals
  ``∫ τm dv / (k (v − v_rest)(v − v_crit) + I)`` from v_reset to v_peak within the time step.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("brian2")

from spike_cases import grid_source, trains  # noqa: E402

from biolearn.backends.brian2 import run_brian2  # noqa: E402
from biolearn.engine import Network, Neurons, SpikeMonitor, SpikeSource, connect  # noqa: E402
from biolearn.engine.front import Projection  # noqa: E402
from biolearn.engine.neurons import ADEX, IZHIKEVICH, QIF  # noqa: E402

pytestmark = pytest.mark.brian2

DT = 0.1
T = 1000.0






def _random(rng: np.random.Generator, name: str, pre: tuple[str, int], post: tuple[str, int],
            p: float, w: tuple[float, float], delay, levels: int = 0) -> list[Projection]:
    """Bernoulli(p) synapses onto ``I_syn`` with uniform weights in ``w``; ``delay`` is a scalar
    (one delay) or a list (drawn per synapse). With ``levels`` the weights are rounded to that
    many values, one projection per value (AdEx: see test_adex_export_heterogeneous_weights)."""
    i, j = np.nonzero(rng.random((pre[1], post[1])) < p)
    wt = rng.uniform(*w, len(i))
    d = (np.asarray(delay, float)[rng.integers(0, len(delay), len(i))]
         if np.ndim(delay) else float(delay))
    if not levels:
        return [Projection(name, pre[0], post[0], i, j, wt, delay=d, target="I_syn")]
    grid = np.linspace(*w, levels)
    k = np.abs(wt[:, None] - grid[None]).argmin(1)
    return [Projection(f"{name}_{m}", pre[0], post[0], i[k == m], j[k == m], grid[m],
                       delay=d[k == m] if np.ndim(d) else d, target="I_syn")
            for m in range(levels) if np.any(k == m)]


def _network(seed: int = 1) -> Network:
    rng = np.random.default_rng(seed)
    net = Network(dt=DT)
    n_in, ne, ni = 60, 20, 10
    idx, tim = grid_source(rng, n_in, 20.0, T, DT)
    net.add(SpikeSource("in", n_in, idx, tim))
    # AdEx, Brette & Gerstner's values (weights in pA) and an inhibitory population without
    # adaptation, with a refractory period
    net.add(Neurons("adex_e", ne, ADEX, params={"I_ext": "0.45 nA"},
                    init={"v": rng.uniform(-70, -52, ne), "w": rng.uniform(0, 100, ne)}))
    net.add(Neurons("adex_i", ni, ADEX, params={"I_ext": "0.4 nA", "a": "0 nS", "b": "0 pA",
                                                "t_ref": "2 ms", "tau_syn": "3 ms"},
                    init={"v": rng.uniform(-70, -52, ni), "I_syn": rng.uniform(0, 100, ni)}))
    # Izhikevich regular spiking (excitatory) and fast spiking (inhibitory); weights in mV
    net.add(Neurons("izh_rs", ne, IZHIKEVICH, params={"I_ext": "2 mV"},
                    init={"v": rng.uniform(-70, -55, ne), "u": rng.uniform(-14, -10, ne)}))
    net.add(Neurons("izh_fs", ni, IZHIKEVICH, params={"a": 0.1, "d": "2 mV", "I_ext": "1 mV"},
                    init={"v": rng.uniform(-70, -55, ni)}))
    net.add(Neurons("qif", ne, QIF, params={"I_ext": "1.5 mV", "t_ref": "1 ms"},
                    init={"v": rng.uniform(-70, -50, ne), "I_syn": rng.uniform(0, 2, ne)}))
    projections = [
        _random(rng, "in_adex_e", ("in", n_in), ("adex_e", ne), 0.3, (50, 400),
                [0.1, 0.5, 1.0, 2.5], levels=5),
        _random(rng, "in_adex_i", ("in", n_in), ("adex_i", ni), 0.3, (50, 300), 1.0, levels=3),
        _random(rng, "adex_ei", ("adex_e", ne), ("adex_i", ni), 0.5, (100, 300), 0.5, levels=2),
        _random(rng, "adex_ie", ("adex_i", ni), ("adex_e", ne), 0.5, (-300, -50), [0.2, 0.8],
                levels=3),
        _random(rng, "in_rs", ("in", n_in), ("izh_rs", ne), 0.3, (0, 6), [0.0, 0.3, 1.0, 2.0]),
        _random(rng, "in_fs", ("in", n_in), ("izh_fs", ni), 0.3, (0, 6), 1.0),
        _random(rng, "rs_fs", ("izh_rs", ne), ("izh_fs", ni), 0.5, (0, 4), 0.5),
        _random(rng, "fs_rs", ("izh_fs", ni), ("izh_rs", ne), 0.5, (-6, 0), [0.2, 0.6]),
        _random(rng, "in_qif", ("in", n_in), ("qif", ne), 0.3, (0, 5), [0.0, 1.0, 1.5]),
        _random(rng, "qif_qif", ("qif", ne), ("qif", ne), 0.3, (-3, 2), 1.0),
    ]
    for group in projections:
        for q in group:
            net.connect(q)
    net.monitor(SpikeMonitor())
    return net


@pytest.fixture(scope="module")
def both():
    net = _network()
    ours = net.compile(seed=0).run(T)["spikes"]
    theirs = run_brian2(net, T, target="numpy")["spikes"]
    return trains(ours, DT), trains(theirs, DT)


@pytest.mark.parametrize("pop", ["adex_e", "adex_i", "izh_rs", "izh_fs", "qif"])
def test_identical_spiketrains(both, pop):
    ours, theirs = both
    assert len(ours[pop]) >= 100, (pop, len(ours[pop]))  # enough activity to be a real test
    assert len({i for _, i in ours[pop]}) >= 5, pop  # and not one neuron only
    assert ours[pop] == theirs[pop], pop


def test_adex_heterogeneous_and_plastic_weights_match_brian2():
    """AdEx's adaptation current is called ``w``, like a synaptic weight: the export renames the
    synaptic variable, and per-synapse weights under pair STDP give the same spikes and weights."""
    from biolearn.rules.stdp import PairSTDP

    rng = np.random.default_rng(5)
    net = Network(dt=DT)
    idx, tim = grid_source(rng, 40, 20.0, T, DT)
    net.add(SpikeSource("in", 40, idx, tim))
    net.add(Neurons("adex", 12, ADEX, params={"I_ext": "0.45 nA"},
                    init={"v": rng.uniform(-70.0, -60.0, 12)}))
    net.connect(connect.dense("in_adex", "in", "adex", rng.uniform(50.0, 250.0, (40, 12)),
                              target="I_syn", delay=1.0,
                              rule=PairSTDP(a_plus=20.0, a_minus=21.0, w_max=300.0)))
    net.monitor(SpikeMonitor(["adex"]))
    sim = net.compile(seed=0)
    ours = sim.run(T)
    theirs = run_brian2(net, T, target="numpy")
    a, b = trains(ours["spikes"], DT)["adex"], trains(theirs["spikes"], DT)["adex"]
    assert len(a) >= 100 and a == b
    w0 = net.projections[0].w
    assert np.abs(sim.weights("in_adex").reshape(-1) - w0).max() > 1.0
    np.testing.assert_allclose(sim.weights("in_adex").reshape(-1), theirs["weights"]["in_adex"],
                               rtol=0, atol=1e-9)


# --------------------------------------------------------------- behaviour under constant drive
# Brette & Gerstner 2005, Table 1 (biolearn units: pF, nS, mV, ms)
C, G_L, E_L, V_T, DELTA_T, TAU_W, A = 281.0, 30.0, -70.6, -50.4, 2.0, 144.0, 4.0
B, V_R, V_PEAK = 80.5, -70.6, -40.4


def _adex_rheobase() -> float:
    """Current (pA) at which AdEx's rest state loses stability.

    With a > C/τw (4 > 1.95 nS) this is an Andronov–Hopf bifurcation (Touboul & Brette 2008):
    the trace of the Jacobian vanishes at v_H = V_T + Δ_T ln(1 + τm/τw), and the current is the
    steady-state I–V curve there, I = (g_L + a)(v_H − E_L) − g_L Δ_T exp((v_H − V_T)/Δ_T)
    (627.2 pA; the saddle-node current (g_L + a)(V_T − E_L − Δ_T + Δ_T ln(1 + a/g_L)), the
    rheobase when a < C/τw, is 627.3 pA)."""
    v_h = V_T + DELTA_T * np.log1p(C / G_L / TAU_W)
    return (G_L + A) * (v_h - E_L) - G_L * DELTA_T * np.exp((v_h - V_T) / DELTA_T)


IZH = {"rs": {}, "fs": {"a": 0.1, "d": "2 mV"}, "ch": {"c": "-50 mV", "d": "2 mV"}}
QIF_I = (3.0, 5.0, 10.0, 20.0)  # mV; QIF's rheobase is k (v_crit − v_rest)²/4 = 2.25 mV


@pytest.fixture(scope="module")
def driven():
    """Single neurons under constant drive, 2 s (model order as in _network: one kernel)."""
    net = Network(dt=DT)
    i_rh = _adex_rheobase()
    for name, i_ext in (("adex_below", 0.97 * i_rh), ("adex_above", 1.03 * i_rh),
                        ("adex_1nA", 1000.0)):
        net.add(Neurons(name, 1, ADEX, params={"I_ext": i_ext}))
    for name, p in IZH.items():
        net.add(Neurons(f"izh_{name}", 1, IZHIKEVICH, params={**p, "I_ext": "10 mV"}))
    for k, i_ext in enumerate(QIF_I):
        net.add(Neurons(f"qif_{k}", 1, QIF, params={"I_ext": i_ext}, init={"v": "v_reset"}))
    net.monitor(SpikeMonitor())
    return {k: t for k, (t, _) in net.compile(seed=0).run(2 * T)["spikes"].items()}


def _reference(f, y0: list, threshold: float, reset, t_end: float) -> np.ndarray:
    """Spike times (ms) of ``dy/dt = f(t, y)`` with a reset at ``y[0] = threshold``, integrated
    tightly by scipy (RK45, events)."""
    from scipy.integrate import solve_ivp

    def crossing(t, y):
        return y[0] - threshold

    crossing.terminal, crossing.direction = True, 1
    t, y, out = 0.0, np.asarray(y0, float), []
    while True:
        s = solve_ivp(f, (t, t_end), y, events=crossing, rtol=1e-8, atol=1e-8, max_step=1.0)
        if not s.t_events[0].size:
            return np.asarray(out)
        t = float(s.t_events[0][0])
        out.append(t)
        y = reset(s.y_events[0][0].copy())


def test_adex_rheobase(driven):
    # 3 % below: at most a transient spike, then rest; 3 % above: sustained (adapted) firing
    assert len(driven["adex_below"]) <= 1 and not np.any(driven["adex_below"] > 500.0)
    assert np.sum(driven["adex_above"] > T) >= 2


def test_adex_adapts_above_rheobase(driven):
    t = driven["adex_1nA"]
    t = t[t < T]

    def f(_t, y):
        v, w = y
        return [(G_L * (E_L - v) + G_L * DELTA_T * np.exp((v - V_T) / DELTA_T) + 1000.0 - w) / C,
                (A * (v - E_L) - w) / TAU_W]

    def reset(y):
        y[0], y[1] = V_R, y[1] + B
        return y

    ref = _reference(f, [E_L, 0.0], V_PEAK, reset, T)
    isi, ref_isi = np.diff(t), np.diff(ref)
    assert len(isi) >= 20
    assert np.all(np.diff(isi) >= -DT - 1e-9)  # ISIs lengthen (to within a step) ...
    assert isi[-1] > 2.0 * isi[0]  # ... a lot ...
    assert np.ptp(isi[-5:]) <= DT + 1e-9  # ... to a steady, adapted rate
    assert len(t) == len(ref)
    np.testing.assert_allclose(isi, ref_isi, rtol=0.02)  # forward Euler at dt 0.1 ms


def _izh_reference(a: float, b: float, c: float, d: float, i_ext: float,
                   t_end: float = T) -> np.ndarray:
    def f(_t, y):
        return [0.04 * y[0] ** 2 + 5 * y[0] + 140 - y[1] + i_ext, a * (b * y[0] - y[1])]

    def reset(y):
        y[0], y[1] = c, y[1] + d
        return y

    return _reference(f, [c, b * c], 30.0, reset, t_end)


def test_izhikevich_regular_spiking_fires_tonically(driven):
    t = driven["izh_rs"]
    isi = np.diff(t[t < T])
    ref = np.diff(_izh_reference(0.02, 0.2, -65.0, 8.0, 10.0))
    assert len(isi) >= 15
    assert np.ptp(isi[1:]) <= DT + 1e-9  # tonic: one period after the first interval ...
    assert isi[0] < 0.75 * isi[1]  # ... which is shorter (adaptation of the first spikes)
    assert np.ptp(np.diff(t[t > T])) <= DT + 1e-9  # still tonic in the second second
    assert abs(len(isi) - len(ref)) <= 1
    assert isi[-1] == pytest.approx(ref[-1], rel=0.015)


def test_izhikevich_fast_spiking_and_chattering(driven):
    fs = driven["izh_fs"]
    isi = np.diff(fs[fs < T])
    ref = np.diff(_izh_reference(0.1, 0.2, -65.0, 2.0, 10.0, t_end=300.0))
    assert len(isi) > 100  # > 100 Hz, no long pauses
    assert np.ptp(isi[-50:]) <= 2 * DT + 1e-9  # the period is not a whole number of steps
    assert np.mean(isi[-50:]) == pytest.approx(ref[-1], rel=0.06)  # Euler at dt 0.1: ~5 % long

    ch = driven["izh_ch"]
    isi = np.diff(ch[ch < T])
    ref = np.diff(_izh_reference(0.02, 0.2, -50.0, 2.0, 10.0))

    def bursts(intervals):
        """Spikes per burst and the gaps between bursts (intervals > 20 ms split bursts)."""
        gap = intervals > 20.0
        sizes = np.diff(np.flatnonzero(np.concatenate([[True], gap, [True]])))
        return sizes, intervals[gap]

    sizes, gaps = bursts(isi)
    ref_sizes, ref_gaps = bursts(ref)
    assert len(sizes) >= 15 and np.all(sizes[1:-1] >= 3)  # chattering: bursts of spikes
    assert isi[~(isi > 20.0)].max() < 6.0  # fast within a burst
    np.testing.assert_array_equal(sizes[1:-1], ref_sizes[1:len(sizes) - 1])
    np.testing.assert_allclose(gaps, ref_gaps[:len(gaps)], rtol=0.02)


@pytest.mark.parametrize("k", range(len(QIF_I)))
def test_qif_period_closed_form(driven, k):
    from scipy.integrate import quad

    tau_m, kk, v_rest, v_crit, v_peak, v_reset = 10.0, 0.04, -65.0, -50.0, 30.0, -70.0
    i_ext = QIF_I[k]
    period = quad(lambda v: tau_m / (kk * (v - v_rest) * (v - v_crit) + i_ext), v_reset,
                  v_peak)[0]
    # closed form of the same integral (completing the square)
    m, i_eff = (v_rest + v_crit) / 2, i_ext - kk * (v_crit - v_rest) ** 2 / 4
    s = np.sqrt(kk / i_eff)
    assert period == pytest.approx(
        tau_m / np.sqrt(kk * i_eff) * (np.arctan(s * (v_peak - m)) - np.arctan(s * (v_reset - m))),
        rel=1e-9)
    t = driven[f"qif_{k}"]
    isi = np.diff(t)
    assert len(isi) >= 10
    assert np.ptp(isi) <= DT + 1e-9
    # a spike is seen on the first step past v_peak, and forward Euler lags the blow-up
    assert period <= isi.min() and isi.max() <= period + 3 * DT
