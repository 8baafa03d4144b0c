"""Crossbar mapping, DAC/ADC quantisation, tiling, and the update schemes."""

from __future__ import annotations

import numpy as np
import pytest

from biolearn.errors import BiolearnError
from biolearn.hardware.crossbar import Crossbar, CrossbarConfig
from biolearn.hardware.devices import C_GMAX, C_GMIN, curve_g, curve_x, energy_coefficients
from biolearn.hardware.presets import device_from_dict
from biolearn.hardware.synapses import make_synapses, program_weights
from biolearn.hardware.update import apply_delta, refresh_pair


def _q(v, lo, hi, bits):
    """Independent uniform quantiser: nearest of 2^bits evenly spaced codes on [lo, hi]."""
    codes = np.linspace(lo, hi, 2 ** bits)
    v = np.clip(np.asarray(v, dtype=float), lo, hi)
    return codes[np.argmin(np.abs(v[..., None] - codes), axis=-1)]


@pytest.mark.parametrize("mapping", ["offset", "differential"])
@pytest.mark.parametrize("device", ["ideal", "ag_si", "pcmo"])
def test_mapping_round_trip_within_one_level(mapping, device):
    rng = np.random.default_rng(0)
    dev = device_from_dict({"base": device, "sigma_c2c": 0.0})
    w = rng.uniform(-1, 1, 3000)
    syn = make_synapses(dev, w.size, rng, mapping=mapping, w_init=None)
    program_weights(syn, w, rng, exact=False)  # reset + LTP pulses (program-and-verify)
    err = np.abs(syn.weights() - w)
    # local weight change of one LTP pulse at the programmed conductance, per device
    scale = (2.0 if mapping == "offset" else 1.0) / (dev.g_max - dev.g_min)
    steps = []
    for arr in ([syn.pos] + ([syn.neg] if syn.neg is not None else [])):
        st = np.empty(arr.n)
        for i in range(arr.n):
            row = arr.prm[i]
            x = curve_x(arr.g[i], arr.kind, row[C_GMIN], row[C_GMAX], row[2], row[4], arr.lut_up)
            lo = curve_g(max(x - 1, 0), arr.kind, row[C_GMIN], row[C_GMAX], row[2], row[4],
                         arr.lut_up)
            hi = curve_g(x + 1, arr.kind, row[C_GMIN], row[C_GMAX], row[2], row[4], arr.lut_up)
            st[i] = max(hi - arr.g[i], arr.g[i] - lo)
        steps.append(st * scale)
    level = np.max(steps, axis=0)
    assert np.all(err <= level + 1e-12)
    if device == "ideal":
        assert err.max() <= syn.weight_step / 2 + 1e-12


@pytest.mark.parametrize("mapping", ["offset", "differential"])
def test_dac_adc_tiles_quantisation_exact(mapping):
    rng = np.random.default_rng(1)
    n_in, n_out = 23, 9
    W = rng.uniform(-1, 1, (n_in, n_out))
    cfg = CrossbarConfig(mapping=mapping, dac_bits=3, adc_bits=6, tile_rows=7, x_max=2.0,
                         adc_range=0.5)
    cb = Crossbar(n_in, n_out, "ideal", rng, cfg, w_init=W)
    Wd = cb.weights()
    np.testing.assert_allclose(Wd, W, atol=1e-12)  # exact initial write
    x = rng.uniform(-0.5, 2.5, n_in)
    xq = np.sign(x) * _q(np.abs(x), 0.0, 2.0, 3)
    want = np.zeros(n_out)
    for r0 in range(0, n_in, 7):
        r1 = min(r0 + 7, n_in)
        fs = (r1 - r0) * 2.0 * 1.0 * 0.5
        want += _q(xq[r0:r1] @ Wd[r0:r1], -fs, fs, 6)
    np.testing.assert_allclose(cb.matvec(x, rng), want, rtol=1e-12, atol=1e-12)
    # ideal converters: plain matrix products, tiles or not
    cb.cfg = CrossbarConfig(mapping=mapping, tile_rows=5)
    np.testing.assert_allclose(cb.matvec(x, rng), x @ Wd, atol=1e-12)
    d = rng.normal(size=n_out)
    np.testing.assert_allclose(cb.rmatvec(d, rng), Wd @ d, atol=1e-12)


def test_read_noise_in_matvec_has_expected_spread():
    rng = np.random.default_rng(2)
    dev = device_from_dict({"base": "ideal", "sigma_read": 0.1})
    cb = Crossbar(1, 1, dev, rng, CrossbarConfig(mapping="offset"), w_init=np.array([[1.0]]))
    ys = np.array([cb.matvec(np.ones(1), rng)[0] for _ in range(4000)])
    # w = 2 G/dG - 1 style offset mapping: at G = G_max, read G(1 + e) -> w = 1 + 2 e G_max / dG
    sd = 2 * 0.1 * dev.g_max / (dev.g_max - dev.g_min)
    assert ys.std() == pytest.approx(sd, rel=0.05)


