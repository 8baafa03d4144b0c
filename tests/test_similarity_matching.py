"""Similarity-matching networks (:mod:`biolearn.rules.similarity_matching`, Pehlevan, Sengupta &
Chklovskii 2018) against the eigendecomposition of the exact input covariance.
"""

from __future__ import annotations

import numpy as np
import pytest

from biolearn.data.synthetic import spiked_covariance
from biolearn.rules.similarity_matching import (
    SimilarityMatching,
    similarity_matching,
    subspace_error,
)


def test_subspace_error_closed_form():
    rng = np.random.default_rng(0)
    u, _ = np.linalg.qr(rng.standard_normal((20, 3)))
    assert subspace_error(rng.standard_normal((3, 3)) @ u.T, u) == pytest.approx(0, abs=1e-12)
    v = np.linalg.qr(np.concatenate([u, rng.standard_normal((20, 3))], axis=1))[0][:, 3:]
    assert subspace_error(v.T, u) == pytest.approx(2.0)


def test_psp_converges_to_principal_subspace():
    rng = np.random.default_rng(0)
    x, u, c = spiked_covariance(6000, 200, 20, rng)
    u_np = np.linalg.eigh(c)[1][:, ::-1][:, :20]        # eigendecomposition reference
    r = similarity_matching(x, 20, rng, SimilarityMatching(whiten=False), u=u_np,
                            n_checkpoints=12)
    assert r.subspace_error[0] > 1.0
    assert r.subspace_error[-1] < 1e-2
    assert np.all(np.diff(r.subspace_error[-6:]) < 0.05)   # decreasing at the end
    f = r.filters
    np.testing.assert_allclose(f @ f.T, np.eye(20), atol=0.05)   # orthonormal filters
    assert subspace_error(f, u) < 1e-2


def test_psw_whitens_outputs():
    rng = np.random.default_rng(1)
    x, u, c = spiked_covariance(20000, 100, 10, rng)
    r = similarity_matching(x, 10, rng, SimilarityMatching(whiten=True), u=u, c=c,
                            n_checkpoints=8)
    f = r.filters
    out_cov = f @ c @ f.T
    np.testing.assert_allclose(out_cov, np.eye(10), atol=0.1)
    assert r.whitening_error[-1] < 0.1 < r.whitening_error[0]
    assert r.subspace_error[-1] < 1e-2
