"""Dendritic-segment statistics against Ahmad & Hawkins 2016 and independent implementations."""

from __future__ import annotations

import numpy as np
import pytest

from biolearn.errors import BiolearnError
from biolearn.memory import dendrites as d


# Exact values printed in Ahmad & Hawkins 2016 (see their tables / text), (n, a, s, theta) -> P_fp.
@pytest.mark.parametrize(
    "n,a,s,theta,printed,digits",
    [
        (100_000, 2000, 10, 10, 1.0016e-17, 5),
        (100_000, 2000, 20, 10, 1.542e-12, 4),
        (10_000, 300, 24, 12, 8.3758e-13, 5),
        (200_000, 2000, 10, 10, 9.78e-21, 3),
    ],
)
def test_false_match_matches_published_values(n, a, s, theta, printed, digits):
    p = d.false_match_probability(n, a, s, theta)
    assert float(f"{p:.{digits - 1}e}") == pytest.approx(printed, rel=1e-12)
    assert p == pytest.approx(printed, rel=1e-3)


def test_exact_fraction_against_scipy_hypergeometric():
    from scipy.stats import hypergeom

    for n, a, s, theta in [(1000, 50, 20, 3), (4096, 40, 25, 5), (10_000, 300, 24, 12),
                           (500, 250, 30, 20)]:
        ref = hypergeom.sf(theta - 1, n, s, a)  # P(overlap >= theta)
        assert d.false_match_probability(n, a, s, theta) == pytest.approx(ref, rel=1e-9)


def test_edge_cases_and_errors():
    assert d.false_match_probability(100, 10, 5, 0) == 1.0
    assert d.false_match_probability(100, 10, 5, 6) == 0.0
    # s == a == n: every synapse is active
    assert d.false_match_probability(20, 20, 20, 20) == 1.0
    with pytest.raises(BiolearnError):
        d.false_match_probability(10, 20, 5, 2)
    with pytest.raises(BiolearnError):
        d.false_match_probability(100, 10, -1, 2)


@pytest.mark.parametrize("n,a,s,theta", [(1000, 100, 20, 5), (2000, 60, 16, 3), (1000, 200, 10, 6)])
def test_monte_carlo_agrees_within_ci(n, a, s, theta):
    p = d.false_match_probability(n, a, s, theta)
    assert p >= 1e-4
    est = d.false_match_mc(n, a, s, theta, trials=100_000, seed=3, level=0.99)
    assert est.contains(p), (p, est)


def test_monte_carlo_detects_wrong_theta():
    # the estimator must be able to tell theta=5 from theta=6
    est = d.false_match_mc(1000, 100, 20, 5, trials=100_000, seed=4, level=0.99)
    assert not est.contains(d.false_match_probability(1000, 100, 20, 6))


def test_union_formula_and_simulation():
    n, s = 10_000, 20
    Ms = np.array([1, 5, 20, 60])
    formula = d.union_effective_synapses(n, s, Ms)
    assert formula[0] == pytest.approx(s)
    # exact expectation of the occupancy chain equals n(1-(1-s/n)^M)
    for M, f in zip(Ms, formula, strict=True):
        dist = d.union_size_distribution(n, s, int(M))
        assert dist.sum() == pytest.approx(1.0, abs=1e-8)
        assert (dist * np.arange(dist.size)).sum() == pytest.approx(f, rel=1e-8)
        sizes = d.union_size_mc(n, s, int(M), trials=3000, seed=int(M))
        se = sizes.std(ddof=1) / np.sqrt(sizes.size) + 1e-9
        assert abs(sizes.mean() - f) < 4 * se + 1e-9


def test_union_false_match():
    n, a, s, M, theta = 2000, 40, 20, 10, 6
    p = d.union_false_match_probability(n, a, s, M, theta)
    est = d.union_false_match_mc(n, a, s, M, theta, trials=100_000, seed=1, level=0.99)
    assert est.contains(p), (p, est)
    # a union segment matches random SDRs far more often than a single-pattern one
    assert p > 10 * d.false_match_probability(n, a, s, theta)


def test_noise_removal_and_addition():
    a, s, theta = 100, 20, 10
    probs = [d.match_prob_after_removal(a, s, theta, r) for r in (0, 20, 40, 60, 80)]
    assert probs[0] == 1.0
    assert all(x > y for x, y in zip(probs[:-1], probs[1:], strict=True))
    est = d.match_prob_after_removal_mc(2000, a, s, theta, 60, trials=20_000, seed=2, level=0.99)
    assert est.contains(d.match_prob_after_removal(a, s, theta, 60))
    n = 1000
    fp = d.false_match_after_addition(n, 50, s, 5, 50)
    assert fp > d.false_match_probability(n, 50, s, 5)
    est = d.false_match_after_addition_mc(n, 50, s, 5, 50, trials=100_000, seed=5, level=0.99)
    assert est.contains(fp)
