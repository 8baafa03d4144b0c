"""Curl descent (:mod:`biolearn.rules.curl_descent`, Ninou, Kadmon & Cayco-Gajic 2025): with
``D = I`` it is gradient descent (checked against finite differences); a few flipped neurons still
converge, all flipped do not.
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
