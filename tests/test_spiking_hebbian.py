"""Spiking Hebbian / anti-Hebbian rules on engine projections and the spiking Földiák network.

Rule updates are checked against Földiák's (1990) equations written out in NumPy; the unit
mapping of the network against Campbell's theorem; learning against the ground truth of the bars
benchmark (which bars are present), with an ablation showing the test can fail.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from biolearn.engine import LIF, Network, PoissonSource, Projection, StateMonitor, connect
from biolearn.errors import BiolearnError
from biolearn.rules.foldiak import bars
from biolearn.rules.spiking_hebbian import (
    CountAntiHebbian,
    CountHebbian,
    CountThreshold,
    SpikingFoldiak,
    SpikingFoldiakParams,
    anti_hebbian_update,
    apply_anti_hebbian,
    apply_hebbian,
    apply_threshold,
    bars_with_unique_detector,
    count_activity,
    hebbian_update,
    probe_bars,
    score_responses,
)

ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- rule kernels
def test_hebbian_update_is_foldiak_eq4():
    rng = np.random.default_rng(0)
    n_pre, n_post, beta, scale = 7, 5, 0.3, 2.5
    w = rng.random((n_pre, n_post))
    x, y = rng.random(n_pre), np.array([0.0, 1.0, 0.5, 0.0, 0.2])
    i, j = np.divmod(np.arange(n_pre * n_post), n_post)
    got = w.ravel().copy()
    hebbian_update(got, i, j, x, y, beta, scale)
    want = w + beta * y[None, :] * (scale * x[:, None] - w)  # Δq = βy(x − q), in units of scale
    np.testing.assert_allclose(got.reshape(n_pre, n_post), want, rtol=0, atol=1e-14)


def test_hebbian_fixed_point_closed_form():
    """With y = 1 and fixed x, w_n = s·x + (w_0 − s·x)(1 − β)^n."""
    x, w0 = np.array([1.0, 0.0, 0.3]), np.array([0.2, 0.9, 0.3])
    i, j = np.arange(3), np.zeros(3, np.int64)
    w = w0.copy()
    for _ in range(50):
        hebbian_update(w, i, j, x, np.ones(1), 0.1, 2.0)
    np.testing.assert_allclose(w, 2 * x + (w0 - 2 * x) * 0.9 ** 50, rtol=1e-12)


@pytest.mark.parametrize("scale", [3.0, -3.0])  # +: conductance-based, −: current-based inhibition
def test_anti_hebbian_update_is_foldiak_eq3(scale):
    rng = np.random.default_rng(1)
    n, alpha, p = 6, 0.1, 1 / 8
    wf = -rng.random((n, n)) * 0.3  # Földiák weights ≤ 0
    np.fill_diagonal(wf, 0.0)
    y = (rng.random(n) < 0.5).astype(float)
    i, j = np.divmod(np.arange(n * n), n)
    g = (np.sign(scale) * abs(scale) * -wf).ravel()
    anti_hebbian_update(g, i, j, y, alpha, p, scale)
    want = np.minimum(wf - alpha * (np.outer(y, y) - p * p), 0.0)  # eq. 3, w ≤ 0
    np.fill_diagonal(want, 0.0)
    got = g.reshape(n, n)
    np.testing.assert_allclose(got, np.sign(scale) * abs(scale) * -want, atol=1e-14)
    assert np.all(np.sign(scale) * got >= 0)
    # silent units: inhibition decays by α p² per presentation and stops at 0
    g2 = np.zeros(n * n)
    anti_hebbian_update(g2, i, j, np.zeros(n), alpha, p, scale)
    assert np.all(g2 == 0.0)


def test_count_activity():
    np.testing.assert_allclose(count_activity(np.array([0, 1, 2, 5]), 2.0), [0, 0.5, 1, 1])
    with pytest.raises(BiolearnError):
        count_activity(np.zeros(2), 0.0)


# ------------------------------------------------------------------ on engine projections
def _tiny_sim(synapse: str):
    net = Network(dt=0.5)
    net.add(PoissonSource("src", 4, rates=0.0))
    net.add(LIF("out", 3, synapse=synapse))
    rng = np.random.default_rng(2)
    net.connect(connect.dense("ff", "src", "out", rng.random((4, 3))))
    # a sparse projection given in scrambled order: updates must follow the user's order
    pre, post = np.array([3, 0, 2, 1, 0]), np.array([1, 2, 0, 2, 0])
    net.connect(Projection("sp", "src", "out", pre, post, rng.random(5)))
    net.connect(connect.all_but_self("lat", "out", "out", 3, 0.0, target="i"))
    return net.compile(seed=0), pre, post


@pytest.mark.parametrize("synapse,sign", [("current", -1.0), ("conductance", 1.0)])
def test_rules_on_engine_projections(synapse, sign):
    sim, pre, post = _tiny_sim(synapse)
    x, y = np.array([1.0, 0.0, 0.5, 2.0]), np.array([1.0, 0.0, 0.5])
    w0, s0 = sim.weights("ff"), sim.weights("sp")
    apply_hebbian(sim, "ff", x, y, CountHebbian(0.1, 2.0))
    apply_hebbian(sim, "sp", x, y, CountHebbian(0.1, 2.0))
    np.testing.assert_allclose(sim.weights("ff"), w0 + 0.1 * y * (2 * x[:, None] - w0))
    np.testing.assert_allclose(sim.weights("sp"), s0 + 0.1 * y[post] * (2 * x[pre] - s0))
    apply_anti_hebbian(sim, "lat", y, CountAntiHebbian(0.1, 0.125, 4.0))
    q = sim.net.projections[sim.proj_index["lat"]]
    want = -0.1 * (y[q.i] * y[q.j] - 0.125 ** 2)  # from w = 0
    np.testing.assert_allclose(sim.weights("lat"), sign * 4.0 * -np.minimum(want, 0.0))
    apply_threshold(sim, "out", y, CountThreshold(0.02, 0.125, 2.0))
    np.testing.assert_allclose(sim.theta[sim.slice("out")], 0.02 * 2.0 * (y - 0.125))
    with pytest.raises(BiolearnError):
        apply_anti_hebbian(sim, "ff", y, CountAntiHebbian())


def test_feedforward_scale_is_campbell_mean():
    """Mean depolarisation of a current-based LIF = Σ_i w_i r_i τe (Campbell's theorem), so one
    unit of Földiák's Σ q x gives ``u_unit`` mV."""
    par = SpikingFoldiakParams()
    q = np.array([1.0, 0.5, 0.25, 1.0, 0.0, 1.0, 0.75, 1.0])
    net = Network(dt=par.dt)
    net.add(PoissonSource("src", 8, rates=par.rate_on))
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
    return net, score_responses(probe_bars(net) > 0.5)


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
