"""Hebbian / anti-Hebbian family: Oja, GHA, BCM, Földiák, similarity matching, curl descent.

Each test compares against a closed form or an independent computation (numpy eigendecomposition,
finite differences), never against stored outputs of these implementations.
"""

from __future__ import annotations

import numpy as np
import pytest

from biolearn.errors import BiolearnError
from biolearn.rules.curl_descent import (
    curl_train,
    flip_signs,
    init_student,
    loss_and_grads,
    make_task,
)
from biolearn.rules.foldiak import bars, foldiak_present, score_bars, single_bars, train_bars
from biolearn.rules.hebbian import bcm, gaussian_samples, gha, oja, random_covariance
from biolearn.rules.similarity_matching import (
    similarity_matching,
    spiked_covariance,
    subspace_error,
)

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
    w, norms = oja(x, rng.normal(0, 0.1, x.shape[1]), 0.001, norm_every=1000)
    assert abs(w @ u[:, 0]) / np.linalg.norm(w) > 0.99
    assert abs(np.linalg.norm(w) - 1.0) < 0.02
    assert norms.size == 20 and abs(norms[-1] - np.linalg.norm(w)) < 1e-12


def test_oja_without_decay_term_is_not_normalised(pca_data):
    """Sanity: the rule must do something; one pass at η = 0 leaves w unchanged."""
    x, _, rng = pca_data
    w0 = rng.normal(0, 0.1, x.shape[1])
    w, _ = oja(x[:100], w0, 0.0)
    np.testing.assert_array_equal(w, w0)


def test_gha_recovers_top_k_in_order(pca_data):
    x, u, rng = pca_data
    k = 4
    w = gha(x, rng.normal(0, 0.1, (k, x.shape[1])), 0.001)
    overlap = np.abs(w @ u[:, :k]) / np.linalg.norm(w, axis=1)[:, None]
    assert np.all(np.diag(overlap) > 0.99), overlap
    off = overlap[~np.eye(k, dtype=bool)]
    assert off.max() < 0.15
    np.testing.assert_allclose(np.linalg.norm(w, axis=1), 1.0, atol=0.02)


