"""Spike-train analysis against closed forms and independent implementations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from biolearn.analysis import avalanches as av
from biolearn.analysis import isi
from biolearn.analysis import spike_distances as sd


def _poisson(rate_hz: float, t_ms: float, rng: np.random.Generator) -> np.ndarray:
    n = rng.poisson(rate_hz * t_ms / 1000.0)
    return np.sort(rng.uniform(0.0, t_ms, n))


def _vr_numeric(x: np.ndarray, y: np.ndarray, tau: float, t_end: float, dt: float = 0.005
                ) -> float:
    """Direct quadrature of (1/τ)∫(f − g)² dt with exponential kernels (independent check)."""
    t = np.arange(-5.0, t_end, dt)

    def f(s: np.ndarray) -> np.ndarray:
        out = np.zeros_like(t)
        for si in s:
            m = t >= si
            out[m] += np.exp(-(t[m] - si) / tau)
        return out

    return float(np.sqrt(np.sum((f(x) - f(y)) ** 2) * dt / tau))


# ---------------------------------------------------------------------- van Rossum
def test_van_rossum_single_spikes_closed_form():
    tau = 10.0
    for delta in (0.0, 1.0, 7.5, 40.0):
        d = sd.van_rossum([5.0], [5.0 + delta], tau)
        assert d == pytest.approx(np.sqrt(1.0 - np.exp(-delta / tau)), abs=1e-12)
    assert sd.van_rossum([3.0], [], tau) == pytest.approx(np.sqrt(0.5))
    assert sd.van_rossum([], [], tau) == 0.0


def test_van_rossum_matches_quadrature_and_is_symmetric():
    rng = np.random.default_rng(1)
    x, y = _poisson(40, 300, rng), _poisson(40, 300, rng)
    tau = 8.0
    d = sd.van_rossum(x, y, tau)
    assert d == pytest.approx(_vr_numeric(x, y, tau, 300 + 20 * tau), rel=2e-3)
    assert d == pytest.approx(sd.van_rossum(y, x, tau), abs=1e-12)
    assert sd.van_rossum(x, x, tau) == pytest.approx(0.0, abs=1e-6)
    # far apart spikes (τ → 0): every spike counts ½
    assert sd.van_rossum(x, y, 1e-6) ** 2 == pytest.approx(0.5 * (len(x) + len(y)))


def test_van_rossum_population_per_neuron():
    ta, ia = np.array([1.0, 2.0, 10.0]), np.array([0, 1, 1])
    tb, ib = np.array([1.0, 12.0]), np.array([0, 1])
    d = sd.van_rossum_population(ta, ia, tb, ib, 3, 5.0)
    assert d[0] == pytest.approx(0.0, abs=1e-9)
    assert d[1] == pytest.approx(sd.van_rossum([2.0, 10.0], [12.0], 5.0))
    assert d[2] == 0.0


# ---------------------------------------------------------------------- Victor–Purpura
def test_victor_purpura_small_cases():
    # one shift of Δ = 3 ms: cost q·Δ when below 2, else delete + insert = 2
    assert sd.victor_purpura([10.0], [13.0], 0.1) == pytest.approx(0.3)
    assert sd.victor_purpura([10.0], [13.0], 1.0) == pytest.approx(2.0)
    assert sd.victor_purpura([10.0, 20.0], [11.0], 0.5) == pytest.approx(1.5)  # shift + delete
    assert sd.victor_purpura([], [1.0, 2.0, 3.0], 0.7) == 3.0
    x = [1.0, 5.0, 9.0]
    assert sd.victor_purpura(x, x, 3.0) == 0.0


def test_victor_purpura_limits_and_symmetry():
    rng = np.random.default_rng(2)
    x, y = _poisson(30, 500, rng), _poisson(50, 500, rng)
    assert sd.victor_purpura(x, y, 0.0) == pytest.approx(abs(len(x) - len(y)))
    assert sd.victor_purpura(x, y, np.inf) == pytest.approx(len(x) + len(y))
    assert sd.victor_purpura(x, y, 0.05) == pytest.approx(sd.victor_purpura(y, x, 0.05))
    d = [sd.victor_purpura(x, y, q) for q in (0.0, 0.01, 0.1, 1.0)]
    assert np.all(np.diff(d) >= -1e-12)  # non-decreasing in q


# ---------------------------------------------------------------------- coincidence factor
def test_coincidence_factor():
    rng = np.random.default_rng(3)
    T = 200_000.0
    x = _poisson(10, T, rng)
    assert sd.coincidence_factor(x, x, 2.0, T) == pytest.approx(1.0)
    g = [sd.coincidence_factor(x, _poisson(10, T, rng), 2.0, T) for _ in range(5)]
    assert abs(np.mean(g)) < 0.05
    jit = x + rng.uniform(-1.0, 1.0, x.size)  # all within ±Δ
    assert sd.coincidence_factor(x, np.sort(jit), 2.0, T) == pytest.approx(1.0, abs=0.01)


# ---------------------------------------------------------------------- ISI statistics
def test_poisson_cv_rates_and_ks():
    rng = np.random.default_rng(4)
    n, T = 20, 100_000.0
    parts = [(_poisson(20, T, rng), k) for k in range(n)]
    t = np.concatenate([p for p, _ in parts])
    ids = np.concatenate([np.full(p.size, k) for p, k in parts])
    cv = isi.cv_isi(t, ids, n)
    assert np.all(np.abs(cv - 1.0) < 0.06)
    assert np.allclose(isi.firing_rates(t, ids, n, T), 20, rtol=0.1)
    regular = np.arange(0, T, 50.0)
    assert isi.cv_isi(regular, np.zeros(regular.size, int), 1)[0] == pytest.approx(0.0, abs=1e-9)
    d, owner = isi.isis(t, ids, n)
    assert d.size == t.size - n and np.all(d > 0)
    # KS statistic equals scipy's two-sample statistic
    a, b = rng.exponential(50, 500), rng.exponential(60, 700)
    assert isi.ks_distance(a, b) == pytest.approx(stats.ks_2samp(a, b).statistic)
    # exponential ISIs (rate 20 Hz): one-sample KS against the closed-form CDF is small
    assert stats.kstest(d, "expon", args=(0, 50.0)).statistic < 0.02
    assert isi.isi_distance(t, ids, t, ids, n) == 0.0


# ---------------------------------------------------------------------- avalanches
def test_powerlaw_mle_recovers_exponent():
    rng = np.random.default_rng(5)
    x = av.sample_discrete_powerlaw(1.5, 20000, rng, 1, 10**5)
    f = av.powerlaw_fit(x, xmin=1, xmax=10**5)
    assert f.exponent == pytest.approx(-1.5, abs=max(3 * f.sigma, 0.01))
    assert f.sigma < 0.02
    x2 = av.sample_discrete_powerlaw(2.2, 20000, rng, 3, 10**4)
    f2 = av.powerlaw_fit(x2, xmin=3, xmax=10**4)
    assert f2.exponent == pytest.approx(-2.2, abs=3 * f2.sigma)
    # unbounded fit (Hurwitz ζ normalisation) on a heavy tail with x_max far out
    f3 = av.powerlaw_fit(av.sample_discrete_powerlaw(2.5, 20000, rng, 1, 10**6), xmin=1)
    assert f3.exponent == pytest.approx(-2.5, abs=3 * f3.sigma)


def test_avalanche_binning_by_hand():
    t = np.array([0.5, 1.2, 1.7, 5.1, 5.9, 6.2, 6.3, 9.0])
    a = av.avalanches(t, bin_ms=1.0, t_start=0.0, t_stop=10.0, drop_edges=False)
    assert a.counts.tolist() == [1, 2, 0, 0, 0, 2, 2, 0, 0, 1]
    assert a.sizes.tolist() == [3, 4, 1] and a.durations.tolist() == [2, 2, 1]
    assert av.avalanches(t, 1.0, 0.0, 10.0).sizes.tolist() == [4]  # edges dropped
    assert av.population_bin_width(t) == pytest.approx((9.0 - 0.5) / 7)


def test_critical_branching_process():
    c = av.branching_process(20000, 1.0, seed=7, max_size=10**5)
    a = av.avalanches_from_counts(c)
    assert av.branching_ratio(c) == pytest.approx(1.0, abs=0.02)
    assert av.branching_ratio(c, "beggs") == pytest.approx(1.0, abs=0.05)
    f = av.powerlaw_fit(a.sizes, xmin=10, xmax=10**4)
    assert f.exponent == pytest.approx(-1.5, abs=0.07)
    fd = av.powerlaw_fit(a.durations, xmin=10, xmax=10**3)
    assert fd.exponent == pytest.approx(-2.0, abs=0.2)
    # via spike times: one spike per count spread inside its 1 ms bin
    rng = np.random.default_rng(0)
    bins = np.repeat(np.arange(c.size), c)
    times = bins + rng.uniform(0.01, 0.99, bins.size)
    a2 = av.avalanches(times, bin_ms=1.0, t_start=0.0, t_stop=float(c.size))
    assert np.array_equal(np.sort(a2.sizes), np.sort(a.sizes))


def test_subcritical_branching_process_is_not_critical():
    c = av.branching_process(20000, 0.7, seed=8)
    a = av.avalanches_from_counts(c)
    assert av.branching_ratio(c) == pytest.approx(0.7, abs=0.03)
    f = av.powerlaw_fit(a.sizes, xmin=2, xmax=200)
    assert f.exponent < -1.9  # exponential cut-off: much steeper than −3/2
