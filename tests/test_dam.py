"""Dense associative memories: energy descent, fixed points, Hopfield limit, capacity laws, P-spin.

References: Krotov & Hopfield 2016 (Eq. 1–2, capacity N^{n−1}/(2(2n−3)!! ln N)), Demircigil et al.
2017 (exponential capacity), Agliari et al. 2022 (dense Hebbian couplings from examples).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from biolearn.errors import BiolearnError
from biolearn.memory import dam
from biolearn.memory import dam_hebbian as dh

ENERGIES = [("poly", 2), ("poly", 3), ("poly", 4), ("rectpoly", 3), ("poly", 20), ("exp", 1)]


def _exact_energy(xi, s, kind, n):
    m = xi @ s
    if kind == "poly":
        return -np.sum(m ** n)
    if kind == "rectpoly":
        return -np.sum(np.maximum(m, 0) ** n)
    return -np.sum(np.exp(m))


@pytest.mark.parametrize("kind,n", ENERGIES)
def test_flip_rule_matches_brute_force_energy_difference(kind, n):
    # Eq. 2: σ_i ← sign[E(σ_i = −1) − E(σ_i = +1)], energies computed directly from Eq. 1
    rng = np.random.default_rng(1)
    N, K = 24, 15
    xi = dam.random_patterns(K, N, rng)
    code = dam.KINDS[kind]
    for _ in range(5):
        s = rng.choice([-1.0, 1.0], size=N)
        m = xi @ s
        for i in range(N):
            sp, sm = s.copy(), s.copy()
            sp[i], sm[i] = 1.0, -1.0
            diff = _exact_energy(xi, sm, kind, n) - _exact_energy(xi, sp, kind, n)
            d = dam._flip_drive(xi, m, i, s[i], code, n)
            if abs(diff) > 1e-9 * max(1.0, abs(_exact_energy(xi, s, kind, n))):
                assert np.sign(d) == np.sign(diff)


@pytest.mark.parametrize("kind,n", ENERGIES)
def test_energy_never_increases_under_async_updates(kind, n):
    rng = np.random.default_rng(2)
    N = 60
    K = {2: 40, 3: 400, 4: 2000, 20: 300, 1: 3000}[n]   # beyond capacity: many flips happen
    xi = dam.random_patterns(K, N, rng)
    for trial in range(3):
        cue = rng.choice([-1.0, 1.0], size=N)
        final, e = dam.energy_trace(xi, cue, kind, n, max_sweeps=10, seed=trial)
        assert np.isfinite(e).all() and len(e) > N
        scale = np.abs(e).max()
        assert np.all(np.diff(e) <= 1e-12 * scale), np.diff(e).max()
        assert e[-1] < e[0]
        assert e[-1] == pytest.approx(dam.energy(xi, final, kind, n), rel=1e-9, abs=1e-300)


def test_scaled_energy_is_positive_multiple_of_eq1():
    rng = np.random.default_rng(3)
    xi = dam.random_patterns(5, 20, rng)
    s = rng.choice([-1.0, 1.0], size=20)
    assert dam.energy(xi, s, "poly", 3, scaled=False) == pytest.approx(
        dam.energy(xi, s, "poly", 3) * 20.0 ** 3)
    assert dam.energy(xi, s, "exp", 1, scaled=False) == pytest.approx(
        dam.energy(xi, s, "exp", 1) * math.exp(20.0))


@pytest.mark.parametrize("kind,n,N,K", [("poly", 2, 200, 8), ("poly", 3, 100, 60),
                                        ("poly", 4, 40, 60), ("rectpoly", 3, 100, 60),
                                        ("exp", 1, 30, 300)])
def test_stored_patterns_are_fixed_points_below_capacity(kind, n, N, K):
    rng = np.random.default_rng(4)
    xi = dam.random_patterns(K, N, rng)
    out, sweeps = dam.recall_async(xi, xi, kind, n)
    assert np.array_equal(out, xi)
    assert np.all(sweeps == 1)                       # first sweep already makes no flip
    out_s, iters = dam.recall_sync(xi, xi, kind, n)
    assert np.array_equal(out_s, xi) and np.all(iters == 1)


def test_n2_dam_is_the_classical_hopfield_network():
    # F = x²: Eq. 2 reduces to σ ← sign(Jσ), J = Σ ξξᵀ with zero diagonal (one synchronous step)
    rng = np.random.default_rng(5)
    N, K = 101, 12
    xi = dam.random_patterns(K, N, rng)
    J = xi.T @ xi - K * np.eye(N)
    assert np.allclose(dam.hopfield_couplings(xi), J)
    states = rng.choice([-1.0, 1.0], size=(20, N))
    h = states @ J.T
    expected = np.where(h > 0, 1.0, np.where(h < 0, -1.0, states))
    got, _ = dam.recall_sync(xi, states, "poly", 2, max_iter=1)
    assert np.array_equal(got, expected)


def test_recall_from_noisy_cues_and_determinism():
    rng = np.random.default_rng(6)
    xi = dam.random_patterns(30, 100, rng)
    cues = dam.flip_bits(xi, 15, rng)
    assert np.all((cues != xi).sum(1) == 15)
    a, _ = dam.recall_async(xi, cues, "poly", 3, seed=7)
    b, _ = dam.recall_async(xi, cues, "poly", 3, seed=7)
    assert np.array_equal(a, b) and np.array_equal(a, xi)


def test_bad_arguments_raise_user_errors():
    xi = np.ones((2, 5))
    with pytest.raises(BiolearnError, match="unknown DAM energy"):
        dam.recall_async(xi, xi, "cubic", 3)
    with pytest.raises(BiolearnError, match="state length"):
        dam.recall_async(xi, np.ones(4), "poly", 3)


# ------------------------------------------------------------------------------------ capacity
def test_capacity_formula_values():
    # N/(2 ln N) for n = 2 (the classical no-error capacity); N²/(6 ln N) for n = 3
    assert dam.capacity_theory(100, 2) == pytest.approx(100 / (2 * math.log(100)))
    assert dam.capacity_theory(100, 3) == pytest.approx(100**2 / (6 * math.log(100)))
    assert dam.capacity_theory(100, 4) == pytest.approx(100**3 / (30 * math.log(100)))
    assert dam.capacity_theory_exp(20, 0.0) == pytest.approx(2 ** 10)


@pytest.mark.parametrize("n,Ns", [(2, [50, 100, 200, 400]), (3, [40, 70, 120, 200])])
def test_capacity_matches_krotov_hopfield_law(n, Ns):
    rng = np.random.default_rng(10 + n)
    K = np.array([dam.measure_capacity(N, "poly", n, noise=0.05, n_probes=48, rng=rng)
                  for N in Ns], dtype=float)
    N = np.array(Ns, dtype=float)
    ratio = K / dam.capacity_theory(N, n)
    assert np.all((ratio > 0.5) & (ratio < 2.0)), ratio
    # the law's N dependence: K ln N ∝ N^{n−1}
    slope = np.polyfit(np.log(N), np.log(K * np.log(N)), 1)[0]
    assert abs(slope - (n - 1)) < 0.3, slope
    assert np.all(np.diff(K) > 0)


def test_exponential_dam_stores_many_more_patterns_than_units():
    rng = np.random.default_rng(20)
    N, K = 30, 600                                  # K = 20 N; poly n=3 capacity at N=30 is ≈ 44
    xi = dam.random_patterns(K, N, rng)
    cues = dam.flip_bits(xi, 2, rng)
    out, _ = dam.recall_async(xi, cues, "exp", 1)
    frac = np.mean(np.all(out == xi, axis=1))
    assert frac > 0.98
    out3, _ = dam.recall_async(xi, cues, "poly", 3)
    assert np.mean(np.all(out3 == xi, axis=1)) < 0.1
    assert K > 5 * dam.capacity_theory(N, 3)


def test_exponential_capacity_grows_exponentially():
    rng = np.random.default_rng(21)
    Ns = np.array([8, 11, 14, 17])
    K = np.array([dam.measure_capacity(int(N), "exp", noise=0.0, n_probes=16, rng=rng,
                                       rel_tol=0.2) for N in Ns], dtype=float)
    # ln K linear in N with positive rate; far above the n = 3 polynomial law at the same N
    rate = np.polyfit(Ns, np.log(K), 1)[0]
    assert 0.15 < rate < 0.7, rate
    assert np.all(K > 3 * dam.capacity_theory(Ns, 3))


# ------------------------------------------------------------------------- dense Hebbian P-spin
def _outer_power(s, k):
    t = s
    for _ in range(k - 1):
        t = np.multiply.outer(t, s)
    return np.ravel(t)


@pytest.mark.parametrize("P", [2, 3, 4])
def test_p_spin_contraction_equals_explicit_tensor(P):
    rng = np.random.default_rng(30)
    K, M, N = 3, 4, 6
    ex = dh.make_examples(dam.random_patterns(K, N, rng), 0.5, M, rng)
    s = rng.choice([-1.0, 1.0], size=N)
    for pats, w in ((dh.supervised_patterns(ex), None),
                    (dh.unsupervised_patterns(ex), np.full(K * M, 1.0 / M))):
        J = np.zeros((N,) * P)
        for mu in range(len(pats)):
            t = pats[mu]
            for _ in range(P - 1):
                t = np.multiply.outer(t, pats[mu])
            J += (1.0 if w is None else w[mu]) * t
        field = J.reshape(N, -1) @ _outer_power(s, P - 1)
        assert np.allclose(dh.p_spin_field(pats, s, P, w), field)
        full = _outer_power(s, P)
        assert dh.p_spin_energy(pats, s, P, w) == pytest.approx(
            -J.ravel() @ full / math.factorial(P))


def test_examples_have_the_requested_quality():
    rng = np.random.default_rng(31)
    xi = dam.random_patterns(4, 500, rng)
    ex = dh.make_examples(xi, 0.3, 50, rng)
    agree = (ex * xi[:, None, :]).mean()
    assert agree == pytest.approx(0.3, abs=0.01)     # E[χ] = r
    with pytest.raises(BiolearnError):
        dh.make_examples(xi, 1.5, 3, rng)


@pytest.mark.parametrize("r,M", [(0.2, 25), (0.3, 11), (0.1, 101)])
def test_supervised_dense_hebbian_retrieves_archetype_as_predicted(r, M):
    # From one example, the dynamics settles in sign(η̄^μ); its overlap with the never-shown
    # archetype is 1 − 2 P(Bin(M, (1−r)/2) > M/2) (closed form), for K ≪ capacity.
    rng = np.random.default_rng(32)
    N, K, P = 3000, 3, 4
    xi = dam.random_patterns(K, N, rng)
    ex = dh.make_examples(xi, r, M, rng)
    pats = dh.supervised_patterns(ex)
    out, _ = dam.recall_async(pats, ex[:, 0, :], "poly", P)
    overlaps = (out * xi).mean(1)
    theory = dh.expected_sign_overlap(r, M)
    sd = math.sqrt((1 - theory**2) / N)
    assert np.all(np.abs(overlaps - theory) < 5 * sd + 1e-9), (overlaps, theory)
    assert np.array_equal(out, np.sign(pats))
