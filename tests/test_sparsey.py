"""Sparsey CSA behaviour (Rinkus 2010, 2014): familiarity, similarity preservation, sequences."""

from __future__ import annotations

import numpy as np
import pytest

from biolearn.errors import BiolearnError
from biolearn.memory.sparsey import (
    CSAParams,
    Mac,
    SparseyHierarchy,
    code_overlap,
    codes_to_binary,
    knn_code_overlap,
    overlap_matrix,
)

N_IN, ACTIVE, Q, K = 200, 20, 10, 8


def _patterns(rng, count):
    return [rng.choice(N_IN, ACTIVE, replace=False) for _ in range(count)]


def _variant(rng, base, keep):
    """A pattern sharing exactly ``keep`` active units with ``base``."""
    others = np.setdiff1d(np.arange(N_IN), base)
    return np.concatenate([rng.choice(base, keep, replace=False),
                           rng.choice(others, ACTIVE - keep, replace=False)])


def _trained_mac(seed, count=5):
    rng = np.random.default_rng(seed)
    mac = Mac(N_IN, CSAParams(Q=Q, K=K))
    pats = _patterns(rng, count)
    codes = [mac.present(p, learn=True, rng=rng)[0] for p in pats]
    return mac, pats, codes, rng


def test_identical_inputs_identical_codes_at_retrieval():
    mac, pats, codes, rng = _trained_mac(0)
    probe = _variant(rng, pats[0], 13)
    c1, g1 = mac.present(probe, learn=False)
    c2, g2 = mac.present(probe.copy()[::-1], learn=False)
    assert np.array_equal(c1, c2) and g1 == g2
    # a code has one winner in each CM
    assert np.array_equal(c1 // K, np.arange(Q))


def test_stored_input_returns_its_code():
    hits = 0
    ov = 0
    for seed in range(20):
        mac, pats, codes, rng = _trained_mac(seed)
        for p, c in zip(pats, codes, strict=True):
            r, G = mac.present(p, learn=False)
            assert G == pytest.approx(1.0)
            assert np.array_equal(r, c)          # retrieval: argmax reproduces the code
        # learning mode at G = 1: the stored code wins in every CM with prob ~ (1-(K-1)/eta)^Q
        r, G = mac.present(pats[0], learn=True, rng=rng)
        hits += np.array_equal(r, codes[0])
        ov += code_overlap(r, codes[0]) / 20
    assert hits >= 12 and ov >= 0.95 * Q


def test_novel_input_gets_random_code():
    """G <= G_min => eta = 1 => each CM's winner is uniform over its K cells (chi-square)."""
    counts = np.zeros(K)
    overlaps = []
    for seed in range(60):
        mac, pats, codes, rng = _trained_mac(seed, count=3)
        novel = np.setdiff1d(np.arange(N_IN), np.concatenate(pats))[:ACTIVE]
        c, G = mac.present(novel, learn=True, rng=rng)
        assert G <= mac.params.G_min
        np.add.at(counts, c % K, 1)
        overlaps.append(code_overlap(c, codes[0]))
    from scipy.stats import chisquare

    assert chisquare(counts).pvalue > 1e-3
    # chance overlap of two random codes is Q/K
    assert abs(np.mean(overlaps) - Q / K) < 4 * np.sqrt(Q / K * (1 - 1 / K) / len(overlaps))


def test_similarity_preservation_is_monotone():
    """Learned codes of variants overlap the base code more the more the inputs overlap; at or
    below G_min (input overlap <= 4/20) the code is random (chance overlap Q/K)."""
    keeps = [20, 12, 8, 6, 0]
    mean_ov = np.zeros(len(keeps))
    trials = 100
    for seed in range(trials):
        rng = np.random.default_rng(100 + seed)
        mac = Mac(N_IN, CSAParams(Q=Q, K=K))
        base = rng.choice(N_IN, ACTIVE, replace=False)
        cb, _ = mac.present(base, learn=True, rng=rng)
        for i, keep in enumerate(keeps):
            m = mac.copy()
            c, _ = m.present(_variant(rng, base, keep), learn=True, rng=rng)
            mean_ov[i] += code_overlap(c, cb) / trials
    assert mean_ov[0] >= 0.97 * Q
    assert np.all(np.diff(mean_ov) < 0), mean_ov
    assert mean_ov[-1] == pytest.approx(Q / K, abs=0.4)


def test_sequence_recall_from_first_item():
    rng = np.random.default_rng(7)
    mac = Mac(N_IN, CSAParams(Q=Q, K=K), sequence=True)
    items = _patterns(rng, 8)
    seqs = [[0, 1, 2, 3, 4], [5, 2, 6, 3, 7]]   # items 2 and 3 recur in another context
    learned = []
    for s in seqs:
        codes = []
        for j, it in enumerate(s):
            codes.append(mac.present(items[it], learn=True, rng=rng, new_sequence=j == 0)[0])
        learned.append(codes)
    # the shared items got context-specific codes
    assert code_overlap(learned[0][2], learned[1][1]) < Q
    for s, codes in zip(seqs, learned, strict=True):
        recalled = mac.recall_sequence(items[s[0]], len(s))
        for r, c in zip(recalled, codes, strict=True):
            assert np.array_equal(r, c)
    with pytest.raises(BiolearnError):
        Mac(N_IN).recall_sequence(items[0], 3)


def test_two_level_hierarchy_preserves_similarity():
    p1 = CSAParams(Q=6, K=12, pi_min=3)  # macs with < 3 active pixels stay off (Rinkus: pi^-)
    p2 = CSAParams(Q=8, K=16)
    for seed in (3, 4):
        rng = np.random.default_rng(seed)
        h = SparseyHierarchy.for_images(12, 12, rf=6, stride=3, p1=p1, group=2, group_stride=1,
                                        p2=p2)
        assert [lv.n_macs for lv in h.levels] == [9, 4]
        X = rng.random((10, 144)) < 0.15
        learned = h.run(X, learn=True, rng=rng)
        again = h.run(X, learn=False)
        _, G1 = h.levels[0].run(X, learn=False)
        _, G2 = h.levels[1].run(codes_to_binary(again[0], p1.Q * p1.K), learn=False)
        assert np.nanmin(G1) == 1.0 and np.nanmin(G2) == 1.0   # every stored item is familiar
        for lv in range(2):   # and gets (almost all of) its code back; binary-weight crosstalk
            assert (learned[lv] == again[lv]).mean() >= 0.98   # may flip a rare CM
        noisy = X.copy()
        for i in range(10):
            flip = rng.choice(144, 4, replace=False)
            noisy[i, flip] = ~noisy[i, flip]
        rec = h.run(noisy, learn=False)
        # level 2 sees only level-1 codes; it must still pick out the right stored item
        ov = overlap_matrix([rec[1]], [learned[1]], cells=[p2.Q * p2.K])
        assert (ov.argmax(axis=1) == np.arange(10)).mean() >= 0.8
        off = ov[~np.eye(10, dtype=bool)]
        assert ov.diagonal().mean() > 2 * off.mean()


def test_overlap_matrix_against_brute_force():
    rng = np.random.default_rng(1)
    # level 0: 3 macs of Q=4 CMs x K=3 cells; level 1: 2 macs of Q=3 x K=3; cell = q*K + k
    q4, q3 = 3 * np.arange(4), 3 * np.arange(3)
    a = [rng.integers(0, 3, (5, 3, 4)) + q4, rng.integers(0, 3, (5, 2, 3)) + q3]
    b = [rng.integers(0, 3, (7, 3, 4)) + q4, rng.integers(0, 3, (7, 2, 3)) + q3]
    a[0][0, 1, :] = -1
    ov = overlap_matrix(a, b, cells=[12, 9])
    ref = np.zeros((5, 7), dtype=int)
    for i in range(5):
        for j in range(7):
            for lv in range(2):
                ref[i, j] += ((a[lv][i] == b[lv][j]) & (a[lv][i] >= 0)).sum()
    assert np.array_equal(ov, ref)
    labels = np.array([0, 1, 2, 0, 1, 2, 0])
    pred = knn_code_overlap(ov, labels, k=1)
    for i in range(5):  # the predicted class holds a nearest neighbour (ties allowed)
        assert ref[i, labels == pred[i]].max() == ref[i].max()
    onehot = codes_to_binary(b[0], 12)
    assert onehot.shape == (7, 36) and onehot.sum() == 7 * 3 * 4


@pytest.mark.parametrize("chi", [10.0, 1000.0])
def test_win_probability_matches_csa_closed_form(chi):
    """Learning-mode winner choice against Rinkus (2014, Table 1) computed by hand.

    One stored pattern A (code c_A; each cell of c_A has weights exactly A, all other cells none).
    A variant B sharing ``keep`` of its ACTIVE units with A gives, with U = u / pi_U:
    V = keep/ACTIVE on the cells of c_A, 0 elsewhere; G = keep/ACTIVE;
    eta = 1 + chi ((G - G^-) / (1 - G^-))^gamma;
    mu(V) = 1 + (eta - 1) / (1 + s1 e^{-s2 (V - s3)})^s4;
    P(c_A's cell wins a CM) = mu(V) / (mu(V) + (K - 1) mu(0)).
    """
    from scipy.stats import binomtest

    keep = 14
    p = CSAParams(Q=Q, K=K, chi=chi, match="fraction")
    rng = np.random.default_rng(11)
    base_mac = Mac(N_IN, p)
    A = rng.choice(N_IN, ACTIVE, replace=False)
    cA, _ = base_mac.present(A, learn=True, rng=rng)
    V = keep / ACTIVE
    eta = 1.0 + chi * ((V - p.G_min) / (1.0 - p.G_min)) ** p.gamma

    def mu(v):
        return 1.0 + (eta - 1.0) / (1.0 + p.s1 * np.exp(-p.s2 * (v - p.s3))) ** p.s4

    expected = mu(V) / (mu(V) + (K - 1) * mu(0.0))
    wins = trials = 0
    for _ in range(150):
        m = base_mac.copy()
        c, G = m.present(_variant(rng, A, keep), learn=True, rng=rng)
        assert G == pytest.approx(V)
        wins += int((c == cA).sum())
        trials += Q
    ci = binomtest(wins, trials).proportion_ci(0.999)
    assert ci.low <= expected <= ci.high, (wins / trials, expected)
