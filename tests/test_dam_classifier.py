"""Krotov & Hopfield 2016 DAM classifier (torch path) and the dense Hebbian MNIST recipe."""

from __future__ import annotations

import numpy as np
import pytest
from mnist_data import mnist_root as _mnist_root


def _mnist(n_train: int, n_test: int):
    root = _mnist_root()
    if root is None:
        pytest.skip("full MNIST copy not found (set BIOLEARN_DATA)")
    from biolearn.data.mnist import load_mnist

    return load_mnist(root, "mnist", n_train, n_test, download=False, quiet=True)


def test_analytic_gradient_matches_autograd():
    torch = pytest.importorskip("torch")
    from biolearn.memory.dam_classifier import kh_ascent_direction, kh_outputs

    g = torch.Generator().manual_seed(0)
    K, N, B, n, m, T = 7, 12, 9, 4, 2, 6.0
    W = (0.5 * torch.randn((K, N + 10), generator=g, dtype=torch.float64)).requires_grad_()
    v = 2 * torch.rand((B, N), generator=g, dtype=torch.float64) - 1
    y = torch.randint(0, 10, (B,), generator=g)
    t = -torch.ones((B, 10), dtype=torch.float64)
    t[torch.arange(B), y] = 1.0
    c = kh_outputs(W, v, n, T)
    loss = ((c - t) ** (2 * m)).sum()
    loss.backward()
    G, c2 = kh_ascent_direction(W.detach(), v, t, n, m, T)
    assert torch.allclose(c, c2)
    # G = −∂L/∂W up to the positive factor 2m·n/T (β F = (relu/T)^n)
    assert torch.allclose(G * (2 * m * n / T), -W.grad, rtol=1e-10, atol=1e-12)


def test_outputs_match_eq9_with_beta():
    torch = pytest.importorskip("torch")
    from biolearn.memory.dam_classifier import kh_outputs

    rng = np.random.default_rng(1)
    K, N, n, T = 5, 8, 3, 4.0
    W = rng.normal(0, 0.5, (K, N + 10))
    v = rng.uniform(-1, 1, (3, N))
    c = kh_outputs(torch.as_tensor(W), torch.as_tensor(v), n, T).numpy()
    beta = 1.0 / T**n
    for b in range(3):
        uu = np.concatenate([v[b], -np.ones(10)])
        for a in range(10):
            vv = uu.copy()
            vv[N + a] = 1.0
            s = beta * np.sum(np.maximum(W @ vv, 0) ** n - np.maximum(W @ uu, 0) ** n)
            assert c[b, a] == pytest.approx(np.tanh(s), rel=1e-10)


def test_logistic_baseline_learns():
    from biolearn.models.dam_mnist import logistic_baseline

    rng = np.random.default_rng(2)
    X = rng.normal(size=(400, 5))
    y = (X[:, 0] > 0).astype(np.int64)
    assert logistic_baseline(X[:300], y[:300], X[300:], y[300:]) > 0.9


def test_dense_hebbian_mnist_recall_close_to_nearest_class_mean():
    from biolearn.memory.dam import recall_async
    from biolearn.models.dense_hebbian_mnist import binarise, class_means, shape_patterns

    xtr, ytr, xte, yte = _mnist(10000, 500)
    Xtr, Xte = binarise(xtr, 127), binarise(xte, 127)
    means, _ = class_means(Xtr, ytr.astype(np.int64), 10, None)
    # independent baseline: nearest class mean (Euclidean)
    ncm = np.mean(((Xte[:, None] - means[None]) ** 2).sum(-1).argmin(1) == yte)
    pats = shape_patterns(means, "unit")
    fin, _ = recall_async(pats, Xte, "poly", 160)
    acc = np.mean((fin @ pats.T).argmax(1) == yte)
    assert acc > 0.7 and acc > ncm - 0.05, (acc, ncm)


def test_integer_power_by_squaring_matches_pow():
    torch = pytest.importorskip("torch")
    from biolearn.memory.dam_classifier import _powi

    x = torch.linspace(0.0, 1.7, 101, dtype=torch.float64)
    for e in (1, 2, 3, 19, 20, 29, 64):
        assert torch.allclose(_powi(x, e), x**e, rtol=1e-13, atol=0.0)


def test_float32_gradient_agrees_with_float64():
    """The float32 path (used by the configs) gives the float64 ascent direction to ~1e-5."""
    torch = pytest.importorskip("torch")
    from biolearn.memory.dam_classifier import kh_ascent_direction

    g = torch.Generator().manual_seed(3)
    W = -0.3 + 0.3 * torch.randn((50, 794), generator=g, dtype=torch.float64)
    v = 2 * torch.rand((200, 784), generator=g, dtype=torch.float64) - 1
    t = -torch.ones((200, 10), dtype=torch.float64)
    t[torch.arange(200), torch.randint(0, 10, (200,), generator=g)] = 1.0
    G64, _ = kh_ascent_direction(W, v, t, 20, 30, 540.0)
    G32, _ = kh_ascent_direction(W.float(), v.float(), t.float(), 20, 30, 540.0)
    assert float((G32.double() - G64).abs().max() / G64.abs().max()) < 1e-5


def test_regime_measures_on_constructed_memories():
    """Closed case: one-hot label weights → every memory votes for exactly one class; an image
    equal to one memory is decided by that memory alone at large n."""
    from biolearn.models.dam_sweep import regime_measures

    rng = np.random.default_rng(4)
    K, N = 20, 30
    W = np.zeros((K, N + 10))
    W[:, :N] = rng.choice([-1.0, 1.0], (K, N)) * 0.5
    W[:, N:] = -1.0
    W[np.arange(K), N + np.arange(K) % 10] = 1.0
    x = W[:5, :N] * 2.0                                  # each image equals one memory
    pred = np.arange(5) % 10
    big = regime_measures(W, x, pred, 30)
    assert big["fraction_memories_one_class"] == 1.0
    assert big["mean_classes_per_memory"] == 1.0
    assert big["fraction_images_one_dominant_memory"] == 1.0


@pytest.mark.slow
def test_short_dam_run_beats_logistic_regression_on_subset():
    """A short DAM run (10 epochs, 20 000 MNIST images) beats logistic regression on the same
    subset."""
    pytest.importorskip("torch")
    from biolearn.memory.dam_classifier import KHSchedule, pixels_to_pm1, predict_kh, train_kh
    from biolearn.models.dam_mnist import logistic_baseline

    xtr, ytr, xte, yte = _mnist(20000, 2000)
    X, Xt = pixels_to_pm1(xtr), pixels_to_pm1(xte)
    ytr, yte = ytr.astype(np.int64), yte.astype(np.int64)
    base = logistic_baseline((X + 1) / 2, ytr, (Xt + 1) / 2, yte)
    s = KHSchedule(n=20, m=30, epochs=10, batch=100, T_start=540.0, T_end=540.0,
                   dtype="float32")
    W, _ = train_kh(X, ytr, s, seed=0, threads=1)
    acc = float(np.mean(predict_kh(W, Xt, 20, 540.0) == yte))
    assert acc > base, (acc, base)
