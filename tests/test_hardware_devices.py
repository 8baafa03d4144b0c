"""Device models against closed forms (NeuroSim TCAD 2018 Eq. 1-3), published NL->A values and
configured variation statistics."""

from __future__ import annotations

import numba
import numpy as np
import pytest

from biolearn.errors import BiolearnError
from biolearn.hardware.devices import (
    C_ADN,
    C_AUP,
    C_GMAX,
    C_GMIN,
    C_PDN,
    C_PUP,
    DeviceParams,
    a_to_nl,
    apply_pulses,
    drift,
    load_lut_csv,
    make_devices,
    nl_to_a,
    params_from_dict,
    pulse_response,
    read_conductance,
)
from biolearn.hardware.presets import PRESETS, device_from_dict, get_preset, load_device

# Normalised A = A / P for NL labels, from MLP+NeuroSim v3 (documents/Nonlinearity-NormA,
# formula.cpp getParamA).
NEUROSIM_NORM_A = {0.01: 126.268958, 0.5: 2.5199, 1.0: 1.251653, 1.85: 0.6619, 1.94: 0.6292,
                   2.4: 0.4992, 3.68: 0.3006, 4.88: 0.2003, 6.76: 0.1003, 9.0: 0.0228}


@pytest.mark.parametrize("nl", sorted(NEUROSIM_NORM_A))
def test_nl_to_a_matches_neurosim_table(nl):
    assert nl_to_a(nl) == pytest.approx(NEUROSIM_NORM_A[nl], rel=2e-3)
    assert nl_to_a(-nl, 100) == pytest.approx(-100 * NEUROSIM_NORM_A[nl], rel=2e-3)
    assert a_to_nl(nl_to_a(nl, 50), 50) == pytest.approx(nl, rel=1e-4)


def test_nl_zero_is_linear_and_too_large_nl_errors():
    assert np.isinf(nl_to_a(0.0))
    with pytest.raises(BiolearnError):
        nl_to_a(1e6)


def _noise_free(name: str, **kw) -> DeviceParams:
    return params_from_dict({"sigma_c2c": 0.0, **kw}, get_preset(name))


@pytest.mark.parametrize("name", ["ag_si", "taox_tio2", "pcmo", "alox_hfo2", "target"])
def test_exp_ltp_ltd_equal_closed_form(name):
    p = _noise_free(name)
    r = pulse_response(p)[0]
    P, Q = p.levels_ltp, p.levels_ltd
    gmin, gmax = p.g_min, p.g_max
    # LTP: G(P) = B (1 - e^{-P/A}) + G_min, B = (G_max - G_min) / (1 - e^{-P_max/A})
    A = NEUROSIM_NORM_A.get(p.nl_ltp, None)
    A = (A * P) if A is not None else float(nl_to_a(p.nl_ltp, P))
    k = np.arange(P + 1)
    B = (gmax - gmin) / (1 - np.exp(-P / A))
    np.testing.assert_allclose(r[:P + 1], B * (1 - np.exp(-k / A)) + gmin, rtol=2e-3)
    assert r[P] == pytest.approx(gmax, rel=1e-12)  # upper bound reached after P_max pulses
    # LTD in the paper's form with positive A on the state axis x = Q - (pulses applied):
    # G_LTD(x) = -B (1 - e^{(x - Q)/A}) + G_max
    Ad = float(-nl_to_a(p.nl_ltd, Q))
    Bd = (gmax - gmin) / (1 - np.exp(-Q / Ad))
    x = Q - np.arange(Q + 1)
    np.testing.assert_allclose(r[P:], -Bd * (1 - np.exp((x - Q) / Ad)) + gmax, rtol=2e-3)
    assert r[-1] == pytest.approx(gmin, rel=1e-9)
    # level count: exactly P_max distinct steps up, Q_max down, then saturation
    assert np.all(np.diff(r[:P + 1]) > 0) and np.all(np.diff(r[P:]) < 0)


def test_bounds_saturate_and_linear_and_softbounds():
    p = _noise_free("ideal")
    dev = make_devices(p, 3, np.random.default_rng(0))
    apply_pulses(dev, np.array([10.0, 64.0, 500.0]), np.random.default_rng(0))
    d = p.g_max - p.g_min
    np.testing.assert_allclose(dev.g, [p.g_min + 10 * d / 64, p.g_max, p.g_max])
    apply_pulses(dev, np.array([-3.0, -64.0, -1000.0]), np.random.default_rng(0))
    np.testing.assert_allclose(dev.g, [p.g_min + 7 * d / 64, p.g_min, p.g_min])

    sb = params_from_dict({"kind": "softbounds", "levels": 20}, p)
    r = pulse_response(sb, 30, 25)[0]
    n = np.arange(31)
    np.testing.assert_allclose(r[:31], p.g_max - d * (1 - 1 / 20) ** n)
    np.testing.assert_allclose(r[30:], p.g_min + (r[30] - p.g_min) * (1 - 1 / 20) ** np.arange(26))


