"""Synthetic data of :mod:`biolearn.data.synthetic`: the bars problem (Földiák 1990) and its
score, Gaussian data of a given covariance, the spiked-covariance model; against closed forms.
"""

from __future__ import annotations

import numpy as np
import pytest

from biolearn.data.synthetic import (
    bars,
    bars_with_unique_detector,
    gaussian_samples,
    random_covariance,
    score_bars,
    single_bars,
    spiked_covariance,
)
from biolearn.errors import BiolearnError


def test_bars_generator_statistics():
    rng = np.random.default_rng(3)
    x, present = bars(40000, rng)
    assert x.shape == (40000, 64) and present.shape == (40000, 16)
    assert present.mean() == pytest.approx(1 / 8, abs=0.005)
    # a pixel is on unless both its row and its column bar are off: 1 − (7/8)²
    assert x.mean() == pytest.approx(1 - (7 / 8) ** 2, abs=0.005)
    sb = single_bars()
    assert np.all(sb.sum(axis=1) == 8)
    assert np.all(sb[:8].reshape(8, 8, 8).sum(axis=2).max(axis=1) == 8)   # rows
    assert np.all(sb[8:].reshape(8, 8, 8).sum(axis=1).max(axis=1) == 8)   # columns
    with pytest.raises(BiolearnError):
        bars(1, rng, p_bar=1.5)


def test_score_bars_matches_units_to_bars():
    resp = np.eye(4, dtype=bool)[[2, 0, 3, 1]]          # unit i detects bar [2, 0, 3, 1][i]
    s = score_bars(resp)
    assert s.one_to_one and s.n_detectors == 4 and s.n_bars_covered == 4
    np.testing.assert_array_equal(s.unit_bar, [2, 0, 3, 1])
    assert bars_with_unique_detector(s) == 4
    resp[1] = [True, True, False, False]                 # unit 1 now answers two bars
    resp[3] = [False, False, True, False]                # unit 3 duplicates unit 0's bar 2
    s = score_bars(resp)
    assert not s.one_to_one and s.n_detectors == 3 and s.n_bars_covered == 2
    np.testing.assert_array_equal(s.unit_bar, [2, -1, 3, 2])
    assert bars_with_unique_detector(s) == 1             # bar 3 only; bar 2 has two detectors


def test_gaussian_samples_have_the_requested_covariance():
    rng = np.random.default_rng(0)
    lam = np.array([4.0, 1.0, 0.25])
    c, u = random_covariance(lam, rng)
    np.testing.assert_allclose(u.T @ u, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(c @ u, u * lam, atol=1e-12)        # eigenpairs as requested
    x = gaussian_samples(c, 200000, rng)
    np.testing.assert_allclose(np.cov(x.T), c, atol=0.05)


def test_spiked_covariance_spectrum():
    rng = np.random.default_rng(1)
    x, u, c = spiked_covariance(100, 30, 4, rng, top=(2.0, 0.5), noise_var=0.01)
    assert x.shape == (100, 30) and u.shape == (30, 4)
    np.testing.assert_allclose(np.linalg.eigvalsh(c)[::-1][:5], [2.01, 1.51, 1.01, 0.51, 0.01],
                               atol=1e-12)
    with pytest.raises(BiolearnError):
        spiked_covariance(10, 3, 4, rng)
