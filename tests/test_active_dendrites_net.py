"""Active-dendrites network (Iyer et al. 2022): gating formula, k-WTA, prototypes, forgetting."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from biolearn.errors import BiolearnError  # noqa: E402
from biolearn.memory import active_dendrites_net as adn  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _sig(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


# ----------------------------------------------------------------------------- gating
def test_gate_equals_formula_on_hand_made_tensors():
    # 2 units, 3 segments, context of 2 numbers; d_j = u_j . c worked out by hand below
    u = torch.tensor([[[1.0, 0.0], [0.0, 2.0], [-3.0, -1.0]],
                      [[0.5, 0.5], [-0.5, 0.0], [0.0, 0.25]]])
    c = torch.tensor([[1.0, 1.0]])
    d = torch.einsum("nsc,bc->bns", u, c)
    assert d.tolist() == [[[1.0, 2.0, -4.0], [1.0, -0.5, 0.25]]]
    y = torch.tensor([[2.0, -1.0], [0.5, 3.0]])  # batch of 2 drives, context broadcast
    # absmax: unit 0 -> -4 (sign kept), unit 1 -> 1; max: unit 0 -> 2, unit 1 -> 1
    g_abs, j_abs = adn.dendritic_gate(y, d, "absmax")
    g_max, j_max = adn.dendritic_gate(y, d, "max")
    want_abs = [[2.0 * _sig(-4.0), -1.0 * _sig(1.0)], [0.5 * _sig(-4.0), 3.0 * _sig(1.0)]]
    want_max = [[2.0 * _sig(2.0), -1.0 * _sig(1.0)], [0.5 * _sig(2.0), 3.0 * _sig(1.0)]]
    np.testing.assert_allclose(g_abs.numpy(), want_abs, rtol=1e-6)
    np.testing.assert_allclose(g_max.numpy(), want_max, rtol=1e-6)
    assert j_abs.tolist() == [[2, 0]] and j_max.tolist() == [[1, 0]]


def test_dendritic_layer_matches_numpy_formula():
    gen = torch.Generator().manual_seed(3)
    layer = adn.DendriticLayer(6, 5, 4, 3, ff_sparsity=0.5, generator=gen)
    x = torch.randn(7, 6, generator=gen)
    c = torch.randn(7, 3, generator=gen)  # one context per sample
    out = layer(x, c).detach().numpy()
    w = (layer.ff.weight * layer.ff.mask).detach().numpy()
    b = layer.ff.bias.detach().numpy()
    u = layer.segments.detach().numpy()
    xn, cn = x.numpy().astype(np.float64), c.numpy().astype(np.float64)
    y = xn @ w.T + b
    d = np.einsum("nsc,bc->bns", u, cn)
    j = np.abs(d).argmax(-1)
    dsel = np.take_along_axis(d, j[..., None], -1)[..., 0]
    np.testing.assert_allclose(out, y / (1 + np.exp(-dsel)), rtol=1e-5, atol=1e-6)
    # exactly half of each unit's 6 feed-forward weights are fixed at zero
    assert (layer.ff.mask.sum(1) == 3).all()


def test_gradient_reaches_only_the_chosen_segment():
    layer = adn.DendriticLayer(4, 3, 5, 6, ff_sparsity=0.0,
                               generator=torch.Generator().manual_seed(0))
    c = torch.randn(1, 6)
    layer(torch.randn(8, 4), c).sum().backward()
    nz = (layer.segments.grad.abs().sum(-1) > 0).sum(-1)
    assert nz.tolist() == [1, 1, 1]


def test_unknown_selection_is_a_user_error():
    with pytest.raises(BiolearnError):
        adn.dendritic_gate(torch.ones(1, 2), torch.ones(1, 2, 3), "mean")


# ----------------------------------------------------------------------------- k-WTA
@pytest.mark.parametrize("k", [0, 1, 5, 32])
def test_kwta_keeps_exactly_k_units(k):
    x = torch.randn(20, 32, generator=torch.Generator().manual_seed(k))
    m = adn.kwta_mask(x, k)
    assert (m.sum(1) == k).all()
    out = adn.kwta(x, k)
    kept = out != 0
    assert (kept.sum(1) == k).all()
    # the kept units are the k largest, with their own values
    for row, orow in zip(x, out, strict=True):
        top = set(torch.topk(row, k).indices.tolist())
        assert set(torch.nonzero(orow).flatten().tolist()) == top
        assert torch.equal(orow[list(top)], row[list(top)])


def test_kwta_exactly_k_with_ties():
    m = adn.kwta_mask(torch.ones(3, 10), 4)
    assert m.sum(1).tolist() == [4.0, 4.0, 4.0]


def test_kwta_boost_changes_winners():
    x = torch.tensor([[1.0, 0.9, 0.1]])
    assert adn.kwta_mask(x, 1).tolist() == [[1.0, 0.0, 0.0]]
    boost = adn.boost_factors(torch.tensor([0.9, 0.0, 0.0]), 1 / 3, 2.0)
    # exp(2 (1/3 - 0.9)) * 1.0 = 0.32 < exp(2/3) * 0.9 = 1.75
    assert adn.kwta_mask(x, 1, boost).tolist() == [[0.0, 1.0, 0.0]]


def test_kwinners_module_k_and_duty_cycle():
    kw = adn.KWinners(40, fraction=0.05, boost_strength=1.0, duty_cycle_period=100)
    assert kw.k == 2
    kw.train()
    out = kw(torch.randn(10, 40))
    assert ((out != 0).sum(1) == 2).all()
    # running mean of activity over the batch: 10 samples x 2 winners spread over 40 units
    assert math.isclose(float(kw.duty_cycle.sum()), 2.0, rel_tol=1e-6)


# ----------------------------------------------------------------------------- prototypes
def test_prototypes_and_nearest():
    x = np.array([[0.0, 0.0], [2.0, 0.0], [10.0, 10.0], [12.0, 10.0]], dtype=np.float32)
    p = np.stack([adn.task_prototype(x[:2]), adn.task_prototype(x[2:])])
    np.testing.assert_allclose(p, [[1.0, 0.0], [11.0, 10.0]])
    assert adn.nearest_prototype(np.array([[0.5, 1.0], [9.0, 9.0]]), p).tolist() == [0, 1]


def test_permutations_first_is_identity_and_permute_columns():
    rng = np.random.default_rng(0)
    perms = adn.permutations(3, 5, rng)
    assert perms[0].tolist() == [0, 1, 2, 3, 4]
    assert all(sorted(p.tolist()) == list(range(5)) for p in perms)
    x = np.arange(10, dtype=np.float32).reshape(2, 5)
    tasks = adn.permuted_tasks(x, np.array([0, 1]), x, np.array([0, 1]), perms)
    np.testing.assert_array_equal(tasks[2].x_train, x[:, perms[2]])


def test_normalize_mnist():
    img = np.zeros((1, 28, 28), np.uint8)
    img[0, 0, 0] = 255
    z = adn.normalize_mnist(img)
    assert z.shape == (1, 784)
    assert math.isclose(z[0, 0], (1 - adn.MNIST_MEAN) / adn.MNIST_STD, rel_tol=1e-6)
    assert math.isclose(z[0, 1], -adn.MNIST_MEAN / adn.MNIST_STD, rel_tol=1e-6)


# ----------------------------------------------------------------------------- forgetting
def _two_conflicting_tasks(seed: int = 0, dim: int = 32, classes: int = 4):
    """Task B: the inputs of task A plus a fixed offset pattern, labels rotated by one.

    Without replay an unconstrained network trained on B maps A's nearly identical inputs to
    B's labels, so it must forget A (close to 0 % on A); the offset separates the prototypes.
    """
    rng = np.random.default_rng(seed)
    tmpl = (rng.random((classes, dim)) < 0.3).astype(np.float32)

    def sample(m):
        y = rng.integers(0, classes, m)
        return (tmpl[y] + 0.3 * rng.standard_normal((m, dim))).astype(np.float32), y

    (xa, ya), (xt, yt) = sample(512), sample(256)
    shift = (rng.random(dim) < 0.25).astype(np.float32)
    return [adn.Task(xa, ya, xt, yt),
            adn.Task(xa + shift, (ya + 1) % classes, xt + shift, (yt + 1) % classes)]


def test_dendritic_net_forgets_less_than_mlp():
    tasks = _two_conflicting_tasks()
    dn = adn.ActiveDendritesNet(32, [128, 128], 4, n_segments=2, dim_context=32,
                                kw_fraction=0.1, seed=0)
    mlp = adn.MLP(32, [128, 128], 4, seed=0)
    kw = dict(epochs=5, lr=1e-3, batch_size=32, seed=0)
    rd = adn.train_continual(dn, tasks, **kw)
    rm = adn.train_continual(mlp, tasks, **kw)
    # both learn each task when it is presented
    assert rd.accuracy[0, 0] > 0.9 and rm.accuracy[0, 0] > 0.9
    assert rd.accuracy[1, 1] > 0.85 and rm.accuracy[1, 1] > 0.9
    # the prototypes identify the task of (almost) every test input
    assert rd.task_inference[-1] > 0.95
    # the MLP overwrites task A; the context-gated network keeps most of it
    assert rm.accuracy[1, 0] < 0.25
    assert rd.accuracy[1, 0] > rm.accuracy[1, 0] + 0.4
    assert rd.forgetting < rm.forgetting - 0.4
    assert np.isnan(rd.accuracy[0, 1])


def test_oracle_context_and_bad_mode():
    tasks = _two_conflicting_tasks(1)
    dn = adn.ActiveDendritesNet(32, [64, 64], 4, n_segments=2, dim_context=32,
                                kw_fraction=0.1, seed=1)
    r = adn.train_continual(dn, tasks[:1], epochs=1, batch_size=64, test_context="oracle")
    assert r.accuracy.shape == (1, 1) and r.task_inference[0] == 1.0 and r.forgetting == 0.0
    with pytest.raises(BiolearnError):
        adn.train_continual(dn, tasks, test_context="label")