def test_lut_device_from_csv(tmp_path):
    ltp = [1.0, 3.0, 4.5, 5.5, 6.0]
    ltd = [6.0, 4.0, 2.5, 1.5, 1.2, 1.0]
    f = tmp_path / "dev.csv"
    f.write_text("branch,pulse,conductance\n"
                 + "".join(f"ltp,{i},{g}\n" for i, g in enumerate(ltp))
                 + "".join(f"ltd,{i},{g}\n" for i, g in enumerate(ltd)))
    assert load_lut_csv(f) == (ltp, ltd)
    y = tmp_path / "dev.yaml"
    y.write_text("lut_csv: dev.csv\ng_min: 1.0e-6\ng_max: 6.0e-6\n")
    p = load_device(y)
    assert p.kind == "lut" and p.name == "dev"
    r = pulse_response(p, 6, 7)[0] * 1e6
    np.testing.assert_allclose(r[:5], ltp)
    assert r[5] == pytest.approx(6.0)  # bound
    np.testing.assert_allclose(r[6:12], ltd)
    assert r[12] == pytest.approx(1.0)


def test_c2c_noise_statistics():
    p = params_from_dict({"sigma_c2c": 0.02, "levels": 100}, get_preset("ideal"))
    n = 40000
    dev = make_devices(p, n, np.random.default_rng(1), g_init=p.g_min + 0.5 * (p.g_max - p.g_min))
    g0 = dev.g.copy()
    apply_pulses(dev, np.full(n, 4.0), np.random.default_rng(2))
    d = p.g_max - p.g_min
    err = dev.g - (g0 + 4 * d / 100)
    assert abs(err.mean()) < 4 * 0.02 * d * 2 / np.sqrt(n)
    assert err.std() == pytest.approx(0.02 * d * np.sqrt(4), rel=0.03)


def test_d2d_variation_statistics():
    base = get_preset("ag_si")
    p = params_from_dict({"sigma_d2d_nl": 0.3, "sigma_d2d_step": 0.1,
                          "sigma_d2d_range": 0.05}, base)
    dev = make_devices(p, 20000, np.random.default_rng(3))
    nl = a_to_nl(dev.prm[:, C_AUP], dev.prm[:, C_PUP])
    assert nl.mean() == pytest.approx(2.4, abs=0.01)
    assert nl.std() == pytest.approx(0.3, rel=0.03)
    step = base.levels_ltp / dev.prm[:, C_PUP]
    assert step.mean() == pytest.approx(1.0, abs=0.003)
    assert step.std() == pytest.approx(0.1, rel=0.03)
    gmax = dev.prm[:, C_GMAX] / base.g_max
    assert gmax.mean() == pytest.approx(1.0, abs=0.002)
    assert gmax.std() == pytest.approx(0.05, rel=0.03)
    assert np.all(dev.prm[:, C_GMAX] > dev.prm[:, C_GMIN])


def test_wide_d2d_spread_stays_within_neurosim_nl_table():
    # Ag:a-Si LTD NL -4.88 with sigma 2: ~2 % of the draws fall beyond NeuroSim's table (|NL| 9)
    p = params_from_dict({"sigma_d2d_nl": 2.0}, get_preset("ag_si"))
    dev = make_devices(p, 20000, np.random.default_rng(4))
    nl_dn = a_to_nl(dev.prm[:, C_ADN], dev.prm[:, C_PDN])
    assert np.all(nl_dn < 0) and np.all(nl_dn >= -9.0 - 1e-4)
    assert np.mean(nl_dn <= -9.0 + 1e-3) == pytest.approx(0.0197, abs=0.004)  # P(z > 2.06)


@numba.njit
def _numba_normals(seed: int, n: int) -> np.ndarray:
    np.random.seed(seed)
    out = np.empty(n)
    for k in range(n):
        out[k] = np.random.standard_normal()
    return out


def _neurosim_curve(x: np.ndarray, a: float, p: float, gmin: float, gmax: float) -> np.ndarray:
    """NeuroSim's NonlinearWeight, continued past [0, P] as RealDevice::Write evaluates it."""
    b = (gmax - gmin) / (1.0 - np.exp(-p / a))
    return b * (1.0 - np.exp(-x / a)) + gmin


