"""Földiák's (1990) rules (:mod:`biolearn.rules.foldiak`): the rate network on the bars, the rules
on the spike counts of engine projections, and the spiking network of the ``foldiak_spiking``
recipe.

Rule updates (engine definitions: spike counters and an ``update`` event) are checked against
Földiák's equations written out in NumPy on the counts of real runs; the unit mapping of the
spiking network against Campbell's theorem; learning, rate and spiking, against the ground truth
of the bars benchmark (which bars are present), with controls showing the tests can fail.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from biolearn.data.synthetic import bars, bars_with_unique_detector, score_bars
from biolearn.engine import (
    LIF,
    Network,
    PoissonSource,
    Projection,
    SpikeSource,
    StateMonitor,
    connect,
)
from biolearn.errors import BiolearnError
from biolearn.models import foldiak_bars
from biolearn.models.foldiak_spiking import SpikingFoldiak, SpikingFoldiakParams, probe_bars
from biolearn.rules.foldiak import (
    UPDATE,
    CountAntiHebbian,
    CountHebbian,
    CountThreshold,
    FoldiakNet,
    apply_threshold,
    count_activity,
    foldiak_present,
    lateral,
)

ROOT = Path(__file__).resolve().parents[1]
DT = 0.5
EVERY_STEP = 1000.0 / DT  # Hz: a Poisson source or a teacher at this rate fires every step


def _every_step_sim(n_pre: int, n_post: int, ff: np.ndarray, heb: CountHebbian,
                    anti: CountAntiHebbian, lat_w: np.ndarray | float = 0.0):
    """Inputs and (teacher-driven) outputs that fire on every step or never: exact counts."""
    net = Network(dt=DT)
    net.add(PoissonSource("src", n_pre, rates=0.0))
    out = net.add(LIF("out", n_post, synapse="current"))
    net.connect(connect.dense("ff", "src", "out", ff, rule=heb))
    net.connect(lateral("lat", out, anti, w=lat_w))
    sim = net.compile(seed=0)
    sim.set_teacher("out", 0.0)
    return sim


def _present(sim, x_on: np.ndarray, y_on: np.ndarray, steps: int) -> None:
    sim.set_rates("src", EVERY_STEP * x_on)
    sim.set_teacher("out", EVERY_STEP * y_on)
    sim.run(steps=steps)


# ----------------------------------------------------------------------------- rate network
def test_foldiak_learns_single_bar_detectors():
    rng = np.random.default_rng(0)
    net = FoldiakNet.create(64, 16, rng)
    x, _ = bars(20000, rng)
    foldiak_present(net, x, learn=True)
    score = score_bars(foldiak_bars.probe_bars(net))
    assert score.n_detectors == 16
    assert score.n_bars_covered >= 14
    assert np.all(net.w <= 0) and np.all(np.diag(net.w) == 0)
    xt, present = bars(4000, np.random.default_rng(99))
    yt = foldiak_present(net, xt, learn=False)
    assert yt.mean() == pytest.approx(1 / 8, abs=0.02)
    assert np.all(np.abs(yt.mean(axis=0) - 1 / 8) < 0.05)
    det = score.unit_bar >= 0
    acc = (yt[:, det] == present[:, score.unit_bar[det]]).mean()
    assert acc > 0.97


def test_foldiak_untrained_is_not_a_bar_code():
    """Control: before learning, units are not one-to-one bar detectors."""
    net = FoldiakNet.create(64, 16, np.random.default_rng(0))
    assert not score_bars(foldiak_bars.probe_bars(net)).one_to_one


# ----------------------------------------------------------------------------- rule definitions
def test_count_hebbian_is_foldiak_eq4():
    rng = np.random.default_rng(0)
    n_pre, n_post, beta, scale, steps = 7, 5, 0.3, 2.5, 8
    w = rng.random((n_pre, n_post))
    x_on = np.array([1, 0, 1, 1, 0, 0, 1], float)
    y_on = np.array([0, 1, 1, 0, 1], float)
    # x = n_pre/n_on = x_on; y = min(n_post/n_ref, 1) = 0.5 y_on
    sim = _every_step_sim(n_pre, n_post, w, CountHebbian(beta, scale, n_on=steps,
                                                         n_ref=2 * steps), CountAntiHebbian())
    _present(sim, x_on, y_on, steps)
    sim.apply_event("ff", UPDATE)
    y = 0.5 * y_on
    want = w + beta * y[None, :] * (scale * x_on[:, None] - w)  # Δq = βy(x − q), units of scale
    np.testing.assert_allclose(sim.weights("ff"), want, rtol=0, atol=1e-14)


def test_count_hebbian_fixed_point_closed_form():
    """With y = 1 and fixed x, w_n = s·x + (w_0 − s·x)(1 − β)^n: the counters restart at zero
    after every update."""
    x, w0 = np.array([1.0, 0.0, 1.0]), np.array([[0.2], [0.9], [0.3]])
    sim = _every_step_sim(3, 1, w0, CountHebbian(0.1, 2.0, n_on=4, n_ref=1), CountAntiHebbian())
    for _ in range(50):
        _present(sim, x, np.ones(1), 4)
        sim.apply_event("ff", UPDATE)
    np.testing.assert_allclose(sim.weights("ff")[:, 0], 2 * x + (w0[:, 0] - 2 * x) * 0.9 ** 50,
                               rtol=1e-12)


def test_count_anti_hebbian_is_foldiak_eq3():
    rng = np.random.default_rng(1)
    n, alpha, p, scale = 6, 0.1, 1 / 8, 3.0
    wf = -rng.random((n, n)) * 0.3  # Földiák weights ≤ 0
    np.fill_diagonal(wf, 0.0)
    y = (rng.random(n) < 0.5).astype(float)
    keep = ~np.eye(n, dtype=bool).ravel()
    # current-based outputs: the engine weight is −scale·|w| = scale·w
    sim = _every_step_sim(2, n, np.zeros((2, n)), CountHebbian(),
                          CountAntiHebbian(alpha, p, scale, n_ref=3), lat_w=scale * wf.ravel())
    _present(sim, np.zeros(2), y, 3)
    sim.apply_event("lat", UPDATE)
    want = np.minimum(wf - alpha * (np.outer(y, y) - p * p), 0.0)  # eq. 3, w ≤ 0
    got = sim.weights("lat")
    np.testing.assert_allclose(got, scale * want.ravel()[keep], atol=1e-14)
    assert np.all(got <= 0)
    # silent units: inhibition decays by α p² per presentation and stops at 0
    for _ in range(300):
        _present(sim, np.zeros(2), np.zeros(n), 2)
        sim.apply_event("lat", UPDATE)
    assert np.all(sim.weights("lat") == 0.0)


def test_count_activity():
    np.testing.assert_allclose(count_activity(np.array([0, 1, 2, 5]), 2.0), [0, 0.5, 1, 1])
    with pytest.raises(BiolearnError):
        count_activity(np.zeros(2), 0.0)


# ------------------------------------------------------------------ on engine projections
def _tiny_sim(synapse: str):
    """Inputs and outputs spiking at given times (outputs kicked over threshold through v);
    returns the simulation and the spike counts of the run."""
    net = Network(dt=0.5)
    src_n = np.array([2, 0, 1, 3])
    drv_n = np.array([2, 0, 1])
    src_i = np.repeat(np.arange(4), src_n)
    drv_i = np.repeat(np.arange(3), drv_n)
    net.add(SpikeSource("src", 4, src_i, 10.0 + 20.0 * np.concatenate(
        [np.arange(c) for c in src_n])))
    net.add(SpikeSource("drive", 3, drv_i, 5.0 + 20.0 * np.concatenate(
        [np.arange(c) for c in drv_n])))
    out = net.add(LIF("out", 3, synapse=synapse))
    rng = np.random.default_rng(2)
    heb = CountHebbian(0.1, 2.0, n_on=2.0, n_ref=2.0)
    net.connect(connect.dense("ff", "src", "out", 0.01 * rng.random((4, 3)), rule=heb))
    # a sparse projection given in scrambled order: updates must follow the user's order
    pre, post = np.array([3, 0, 2, 1, 0]), np.array([1, 2, 0, 2, 0])
    net.connect(Projection("sp", "src", "out", pre, post, 0.01 * rng.random(5), rule=heb))
    net.connect(connect.one_to_one("kick", "drive", "out", 3, 100.0, target="v"))
    net.connect(lateral("lat", out, CountAntiHebbian(0.1, 0.125, 4.0, n_ref=2.0)))
    sim = net.compile(seed=0)
    sim.run(100.0)
    return sim, pre, post


@pytest.mark.parametrize("synapse,sign", [("current", -1.0), ("conductance", 1.0)])
def test_rules_on_engine_projections(synapse, sign):
    sim, pre, post = _tiny_sim(synapse)
    x = sim.spike_counts("src") / 2.0
    y = count_activity(sim.spike_counts("out"), 2.0)
    np.testing.assert_array_equal(sim.spike_counts("out"), [2, 0, 1])
    w0, s0 = sim.weights("ff"), sim.weights("sp")
    sim.apply_event("ff", UPDATE)
    sim.apply_event("sp", UPDATE)
    np.testing.assert_allclose(sim.weights("ff"), w0 + 0.1 * y * (2 * x[:, None] - w0))
    np.testing.assert_allclose(sim.weights("sp"), s0 + 0.1 * y[post] * (2 * x[pre] - s0))
    sim.apply_event("lat", UPDATE)
    q = sim.net.projections[sim.proj_index["lat"]]
    want = -0.1 * (y[q.i] * y[q.j] - 0.125 ** 2)  # from w = 0
    np.testing.assert_allclose(sim.weights("lat"), sign * 4.0 * -np.minimum(want, 0.0))
    apply_threshold(sim, "out", y, CountThreshold(0.02, 0.125, 2.0))
    np.testing.assert_allclose(sim.theta[sim.slice("out")], 0.02 * 2.0 * (y - 0.125))
    with pytest.raises(BiolearnError):
        lateral("bad", sim.net.population("out"), CountAntiHebbian(), target="e")


def test_feedforward_scale_is_campbell_mean():
    """Mean depolarisation of a current-based LIF = Σ_i w_i r_i τe (Campbell's theorem), so one
    unit of Földiák's Σ q x gives ``u_unit`` mV."""
    par = SpikingFoldiakParams()
    q = np.array([1.0, 0.5, 0.25, 1.0, 0.0, 1.0, 0.75, 1.0])
    net = Network(dt=par.dt_ms)
    net.add(PoissonSource("src", 8, rates=par.rate_on_hz))
    net.add(LIF("out", 1, synapse="current", integration="exact", tau_m=par.tau_m,
                tau_e=par.tau_e, v_rest=par.v_rest, v_thresh=1e6))
    net.connect(connect.dense("ff", "src", "out", SpikingFoldiak.ff_scale(par) * q[:, None]))
    net.monitor(StateMonitor("out", "v", every=2))
    sim = net.compile(seed=3)
    sim.run(200.0)  # burn-in
    v = sim.run(20000.0)["states"]["out.v"][:, 0]
    assert v.mean() - par.v_rest == pytest.approx(par.u_unit * q.sum(), rel=0.03)


# ----------------------------------------------------------------------------- Földiák on bars
def _train(n: int, seed: int, **kw) -> tuple[SpikingFoldiak, object]:
    rng = np.random.default_rng(seed)
    net = SpikingFoldiak.create(64, 16, rng, SpikingFoldiakParams(**kw))
    x, _ = bars(n, rng)
    net.present(x, learn=True)
    return net, score_bars(probe_bars(net) > 0.5)


def _coding(net: SpikingFoldiak, score) -> tuple[np.ndarray, float]:
    xt, present = bars(2000, np.random.default_rng(99))
    fired = net.present(xt, learn=False) >= 1
    det = score.unit_bar >= 0
    return fired, float((fired[:, det] == present[:, score.unit_bar[det]]).mean())


def test_spiking_foldiak_learns_bars():
    net, score = _train(4000, seed=0)
    assert bars_with_unique_detector(score) >= 12
    assert score.n_detectors >= 12
    fired, acc = _coding(net, score)
    assert fired.mean() == pytest.approx(1 / 8, abs=0.02)  # Földiák: P(fire) ≈ p
    assert np.all(np.abs(fired.mean(axis=0) - 1 / 8) < 0.05)
    assert acc > 0.97  # each detector fires exactly when its bar is present
    w = net.w
    assert np.all(w <= 0) and np.all(np.diag(w) == 0) and w.min() < -0.5
    assert np.all(net.sim.weights("lat") <= 0)  # current-based: inhibition is negative gi


def test_spiking_foldiak_stdp_variant_learns_bars():
    net, score = _train(6000, seed=0, ff_rule="stdp")
    assert bars_with_unique_detector(score) >= 12
    fired, acc = _coding(net, score)
    assert fired.mean() == pytest.approx(1 / 8, abs=0.02)
    assert acc > 0.97
    # synaptic scaling holds each unit's feedforward sum at ff_sum
    np.testing.assert_allclose(net.q.sum(axis=1), 21.0, rtol=1e-9)


def test_without_anti_hebbian_no_bar_code():
    """Ablation: with α = 0 (no lateral inhibition) the units do not split the bars."""
    _, score = _train(2000, seed=0, alpha=0.0)
    assert bars_with_unique_detector(score) < 8


def test_bad_ff_rule():
    with pytest.raises(BiolearnError):
        SpikingFoldiak.create(4, 2, np.random.default_rng(0), SpikingFoldiakParams(ff_rule="x"))


def test_foldiak_spiking_recipe(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from biolearn.cli import cli

    monkeypatch.chdir(tmp_path)
    args = ["run", str(ROOT / "configs" / "foldiak_spiking.yaml"), "--out", "o", "--quiet",
            "--set", "params.n_train=4000", "--set", "params.n_test=500"]
    res = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert len(list(Path("o").glob("*.png"))) == 3
    m = json.loads(Path("o/results.json").read_text())["metrics"]
    assert m["n_bars_unique_detector"] >= 12
    assert m["firing_probability_mean"] == pytest.approx(1 / 8, abs=0.02)
