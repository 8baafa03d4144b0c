"""biolearn's spike-train statistics against Elephant (with Neo and quantities) on random spike
trains, to 1e-9 relative (or exactly where the arithmetic is the same).

Conventions that differ, and are converted here:
- van Rossum: Elephant normalises D to 1 for one spike against none; biolearn (van Rossum 2001)
  to √½, so Elephant's value is √2 × biolearn's.
- time units: biolearn uses ms throughout; the Neo trains carry ms, costs q are 1/ms.
Measures Elephant does not have are checked against an independent reference instead: the
coincidence factor Γ (Kistler et al. 1997) against a brute-force O(n·m) count, the KS distance
of ISI distributions against scipy.stats.ks_2samp.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("elephant")
import neo  # noqa: E402
import quantities as pq  # noqa: E402
from elephant import spike_train_dissimilarity as sd  # noqa: E402
from elephant import statistics as es  # noqa: E402

from biolearn.analysis import isi as bi  # noqa: E402
from biolearn.analysis import spike_distances as bd  # noqa: E402
from biolearn.analysis import spiketrains as bs  # noqa: E402

T = 1000.0  # ms
REL = 1e-9


def _st(t: np.ndarray, t_stop: float = T) -> neo.SpikeTrain:
    return neo.SpikeTrain(np.sort(np.asarray(t, float)), units="ms", t_start=0.0, t_stop=t_stop)


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= REL * max(1.0, abs(a), abs(b))


def _pairs(seed: int, count: int = 150):
    """Random pairs of trains: independent, jittered copies, with exact coincidences, empty."""
    rng = np.random.default_rng(seed)
    for k in range(count):
        n, m = (int(v) for v in rng.integers(0, 40, 2))
        x, y = rng.uniform(0, T, n), rng.uniform(0, T, m)
        if k % 5 == 0 and n:
            y = np.clip(x + rng.normal(0, 0.5, n), 0, T)
        if k % 7 == 0 and min(n, len(y)):
            c = min(n, len(y)) // 2
            y[:c] = x[:c]
        yield x, y


def test_van_rossum_vs_elephant():
    for k, (x, y) in enumerate(_pairs(0)):
        tau = [0.5, 5.0, 20.0, 200.0][k % 4]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # Elephant's clipping notice
            ref = sd.van_rossum_distance([_st(x), _st(y)], tau * pq.ms)[0, 1]
        assert _close(np.sqrt(2.0) * bd.van_rossum(x, y, tau), ref), (k, tau)
    one = sd.van_rossum_distance([_st([5.0]), _st([])], 10 * pq.ms)[0, 1]
    assert one == pytest.approx(1.0) and bd.van_rossum([5.0], [], 10.0) == pytest.approx(
        np.sqrt(0.5))


@pytest.mark.parametrize("algorithm", ["fast", "intuitive"])
def test_victor_purpura_vs_elephant(algorithm):
    for k, (x, y) in enumerate(_pairs(1, 150 if algorithm == "fast" else 25)):
        q = [0.0, 0.01, 0.1, 1.0, 10.0][k % 5]
        ref = sd.victor_purpura_distance([_st(x), _st(y)], q / pq.ms,
                                         algorithm=algorithm)[0, 1]
        assert _close(bd.victor_purpura(x, y, q), ref), (k, q)
    x, y = np.random.default_rng(2).uniform(0, T, (2, 20))
    assert bd.victor_purpura(x, y, np.inf) == sd.victor_purpura_distance(
        [_st(x), _st(y)], np.inf / pq.ms)[0, 1] == 40


def _population(seed: int, n: int = 25, k: int = 1500):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, T, k), rng.integers(0, n, k), n


def test_population_distances_vs_elephant():
    ta, ia, n = _population(3)
    tb, ib, _ = _population(4)
    vr = bd.van_rossum_population(ta, ia, tb, ib, n, 8.0)
    vp = bd.victor_purpura_population(ta, ia, tb, ib, n, 0.2)
    for j in range(n):
        a, b = _st(ta[ia == j]), _st(tb[ib == j])
        assert _close(np.sqrt(2.0) * vr[j], sd.van_rossum_distance([a, b], 8 * pq.ms)[0, 1])
        assert _close(vp[j], sd.victor_purpura_distance([a, b], 0.2 / pq.ms)[0, 1])


def test_isi_cv_rate_vs_elephant():
    rng = np.random.default_rng(5)
    times, ids, n = _population(6)
    # regular trains too: CV ≈ 6e-4, where E[d²] − E[d]² would lose ~9 digits
    reg = np.concatenate([np.cumsum(rng.uniform(9.99, 10.01, 90)) for _ in range(5)])
    times = np.concatenate([times, reg])
    ids = np.concatenate([ids, np.repeat(np.arange(n, n + 5), 90)])
    n += 5
    d, owner = bi.isis(times, ids, n)
    cv = bi.cv_isi(times, ids, n)
    rates = bi.firing_rates(times, ids, n, T)
    for j in range(n):
        st = _st(times[ids == j])
        ref_isi = es.isi(st).rescale(pq.ms).magnitude
        np.testing.assert_array_equal(d[owner == j], ref_isi)
        ref_cv = es.cv(ref_isi)
        assert _close(cv[j], ref_cv), (j, cv[j], ref_cv)
        ref_rate = es.mean_firing_rate(st, t_start=0 * pq.ms, t_stop=T * pq.ms)
        assert _close(rates[j], float(ref_rate.rescale(pq.Hz).magnitude))
    few = bi.cv_isi(np.array([1.0, 2.0]), np.array([0, 0]), 1)
    assert np.isnan(few[0])  # one ISI: below min_isis (Elephant would give 0)


def test_trains_and_to_neo_vs_neo():
    times, ids, n = _population(7)
    ref = neo.core.spiketrainlist.SpikeTrainList.from_spike_time_array(
        times, ids, np.arange(n), units="ms", t_start=0 * pq.ms, t_stop=T * pq.ms)
    mine = bs.trains(times, ids, n)
    conv = bs.to_neo(times, ids, n, t_stop=T)
    for j in range(n):
        np.testing.assert_array_equal(np.sort(ref[j].magnitude), mine[j])
        np.testing.assert_array_equal(conv[j].magnitude, mine[j])
        assert conv[j].units == pq.ms and float(conv[j].t_stop) == T
    np.testing.assert_array_equal(es.isi(conv[0]).magnitude, np.diff(mine[0]))


def test_isi_histogram_and_ks_reference():
    """No Elephant equivalents: the histogram is numpy's of Elephant's ISIs, the KS distance
    scipy's two-sample statistic."""
    from scipy.stats import ks_2samp

    ta, ia, n = _population(8)
    tb, ib, _ = _population(9, k=900)
    isi_a = np.concatenate([es.isi(_st(ta[ia == j])).magnitude for j in range(n)])
    isi_b = np.concatenate([es.isi(_st(tb[ib == j])).magnitude for j in range(n)])
    dens, edges = bi.isi_histogram(ta, ia, n, bins=30, max_ms=300.0)
    ref, ref_edges = np.histogram(isi_a, bins=30, range=(0.0, 300.0), density=True)
    np.testing.assert_array_equal(edges, ref_edges)
    np.testing.assert_allclose(dens, ref, rtol=1e-12)
    assert _close(bi.isi_distance(ta, ia, tb, ib, n), ks_2samp(isi_a, isi_b).statistic)
    per = bi.isi_distance(ta, ia, tb, ib, n, per_neuron=True)
    for j in range(n):
        a, b = np.diff(np.sort(ta[ia == j])), np.diff(np.sort(tb[ib == j]))
        if a.size and b.size:
            assert _close(per[j], ks_2samp(a, b).statistic)


def test_coincidence_factor_reference():
    """Elephant has no coincidence factor: N_coinc against a brute-force count, Γ against the
    formula of Kistler et al. (1997, eq. 4.1) written out."""
    for x, y in _pairs(10, 80):
        for delta in (0.5, 2.0, 4.0):
            brute = int(sum(np.any(np.abs(y - t) <= delta) for t in x))
            assert bd.n_coincidences(x, y, delta) == brute
            if len(x) + len(y) == 0:
                continue
            nu = len(y) / T
            gamma = (brute - 2 * nu * delta * len(x)) / (0.5 * (len(x) + len(y))) / (
                1 - 2 * nu * delta)
            assert _close(bd.coincidence_factor(x, y, delta, T), gamma)
