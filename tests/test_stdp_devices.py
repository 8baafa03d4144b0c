"""STDP projections on device synapses (biolearn.hardware.stdp_devices, sym_stdp_device).

Pulse counts and energies are checked against the closed forms of the NeuroSim write (pulses =
round(ΔW / range · P), linear device: each pulse moves G by ΔG/P, energy Σ V² t ½(G₀ + G₁) per
pulse); device runs against the same network with float (software) synapses.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from mnist_data import mnist_root as _mnist_root

from biolearn.engine import LIF, Network, PoissonSource, connect
from biolearn.errors import BiolearnError
from biolearn.hardware.presets import get_preset
from biolearn.hardware.stdp_devices import attach, attach_all, commit
from biolearn.rules.stdp import SymmetricSTDP

N_IN, N_OUT = 40, 6
V_LTP, V_LTD, T_W = 3.2, 2.8, 300e-6  # NeuroSim write voltages / pulse width (preset defaults)


def _sim(seed: int = 0, w_max: float = 1.0, rule: bool = True):
    """40 Poisson inputs (30 Hz) -> 6 conductance LIF, symmetric STDP on the dense projection."""
    net = Network(dt=0.5)
    net.add(PoissonSource("in", N_IN, 30.0))
    net.add(LIF("out", N_OUT, synapse="conductance", tau_m=20.0, t_ref=2.0, tau_e=2.0))
    rng = np.random.default_rng(seed)
    r = SymmetricSTDP(eta=0.02, tau=20.0, inc=0.1, w_max=w_max) if rule else None
    net.connect(connect.dense("p", "in", "out", rng.uniform(0.0, 0.3 * w_max, (N_IN, N_OUT)),
                              target="e", rule=r))
    return net.compile(seed=seed)


def _linear(levels: int = 64, c2c: float = 0.0):
    dev = get_preset("ideal")  # NL 0/0 -> linear response, on/off 50
    dev.levels_ltp = dev.levels_ltd = levels
    dev.sigma_c2c = c2c
    return dev


def _round_half_away(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def _present(sim, hw=None, target: float = 6.0, ms: float = 200.0) -> None:
    """One presentation as in the sym-STDP protocol: write, scale, write, run."""
    if hw is not None:
        hw.commit(sim, "stdp")
    sim.normalize("p", target)
    if hw is not None:
        hw.commit(sim, "scaling")
    sim.reset_state()
    sim.run(ms)


# ------------------------------------------------------------------ hand-made ΔW: pulse counts

# offsets in units of one pulse step; rounding: 2.4 -> 2, 2.6 -> 3, -0.6 -> -1, 0.4 -> 0, ...
STEPS = np.array([2.4, 2.6, -0.6, 0.4, -3.3, 0.0, 1.0, -1.7, 5.2, -0.2])


def _hand_setup(scheme: str, mapping: str, levels: int = 64):
    sim = _sim(rule=True)
    w0 = np.full((N_IN, N_OUT), 0.5)
    sim.set_weights("p", w0)
    dp = attach(sim, "p", _linear(levels), np.random.default_rng(1), scheme, mapping)
    dw = np.zeros(N_IN * N_OUT)
    dw[:STEPS.size] = STEPS * dp.level
    sim.set_weights("p", (dp.w_seen + dw).reshape(N_IN, N_OUT))
    return sim, dp, dw


def test_unipolar_bidirectional_pulse_counts_energy_and_weights():
    sim, dp, dw = _hand_setup("bidirectional", "unipolar")
    assert dp.level == pytest.approx(1.0 / 64)  # w in [0, 1] on one device, 64 levels
    g0 = dp.syn.pos.g.copy()
    st = commit(sim, dp, np.random.default_rng(2))
    n = _round_half_away(STEPS)
    assert st.ltp_pulses == n[n > 0].sum()
    assert st.ltd_pulses == -n[n < 0].sum()
    # linear device: w moves by exactly n levels, and the engine now holds the device weights
    w = sim.weights("p").ravel()
    np.testing.assert_allclose(w[:STEPS.size], 0.5 + n / 64, atol=1e-12)
    np.testing.assert_allclose(w[STEPS.size:], 0.5, atol=1e-12)
    # unipolar map: w = (G - G_min)/(G_max - G_min) with the nominal range
    dev = _linear()
    np.testing.assert_allclose(w, (dp.syn.pos.g - dev.g_min) / (dev.g_max - dev.g_min),
                               atol=1e-12)
    # energy proxy: each pulse V^2 t_w times the mean of its start and end conductance
    d_g = (dev.g_max - dev.g_min) / 64
    e = 0.0
    for k, nk in enumerate(n):
        g1 = g0[k] + nk * d_g
        e += abs(nk) * 0.5 * (g0[k] + g1) * (V_LTP if nk > 0 else V_LTD) ** 2 * T_W
    assert st.energy_j == pytest.approx(e, rel=1e-9)
    assert dp.totals["write"].pulses == st.pulses and dp.writes == 1
    assert dp.synapse_writes == np.count_nonzero(n)


def test_differential_bidirectional_writes_both_devices():
    sim, dp, dw = _hand_setup("bidirectional", "differential")
    assert dp.level == pytest.approx(2.0 / 64)  # w_max = 1, one pulse pair = 2 w_max / P
    st = commit(sim, dp, np.random.default_rng(2))
    n = np.abs(_round_half_away(STEPS)).sum()
    assert st.ltp_pulses == n and st.ltd_pulses == n  # +n on G+ and -n on G- (or vice versa)


def test_unidirectional_pulse_counts_only_potentiate():
    sim, dp, dw = _hand_setup("unidirectional", "auto")
    assert dp.mapping == "differential" and dp.level == pytest.approx(1.0 / 64)
    st = commit(sim, dp, np.random.default_rng(2))
    n = _round_half_away(STEPS)
    assert st.ltd_pulses == 0.0 and st.refreshes == 0.0
    assert st.ltp_pulses == np.abs(n).sum()
    np.testing.assert_allclose(sim.weights("p").ravel()[:STEPS.size], 0.5 + n / 64, atol=1e-12)


def test_unidirectional_never_depresses_over_many_writes_with_refresh():
    sim, dp, _ = _hand_setup("unidirectional", "differential", levels=16)
    rng = np.random.default_rng(5)
    sign = np.where(np.arange(N_IN * N_OUT) % 2 == 0, 1.0, -1.0)
    lowered = 0
    for _ in range(40):
        gp, gn = dp.syn.pos.g.copy(), dp.syn.neg.g.copy()
        w_before = dp.w_seen.copy()
        # alternate potentiation and depression requests of one to three levels
        dw = sign * rng.integers(1, 4, sign.size) * dp.level * rng.choice([-1.0, 1.0])
        sim.set_weights("p", (dp.w_seen + dw).reshape(N_IN, N_OUT))
        st = commit(sim, dp, rng)
        assert st.ltd_pulses == 0.0
        if st.refreshes == 0:  # no reset in this write: every conductance only went up
            assert np.all(dp.syn.pos.g >= gp) and np.all(dp.syn.neg.g >= gn)
        lowered += int(np.sum(dp.w_seen < w_before - 0.5 * dp.level))
    assert lowered > 0  # depression requests were honoured (through G-) ...
    assert dp.totals["write"].refreshes > 0  # ... and devices saturated and were refreshed
    assert dp.total().ltd_pulses == 0.0


# ------------------------------------------------------------------ device run vs software run

def test_ideal_scheme_reproduces_software_run():
    sw, hw_sim = _sim(3), _sim(3)
    hw = attach_all(hw_sim, ["p"], get_preset("ag_si"), np.random.default_rng(0), "ideal")
    for _ in range(6):
        _present(sw)
        _present(hw_sim, hw)
    hw.commit(hw_sim)
    np.testing.assert_array_equal(sw.counts, hw_sim.counts)
    np.testing.assert_allclose(hw_sim.weights("p"), sw.weights("p"), atol=1e-9)
    assert hw.summary()["total"]["pulses"] == 0.0


def test_fine_levels_single_write_within_half_a_level():
    levels = 4096
    sw, hd = _sim(4), _sim(4)
    hw = attach_all(hd, ["p"], _linear(levels), np.random.default_rng(0), "bidirectional")
    np.testing.assert_allclose(hd.weights("p"), sw.weights("p"), atol=1e-12)  # exact program
    w_dev0 = hd.weights("p")
    for s in (sw, hd):
        s.reset_state()
        s.run(300.0)
    np.testing.assert_array_equal(sw.counts, hd.counts)
    st = hw.commit(hd)
    dev_w, sw_w = hd.weights("p"), sw.weights("p")
    assert np.any(sw_w != w_dev0) and st.pulses > 0
    assert np.max(np.abs(dev_w - sw_w)) <= 0.5 / levels + 1e-12
    # every change is a whole number of pulses on the linear device
    k = (dev_w - w_dev0) * levels
    np.testing.assert_allclose(k, np.round(k), atol=1e-6)


def test_fine_levels_with_residual_track_software_within_one_level():
    levels = 4096
    sw, hd = _sim(6), _sim(6)
    hw = attach_all(hd, ["p"], _linear(levels), np.random.default_rng(0), "bidirectional",
                    rounding="accumulate")
    for _ in range(5):
        _present(sw)
        _present(hd, hw)
    hw.commit(hd)
    np.testing.assert_array_equal(sw.counts, hd.counts)
    assert np.max(np.abs(hd.weights("p") - sw.weights("p"))) <= 1.0 / levels


def test_stochastic_rounding_is_unbiased():
    sim = _sim()
    sim.set_weights("p", np.full((N_IN, N_OUT), 0.5))
    dp = attach(sim, "p", _linear(64), np.random.default_rng(0), rounding="stochastic")
    n_syn = N_IN * N_OUT
    frac = np.where(np.arange(n_syn) % 2 == 0, 0.3, -1.8)  # in steps
    rng = np.random.default_rng(9)
    ups, dns = 0.0, 0.0
    reps = 40
    for _ in range(reps):  # each write from 0.5: +0.3 step (expect 0.3 pulses), -1.8 (1.8)
        sim.set_weights("p", np.full((N_IN, N_OUT), 0.5))
        commit(sim, dp, rng)  # back to 0.5 on the device
        sim.set_weights("p", (dp.w_seen + frac * dp.level).reshape(N_IN, N_OUT))
        st = commit(sim, dp, rng)
        ups += st.ltp_pulses
        dns += st.ltd_pulses
    half = reps * n_syn / 2
    # binomial: mean p*N, sd sqrt(N p (1-p)); 5 sd bounds
    for total, mean, p in ((ups, 0.3 * half, 0.3), (dns, 1.8 * half, 0.8)):
        assert abs(total - mean) < 5 * np.sqrt(half * p * (1 - p))


def test_coarse_device_loses_sub_level_updates_without_residual():
    # 8 levels: most per-image STDP and scaling changes are below half a step and are dropped;
    # the device weights then stay on the 8-level grid and differ from software by > 1 level
    sw, hd = _sim(7), _sim(7)
    hw = attach_all(hd, ["p"], _linear(8), np.random.default_rng(0), "bidirectional",
                    program="pulses")
    for _ in range(4):
        _present(sw)
        _present(hd, hw)
    hw.commit(hd)
    w = hd.weights("p")
    np.testing.assert_allclose(w * 8, np.round(w * 8), atol=1e-9)
    assert np.max(np.abs(w - sw.weights("p"))) > 1.0 / 8


def test_c2c_noise_is_seeded():
    out = []
    for _ in range(2):
        s = _sim(8)
        hw = attach_all(s, ["p"], get_preset("ag_si"), np.random.default_rng(11),
                        "bidirectional")
        for _ in range(3):
            _present(s, hw)
        hw.commit(s)
        out.append(s.weights("p"))
    np.testing.assert_array_equal(out[0], out[1])


def test_errors():
    with pytest.raises(BiolearnError, match="not plastic"):
        attach(_sim(rule=False), "p", "ideal", np.random.default_rng(0))
    with pytest.raises(BiolearnError, match="differential"):
        attach(_sim(), "p", "ideal", np.random.default_rng(0), "unidirectional", "unipolar")
    with pytest.raises(BiolearnError, match="unknown update scheme"):
        attach(_sim(), "p", "ideal", np.random.default_rng(0), "sideways")
    with pytest.raises(BiolearnError, match="unknown projection"):
        attach(_sim(), "q", "ideal", np.random.default_rng(0))


def test_config_parses_and_schemes_resolve():
    from biolearn.config import load_config
    from biolearn.models.sym_stdp_device import parse_scheme, variants

    root = Path(__file__).resolve().parents[1]
    cfg = load_config(root / "configs" / "stdp_mnist_memristor.yaml")
    vs = variants(cfg.params.device)
    assert vs[0].device is None and len(vs) == 1 + 3 * 2
    assert parse_scheme("unidirectional") == ("unidirectional", "differential")
    assert parse_scheme("bidirectional:differential") == ("bidirectional", "differential")
    with pytest.raises(BiolearnError):
        parse_scheme("unidirectional:unipolar")


# ------------------------------------------------------------------ the recipe, end to end



@pytest.mark.skipif(_mnist_root() is None, reason="MNIST not found (set BIOLEARN_DATA)")
def test_recipe_software_and_ideal_scheme_match_sym_stdp(tmp_path):
    import biolearn.models.sym_stdp as sym
    import biolearn.models.sym_stdp_device as symd
    from biolearn.config import load_config
    from biolearn.runner import RunContext

    sets = ["params.n_exc=12", "data.n_train=40", "data.n_test=30", "params.output.figures=false",
            "params.output.spikes_test_images=2", "params.output.test_workers=1",
            "params.output.curve_every=20", "params.plasticity.eta_in=0.02"]
    root = Path(__file__).resolve().parents[1]
    cfg = load_config(root / "configs" / "stdp_mnist_memristor.yaml",
                      sets + ["params.device.presets=[ag_si]",
                              "params.device.schemes=[ideal, unidirectional]"])
    m = symd.run(cfg, RunContext(tmp_path / "dev", cfg.seed, data_root=_mnist_root(),
                                 quiet=True))
    ref_cfg = load_config(root / "configs" / "stdp_mnist_smoke.yaml",
                          sets + ["params.plasticity.eta_in=0.02"])
    ref = sym.run(ref_cfg, RunContext(tmp_path / "ref", ref_cfg.seed,
                                      data_root=_mnist_root(), quiet=True))
    rows = {r["variant"]: r for r in m["table"]}
    assert rows["software"]["test_accuracy"] == ref["test_accuracy"]
    assert rows["ag_si_ideal_unipolar"]["test_accuracy"] == ref["test_accuracy"]
    uni = rows["ag_si_unidirectional_differential"]
    assert uni["ltd_pulses"] == 0.0 and uni["ltp_pulses"] > 0
    assert (tmp_path / "dev" / "results_table.md").exists()


def test_an_interrupted_device_sweep_reports_the_running_variants_tests(tmp_path, monkeypatch):
    """Stopped in its second variant, after that variant's first test: the partial results.json
    holds the finished variant's row and the running variant's tests so far."""
    from biolearn.config import load_config
    from biolearn.protocols import image_stdp
    from biolearn.runner import RunInterrupted, execute

    root = Path(__file__).resolve().parents[1]
    cfg = load_config(root / "configs" / "stdp_mnist_memristor.yaml", [
        "params.n_exc=12", "data.n_train=40", "data.n_test=20", "params.output.figures=false",
        "params.output.spikes_test_images=2", "params.output.test_workers=1",
        "params.output.curve_every=20", "params.output.test_every=20",
        "params.device.presets=[ag_si]", "params.device.schemes=[ideal]"])
    from biolearn.protocols import trainer

    run_dir, tested = tmp_path / "run", {"second": False}
    real_test, real_present = trainer.epoch_test, image_stdp.Presenter.present

    def test_and_mark(*a, **k):
        r = real_test(*a, **k)
        tested["second"] = (run_dir / "software" / "variant.json").exists()
        return r

    def stop_in_second_variant(self, image, before=None):
        if tested["second"]:  # the first training image after the second variant's first test
            raise KeyboardInterrupt
        return real_present(self, image, before)

    monkeypatch.setattr(trainer, "epoch_test", test_and_mark)
    monkeypatch.setattr(image_stdp.Presenter, "present", stop_in_second_variant)
    with pytest.raises(RunInterrupted):
        execute(cfg, out_dir=run_dir, quiet=True, data_root=_mnist_root())
    res = json.loads((run_dir / "results.json").read_text())
    assert res["status"] == "interrupted"
    assert [r["variant"] for r in res["metrics"]["table"]] == ["software"]
    running = res["metrics"]["variant_in_progress"]
    assert running["variant"] == "ag_si_ideal_unipolar"
    assert [t["images_trained"] for t in running["metrics"]["epoch_tests"]] == [20]