def test_bidirectional_pulse_count_is_neurosim_quantisation():
    rng = np.random.default_rng(3)
    syn = make_synapses("ideal", 4, rng, mapping="offset", w_init=0.0)
    dw = np.array([0.1, -0.1, 0.015, 0.016])  # x 64 levels / range 2 -> 3.2, -3.2, 0.48, 0.512
    w, st = apply_delta(syn, dw, "bidirectional", rng)
    assert st.ltp_pulses == 3 + 0 + 1 and st.ltd_pulses == 3
    np.testing.assert_allclose(w, np.array([3, -3, 0, 1]) * 2 / 64, atol=1e-12)
    syn2 = make_synapses("ideal", 4, rng, mapping="differential", w_init=None)
    mid = 0.5 * (syn2.pos.params.g_min + syn2.pos.params.g_max)
    syn2.pos.g[:] = syn2.neg.g[:] = mid  # w = 0 with room to move both devices
    w2, st2 = apply_delta(syn2, dw, "bidirectional", rng)
    assert st2.ltp_pulses == st2.ltd_pulses == 3 + 3 + 1
    np.testing.assert_allclose(w2, np.array([3, -3, 0, 1]) * 2 / 64, atol=1e-12)
    w3, st3 = apply_delta(syn2, np.array([2.0, 0, 0, 0]), "ideal", rng)
    assert w3[0] == pytest.approx(1.0) and st3.pulses == 0


def test_unidirectional_never_depresses_and_refreshes():
    rng = np.random.default_rng(4)
    for c2c in (0.0, 0.03):
        dev = device_from_dict({"base": "ag_si", "sigma_c2c": c2c})
        syn = make_synapses(dev, 200, rng, mapping="differential", w_init=0.0)
        total_ref = 0.0
        for _ in range(300):
            gp, gn = syn.pos.g.copy(), syn.neg.g.copy()
            _, st = apply_delta(syn, rng.normal(0, 0.08, 200), "unidirectional", rng)
            assert st.ltd_pulses == 0
            total_ref += st.refreshes
            if st.refreshes == 0 and c2c == 0.0:  # (C2C noise may lower G on an LTP pulse)
                assert np.all(syn.pos.g >= gp) and np.all(syn.neg.g >= gn)
        assert total_ref > 0  # the saturation path was exercised
    with pytest.raises(BiolearnError):
        apply_delta(make_synapses("ideal", 2, rng, mapping="offset"), np.zeros(2),
                    "unidirectional", rng)


@pytest.mark.parametrize("device", ["ideal", "ag_si", "alox_hfo2"])
def test_refresh_preserves_weight_within_resolution(device):
    rng = np.random.default_rng(5)
    dev = device_from_dict({"base": device, "sigma_c2c": 0.0})
    n = 500
    syn = make_synapses(dev, n, rng, mapping="differential", w_init=None)
    d = dev.g_max - dev.g_min
    syn.pos.g[:] = dev.g_min + rng.uniform(0, 1, n) * d
    syn.neg.g[:] = dev.g_min + rng.uniform(0, 1, n) * d
    w0 = syn.weights()
    stats = np.zeros(5)
    ec = energy_coefficients(dev)
    for i in range(n):
        refresh_pair(i, 1, syn.pos.nominal, 1.0, syn.pos.g, syn.pos.prm, syn.pos.stuck,
                     syn.neg.g, syn.neg.prm, syn.neg.stuck, syn.pos.kind, syn.pos.lut_up,
                     syn.pos.lut_dn, ec, stats)
    w1 = syn.weights()
    assert stats[3] == n and stats[1] == 0
    assert np.all(np.minimum(syn.pos.g, syn.neg.g) == dev.g_min)  # one device of each pair reset
    # within half of the largest LTP step of the curve (the first one), in weight units
    a = float(syn.pos.prm[0, 2])
    first = curve_g(1.0, syn.pos.kind, dev.g_min, dev.g_max, a, dev.levels_ltp,
                    syn.pos.lut_up) - dev.g_min
    assert np.max(np.abs(w1 - w0)) <= 0.5 * first / d + 1e-9


@pytest.mark.parametrize("scheme,mapping", [("bidirectional", "offset"),
                                            ("bidirectional", "differential"),
                                            ("unidirectional", "differential")])
def test_no_pulse_bound_is_the_zero_pulse_threshold(scheme, mapping):
    # bidirectional: round(|dW| P / 2) = 0 iff |dW| < 1/P; unidirectional: round(|dW| P) = 0
    # iff |dW| < 1/(2P) (w_max = 1, P = 97 LTP / 100 LTD levels of Ag:a-Si)
    from biolearn.hardware.update import SCHEMES, no_pulse_bound

    dev = device_from_dict({"base": "ag_si", "sigma_c2c": 0.0})
    rng = np.random.default_rng(0)
    syn = make_synapses(dev, 4, rng, mapping=mapping, w_init=0.0)
    thr = no_pulse_bound(SCHEMES[scheme], syn.pos.nominal, 1.0)
    expect = 1.0 / 100 if scheme == "bidirectional" else 0.5 / 97
    assert thr == pytest.approx(expect, rel=1e-9)
    below = np.array([thr * 0.999, -thr * 0.999, 0.0, thr * 0.5])
    _, st = apply_delta(syn, below, scheme, rng)
    assert st.pulses == 0
    # just above the bound at least one pulse is written; count = NeuroSim's round-half-up of
    # |dW| / (W_max - W_min) * P_branch per written device (closed form)
    above = np.array([thr * 1.001, -thr * 1.001, 0.0, 0.0])
    _, st = apply_delta(syn, above, scheme, rng)

    def r(v):
        return np.floor(v + 0.5)

    if scheme == "unidirectional":
        expect_pulses = 2 * r(thr * 1.001 * 97)
    elif mapping == "offset":
        expect_pulses = r(thr * 1.001 / 2 * 97) + r(thr * 1.001 / 2 * 100)
    else:  # G+ and G- both written, LTP on one and LTD on the other
        expect_pulses = 2 * (r(thr * 1.001 / 2 * 97) + r(thr * 1.001 / 2 * 100))
    assert st.pulses == expect_pulses >= 1
