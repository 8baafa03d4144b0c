"""Stochastic pulse-coincidence update (Gokmen & Vlasov, Front. Neurosci. 10:333, 2016).

Closed forms: a device (i, j) receives n_ij = sum over BL slots of A_i B_j pulses with A_i ~
Bernoulli(p_i), B_j ~ Bernoulli(q_j) independent, so n_ij ~ Binomial(BL, p_i q_j) and on a linear
device E[dW_ij] = dw_min BL p_i q_j = lr x_i d_j (while p, q < 1).
"""

from __future__ import annotations

import numpy as np
import pytest

from biolearn.errors import BiolearnError
from biolearn.hardware.presets import device_from_dict
from biolearn.hardware.synapses import make_synapses
from biolearn.hardware.update import apply_delta, apply_outer, coincidence_probabilities

LEVELS = 1000  # linear, noise-free: one pulse = dw_min = 2 / LEVELS, far from the bounds
DEV = device_from_dict({"base": "ideal", "levels": LEVELS})
DW_MIN = 2.0 / LEVELS
X = np.array([0.5, 0.25, 0.0, 0.125])
D = np.array([0.2, -0.1, 0.04])
LR = 0.04  # m = LR / (BL dw_min) = 2: no probability reaches 1, with or without management
BL = 10
DEV_NOMINAL = make_synapses(DEV, 1, np.random.default_rng(0)).pos.nominal


def _mid(syn):
    """Both devices of every pair at mid-range (w = 0), so LTD pulses are not clipped."""
    mid = 0.5 * (DEV_NOMINAL[0] + DEV_NOMINAL[1])
    syn.pos.g[:] = mid
    if syn.neg is not None:
        syn.neg.g[:] = mid
    return syn


def _trials(mapping: str, um: bool, n: int = 3000) -> np.ndarray:
    rng = np.random.default_rng(1)
    base = _mid(make_synapses(DEV, X.size * D.size, rng, mapping=mapping, w_init=0.0))
    out = np.empty((n, X.size * D.size))
    for t in range(n):
        syn = base.copy()
        out[t], _ = apply_outer(syn, X, D, LR, rng, bl=BL, update_management=um)
    return out - base.weights()


@pytest.mark.parametrize("um", [True, False])
def test_probabilities_give_the_outer_product(um):
    p, q = coincidence_probabilities(X, D, LR, BL, um, DEV_NOMINAL, 1.0)
    np.testing.assert_allclose(BL * DW_MIN * np.outer(p, q), LR * np.abs(np.outer(X, D)),
                               rtol=1e-12)
    if um:  # update management: the largest row and column probabilities are equal
        assert p.max() == pytest.approx(q.max())


@pytest.mark.parametrize("mapping", ["offset", "differential"])
@pytest.mark.parametrize("um", [True, False])
def test_expected_update_is_lr_x_d_with_binomial_spread(mapping, um):
    dw = _trials(mapping, um)
    counts = dw / DW_MIN  # signed coincidence counts
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-6)  # whole pulses only
    p, q = coincidence_probabilities(X, D, LR, BL, um, DEV_NOMINAL, 1.0)
    pq = np.outer(p, q).ravel()
    mean = BL * pq
    var = BL * pq * (1 - pq)
    sign = np.sign(np.outer(X, D)).ravel()
    n = dw.shape[0]
    se = np.sqrt(var / n)
    got = (counts * np.where(sign == 0, 1, sign)).mean(0)
    assert np.all(np.abs(got - mean) <= 5 * se + 1e-12)
    # E[dW] = lr x d within the same tolerance, in weight units
    assert np.all(np.abs(dw.mean(0) - LR * np.outer(X, D).ravel()) <= 5 * se * DW_MIN + 1e-12)
    live = var > 0
    np.testing.assert_allclose(counts.var(0)[live], var[live], rtol=0.15)
    assert np.all(np.abs(counts[:, ~live]) < 1e-6)  # zero input row: no pulse ever


def test_saturated_probabilities_give_bl_pulses_each():
    rng = np.random.default_rng(0)
    syn = _mid(make_synapses(DEV, 6, rng, mapping="differential", w_init=0.0))
    x = np.array([1.0, 0.5])
    d = np.array([1.0, -1.0, 0.5])
    w, st = apply_outer(syn, x, d, 1e3, rng, bl=BL)  # p = q = 1 for every row and column
    np.testing.assert_allclose(w, BL * DW_MIN * np.sign(np.outer(x, d)).ravel(), atol=1e-12)
    # differential pair: each coincidence is one LTP pulse on one device and one LTD on the other
    assert st.ltp_pulses == st.ltd_pulses == 6 * BL


def test_apply_delta_rejects_the_outer_product_scheme():
    syn = make_synapses(DEV, 3, np.random.default_rng(0))
    with pytest.raises(BiolearnError):
        apply_delta(syn, np.ones(3) * 0.1, "coincidence")
    with pytest.raises(BiolearnError):
        apply_outer(syn, np.ones(3), np.ones(1), 0.1, bl=65)