def test_gha_shape_error():
    with pytest.raises(BiolearnError):
        gha(np.zeros((5, 3)), np.zeros(3), 0.1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bcm_selective_with_threshold_tracking_mean_y2(seed):
    """Two equiprobable independent patterns → response K = 2 to one, 0 to the other,
    θ_M = ⟨y²⟩ = 2 (closed form of the BCM fixed point)."""
    rng = np.random.default_rng(seed)
    pats = rng.random((2, 8))
    pats /= np.linalg.norm(pats, axis=1, keepdims=True)
    idx = rng.integers(0, 2, 50000)
    r = bcm(pats[idx], rng.uniform(0.1, 0.3, 8), 0.005, 20.0)
    resp = np.maximum(pats @ r.w, 0.0)
    assert resp.max() == pytest.approx(2.0, abs=0.15)
    assert resp.min() < 0.05
    tail = slice(40000, None)
    assert r.theta_trace[tail].mean() == pytest.approx(np.mean(r.y[tail] ** 2), rel=0.02)
    assert r.theta_trace[tail].mean() == pytest.approx(2.0, abs=0.15)


# ---------------------------------------------------------------- Földiák
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


def test_foldiak_learns_single_bar_detectors():
    rng = np.random.default_rng(0)
    net, y_train = train_bars(20000, rng)
    score = score_bars(net)
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
    from biolearn.rules.foldiak import FoldiakNet

    net = FoldiakNet.create(64, 16, np.random.default_rng(0))
    assert not score_bars(net).one_to_one


# ---------------------------------------------------------------- similarity matching
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
    r = similarity_matching(x, 20, rng, u=u_np, whiten=False, n_checkpoints=12)
    assert r.subspace_error[0] > 1.0
    assert r.subspace_error[-1] < 1e-2
    assert np.all(np.diff(r.subspace_error[-6:]) < 0.05)   # decreasing at the end
    f = r.filters
    np.testing.assert_allclose(f @ f.T, np.eye(20), atol=0.05)   # orthonormal filters
    assert subspace_error(f, u) < 1e-2


def test_psw_whitens_outputs():
    rng = np.random.default_rng(1)
    x, u, c = spiked_covariance(20000, 100, 10, rng)
    r = similarity_matching(x, 10, rng, u=u, c=c, whiten=True, n_checkpoints=8)
    f = r.filters
    out_cov = f @ c @ f.T
    np.testing.assert_allclose(out_cov, np.eye(10), atol=0.1)
    assert r.whitening_error[-1] < 0.1 < r.whitening_error[0]
    assert r.subspace_error[-1] < 1e-2


# ---------------------------------------------------------------- curl descent
@pytest.mark.parametrize("act", ["linear", "tanh", "relu"])
def test_curl_identity_is_gradient_descent(act):
    rng = np.random.default_rng(0)
    task = make_task(7, 5, 3, 11, rng, activation=act)
    w1, w2 = init_student(task, 5, rng, scale=1.0)
    _, g1, g2 = loss_and_grads(task, w1, w2)
    eps = 1e-6
    fd1 = np.zeros_like(w1)
    for i in np.ndindex(w1.shape):
        a, b = w1.copy(), w1.copy()
        a[i] += eps
        b[i] -= eps
        fd1[i] = (loss_and_grads(task, a, w2)[0] - loss_and_grads(task, b, w2)[0]) / (2 * eps)
    fd2 = np.zeros_like(w2)
    for i in np.ndindex(w2.shape):
        a, b = w2.copy(), w2.copy()
        a[i] += eps
        b[i] -= eps
        fd2[i] = (loss_and_grads(task, w1, a)[0] - loss_and_grads(task, w1, b)[0]) / (2 * eps)
    np.testing.assert_allclose(g1, fd1, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(g2, fd2, rtol=1e-5, atol=1e-8)
    lr = 0.05
    r = curl_train(task, w1, w2, np.ones(5), np.ones(3), lr, 1, tol=0.0)
    np.testing.assert_allclose(r.w1, w1 - lr * fd1, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(r.w2, w2 - lr * fd2, rtol=1e-7, atol=1e-10)
    # one flipped hidden neuron: its row moves up the gradient, the others down
    d1 = np.ones(5)
    d1[2] = -1
    r = curl_train(task, w1, w2, d1, np.ones(3), lr, 1, tol=0.0)
    np.testing.assert_allclose(r.w1[2], w1[2] + lr * fd1[2], rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(r.w1[0], w1[0] - lr * fd1[0], rtol=1e-7, atol=1e-10)


@pytest.fixture(scope="module")
def linear_task():
    rng = np.random.default_rng(0)
    task = make_task(60, 8, 4, 100, rng, activation="linear")
    w1, w2 = init_student(task, 8, rng)
    l0 = loss_and_grads(task, w1, w2)[0]
    gd = curl_train(task, w1, w2, np.ones(8), np.ones(4), 0.1, 1500, tol=1e-3 * l0)
    return task, w1, w2, l0, gd, rng


def test_gd_converges_on_linear_teacher(linear_task):
    task, w1, w2, l0, gd, _ = linear_task
    assert gd.time_to_converge > 0 and gd.final_loss < 1e-5 * l0
    # the student reproduces the teacher's linear map
    np.testing.assert_allclose(gd.w2 @ gd.w1, task.teacher_w2 @ task.teacher_w1, atol=1e-2)


def test_small_flipped_fraction_still_converges(linear_task):
    task, w1, w2, l0, gd, rng = linear_task
    r = curl_train(task, w1, w2, flip_signs(8, 1, rng), np.ones(4), 0.1, 1500, tol=1e-3 * l0)
    assert not r.diverged and r.time_to_converge > 0
    assert r.final_loss < 1e-4 * l0


def test_large_flipped_fraction_fails(linear_task):
    task, w1, w2, l0, gd, rng = linear_task
    r = curl_train(task, w1, w2, -np.ones(8), np.ones(4), 0.1, 1500, tol=1e-3 * l0)
    assert r.diverged or r.final_loss > 1e3 * max(gd.final_loss, 1e-12 * l0)
    assert r.time_to_converge == -1


def test_flip_signs_counts():
    d = flip_signs(10, 3, np.random.default_rng(0))
    assert (d == -1).sum() == 3 and (d == 1).sum() == 7
    with pytest.raises(BiolearnError):
        flip_signs(4, 5, np.random.default_rng(0))
