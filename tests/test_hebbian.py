"""Rate-based Hebbian rules of :mod:`biolearn.rules.hebbian`: Oja, Sanger's GHA, BCM.

Each test compares against a closed form or an independent computation (numpy eigendecomposition),
never against stored outputs of these implementations.
"""

from __future__ import annotations

import numpy as np
import pytest

from biolearn.data.synthetic import gaussian_samples, random_covariance
from biolearn.errors import BiolearnError
from biolearn.rules.hebbian import BCM, GHA, Oja, bcm, gha, oja

LAM = np.array([5.0, 3.0, 2.0, 1.0, 0.5, 0.4, 0.3, 0.2, 0.1, 0.1])


@pytest.fixture(scope="module")
def pca_data():
    rng = np.random.default_rng(0)
    cov, _ = random_covariance(LAM, rng)
    evals, evecs = np.linalg.eigh(cov)          # independent reference
    return gaussian_samples(cov, 20000, rng), evecs[:, ::-1], rng


# ---------------------------------------------------------------- Oja / GHA / BCM
def test_oja_top_pc_unit_norm(pca_data):
    x, u, rng = pca_data
    w, norms = oja(x, rng.normal(0, 0.1, x.shape[1]), Oja(0.001), norm_every=1000)
    assert abs(w @ u[:, 0]) / np.linalg.norm(w) > 0.99
    assert abs(np.linalg.norm(w) - 1.0) < 0.02
    assert norms.size == 20 and abs(norms[-1] - np.linalg.norm(w)) < 1e-12


def test_oja_without_decay_term_is_not_normalised(pca_data):
    """Sanity: the rule must do something; one pass at η = 0 leaves w unchanged."""
    x, _, rng = pca_data
    w0 = rng.normal(0, 0.1, x.shape[1])
    w, _ = oja(x[:100], w0, Oja(0.0))
    np.testing.assert_array_equal(w, w0)


def test_gha_recovers_top_k_in_order(pca_data):
    x, u, rng = pca_data
    k = 4
    w = gha(x, rng.normal(0, 0.1, (k, x.shape[1])), GHA(0.001))
    overlap = np.abs(w @ u[:, :k]) / np.linalg.norm(w, axis=1)[:, None]
    assert np.all(np.diag(overlap) > 0.99), overlap
    off = overlap[~np.eye(k, dtype=bool)]
    assert off.max() < 0.15
    np.testing.assert_allclose(np.linalg.norm(w, axis=1), 1.0, atol=0.02)


def test_gha_shape_error():
    with pytest.raises(BiolearnError):
        gha(np.zeros((5, 3)), np.zeros(3), GHA(0.1))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bcm_selective_with_threshold_tracking_mean_y2(seed):
    """Two equiprobable independent patterns → response K = 2 to one, 0 to the other,
    θ_M = ⟨y²⟩ = 2 (closed form of the BCM fixed point)."""
    rng = np.random.default_rng(seed)
    pats = rng.random((2, 8))
    pats /= np.linalg.norm(pats, axis=1, keepdims=True)
    idx = rng.integers(0, 2, 50000)
    r = bcm(pats[idx], rng.uniform(0.1, 0.3, 8), BCM(0.005, 20.0))
    resp = np.maximum(pats @ r.w, 0.0)
    assert resp.max() == pytest.approx(2.0, abs=0.15)
    assert resp.min() < 0.05
    tail = slice(40000, None)
    assert r.theta_trace[tail].mean() == pytest.approx(np.mean(r.y[tail] ** 2), rel=0.02)
    assert r.theta_trace[tail].mean() == pytest.approx(2.0, abs=0.15)