def test_c2c_noise_is_added_to_the_curve_clipped_at_the_branch_end():
    # documented difference from NeuroSim (devices module docstring): x + n is clipped to [0, P]
    # before the noise; NeuroSim adds the noise to the continued curve and clips only g
    p = DeviceParams(kind="exp", nl_ltp=2.4, levels_ltp=100, sigma_c2c=0.035)
    n_dev, n_pulses = 2000, 8.0
    a = float(nl_to_a(2.4, 100))
    x0 = np.linspace(60.0, 99.0, n_dev)  # from well inside the branch to one pulse below its end
    g0 = _neurosim_curve(x0, a, 100.0, p.g_min, p.g_max)
    dev = make_devices(p, n_dev, np.random.default_rng(0), g_init=g0)
    apply_pulses(dev, np.full(n_dev, n_pulses), np.random.default_rng(7))
    z = _numba_normals(int(np.random.default_rng(7).integers(2**31 - 1)), n_dev)
    noise = p.sigma_c2c * (p.g_max - p.g_min) * np.sqrt(n_pulses) * z
    ours = np.clip(_neurosim_curve(np.minimum(x0 + n_pulses, 100.0), a, 100.0, p.g_min, p.g_max)
                   + noise, p.g_min, p.g_max)
    neurosim = np.clip(_neurosim_curve(x0 + n_pulses, a, 100.0, p.g_min, p.g_max) + noise,
                       p.g_min, p.g_max)
    np.testing.assert_allclose(dev.g, ours, rtol=1e-9, atol=0)
    inside = x0 + n_pulses <= 100.0
    np.testing.assert_allclose(dev.g[inside], neurosim[inside], rtol=1e-9, atol=0)
    # overshooting writes: ours end at g_max exactly when z > 0, NeuroSim's a little higher (its
    # continued curve is flat near the end of a concave branch)
    over = ~inside
    assert over.sum() > 100
    np.testing.assert_array_equal(dev.g[over] == p.g_max, z[over] >= 0)
    assert np.all(dev.g[over] <= neurosim[over]) and np.any(dev.g[over] < neurosim[over])


def test_d2d_label_crossing_zero_keeps_the_branch_curvature():
    # documented difference from NeuroSim: a perturbed label that crosses zero is reflected
    # (NeuroSim's getParamA takes its sign, which makes the curve convex)
    p = DeviceParams(kind="exp", nl_ltp=1.0, nl_ltd=-1.0, sigma_d2d_nl=2.0)
    n = 20000
    dev = make_devices(p, n, np.random.default_rng(5))
    draws = np.random.default_rng(5)
    draws.standard_normal((n, 2))  # range, then step variation (both sigma 0), then the labels
    draws.standard_normal((n, 2))
    nl = np.array([1.0, -1.0]) + 2.0 * draws.standard_normal((n, 2))
    np.testing.assert_allclose(dev.prm[:, C_AUP], nl_to_a(np.minimum(np.abs(nl[:, 0]), 9.0), 64))
    np.testing.assert_allclose(dev.prm[:, C_ADN],
                               nl_to_a(-np.minimum(np.abs(nl[:, 1]), 9.0), 64))
    assert np.mean(nl[:, 0] < 0) == pytest.approx(0.3085, abs=0.01)  # convex in NeuroSim: Φ(−½)


def test_read_noise_faults_and_drift():
    p = params_from_dict({"sigma_read": 0.05, "p_stuck_min": 0.1, "p_stuck_max": 0.05,
                          "drift_nu": 0.05, "drift_t0": 1.0}, get_preset("ideal"))
    rng = np.random.default_rng(4)
    n = 50000
    dev = make_devices(p, n, rng, g_init=p.g_max / 2)
    assert np.mean(dev.stuck == 1) == pytest.approx(0.1, abs=0.005)
    assert np.mean(dev.stuck == 2) == pytest.approx(0.05, abs=0.004)
    ok = dev.stuck == 0
    g_read = read_conductance(dev, rng)
    rel = g_read[ok] / dev.g[ok] - 1
    assert rel.std() == pytest.approx(0.05, rel=0.03) and abs(rel.mean()) < 1e-3
    g_st = dev.g.copy()
    apply_pulses(dev, np.full(n, 5.0), rng)
    np.testing.assert_array_equal(dev.g[~ok], g_st[~ok])  # stuck devices ignore writes
    clean = params_from_dict({"sigma_read": 0.0, "p_stuck_min": 0.0, "p_stuck_max": 0.0}, p)
    g_t = read_conductance(make_devices(clean, 4, np.random.default_rng(5), g_init=p.g_max),
                           None, t=100.0)
    np.testing.assert_allclose(g_t, p.g_max * 100.0 ** -0.05)
    assert drift(2.0, 1000.0, 1.0, 0.1) == pytest.approx(2.0 * 1000 ** -0.1)


def test_presets_have_citations_and_table_values():
    for name, p in PRESETS.items():
        assert "Table I" in p.citation, name
    ag = get_preset("Ag:a-Si")
    assert (ag.levels_ltp, ag.nl_ltp, ag.nl_ltd, ag.sigma_c2c) == (97, 2.4, -4.88, 0.035)
    assert ag.on_off == pytest.approx(12.5)
    assert get_preset("alox_hfo2").on_off == pytest.approx(4.43)
    user = device_from_dict({"base": "pcmo", "sigma_c2c": 0.01, "name": "mine"})
    assert user.nl_ltd == -6.76 and user.sigma_c2c == 0.01
    with pytest.raises(BiolearnError):
        device_from_dict({"base": "pcmo", "sigma_c2": 0.01})
    with pytest.raises(BiolearnError):
        get_preset("pcmoo")
