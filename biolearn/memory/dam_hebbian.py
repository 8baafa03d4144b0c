"""Dense Hebbian couplings built from noisy examples (Agliari et al., arXiv 2212.00606).

Setting: K archetypes ξ^μ ∈ {±1}^N are never shown; the network sees M examples per archetype,
η^{μ,a} = ξ^μ ⊙ χ^{μ,a} with i.i.d. χ_i = ±1, P(χ_i = ±1) = (1 ± r)/2 (r = dataset quality).

P-spin couplings and energies (Agliari et al. 2022, supervised and unsupervised Hebbian rules)::

    supervised:    J_{i1…iP} = Σ_μ Π_k η̄^μ_{ik},          η̄^μ = (1/M) Σ_a η^{μ,a}
    unsupervised:  J_{i1…iP} = (1/M) Σ_μ Σ_a Π_k η^{μ,a}_{ik}

    H(σ) = −(1/P!) Σ_{i1…iP} J_{i1…iP} σ_{i1}…σ_{iP}  (up to the N-dependent normalisation)
         = −(1/P!) Σ_μ (η̄^μ·σ)^P                        (supervised)
         = −(1/(P! M)) Σ_{μ,a} (η^{μ,a}·σ)^P             (unsupervised)

because the sum over indices of a product of rank-one factors factorises: Σ_{i1…iP} Π_k x_{ik}σ_{ik}
= (x·σ)^P. Hence both constructions are dense associative memories with F(x) = x^P whose
"patterns" are the class means η̄^μ (supervised, K patterns) or all examples (unsupervised, K·M
patterns, common weight 1/M which does not change any sign). The action of the tensor on P − 1
copies of σ — the local field — is, again without ever forming the N^P tensor::

    h_i = Σ_{i2…iP} J_{i i2…iP} σ_{i2}…σ_{iP} = Σ_μ η̄^μ_i (η̄^μ·σ)^{P−1}      (:func:`p_spin_field`)

(this includes the diagonal index coincidences; the zero-temperature dynamics of
:func:`biolearn.memory.dam.recall_async` uses the exact single-flip energy difference instead,
i.e. excludes self-interaction as in Krotov & Hopfield 2016, Eq. 2).
"""

from __future__ import annotations

import numpy as np

from biolearn.errors import BiolearnError


def make_examples(archetypes: np.ndarray, r: float, M: int, rng: np.random.Generator) -> np.ndarray:
    """Noisy examples η^{μ,a} = ξ^μ ⊙ χ^{μ,a}, P(χ = ±1) = (1 ± r)/2; shape (K, M, N)."""
    if not 0.0 <= r <= 1.0:
        raise BiolearnError(f"dataset quality r = {r} outside [0, 1]", "argument 'r'",
                            "use 0 ≤ r ≤ 1 (r = 1: examples equal the archetypes)")
    xi = np.asarray(archetypes, dtype=np.float64)
    chi = np.where(rng.random((xi.shape[0], M, xi.shape[1])) < (1.0 + r) / 2.0, 1.0, -1.0)
    return xi[:, None, :] * chi


def supervised_patterns(examples: np.ndarray) -> np.ndarray:
    """Class means η̄^μ = (1/M) Σ_a η^{μ,a}, shape (K, N): the supervised P-spin 'patterns'."""
    return np.asarray(examples, dtype=np.float64).mean(axis=1)


def unsupervised_patterns(examples: np.ndarray) -> np.ndarray:
    """All examples as patterns, shape (K·M, N): the unsupervised P-spin construction."""
    ex = np.asarray(examples, dtype=np.float64)
    return ex.reshape(-1, ex.shape[-1])


def p_spin_field(patterns: np.ndarray, sigma: np.ndarray, P: int,
                 weights: np.ndarray | None = None) -> np.ndarray:
    """h = Σ_μ w_μ x^μ (x^μ·σ)^{P−1}: the contraction J·σ^{⊗(P−1)} of J = Σ_μ w_μ (x^μ)^{⊗P}.

    ``sigma`` may be (N,) or a batch (B, N). Cost O(B·K·N), memory O(B·K); the tensor is never
    formed.
    """
    x = np.asarray(patterns, dtype=np.float64)
    s = np.asarray(sigma, dtype=np.float64)
    ov = s @ x.T                                  # (B, K) or (K,)
    coef = ov ** (P - 1)
    if weights is not None:
        coef = coef * np.asarray(weights, dtype=np.float64)
    return coef @ x


def p_spin_energy(patterns: np.ndarray, sigma: np.ndarray, P: int,
                  weights: np.ndarray | None = None) -> np.ndarray:
    """H = −(1/P!)·Σ_μ w_μ (x^μ·σ)^P = −(1/P!) Σ J_{i1…iP} σ_{i1}…σ_{iP} (all index tuples)."""
    from math import factorial

    x = np.asarray(patterns, dtype=np.float64)
    ov = np.asarray(sigma, dtype=np.float64) @ x.T
    terms = ov ** P
    if weights is not None:
        terms = terms * np.asarray(weights, dtype=np.float64)
    return -terms.sum(axis=-1) / factorial(P)


def expected_sign_overlap(r: float, M: int) -> float:
    """E[ξ_i · sign(η̄_i)] for odd M: 1 − 2 P(Binomial(M, (1 − r)/2) > M/2).

    The fixed point reached from an example at low load is sign(η̄^μ); this is its expected Mattis
    overlap with the archetype (finite-M estimate of the archetype from the class mean).
    """
    from scipy.stats import binom

    if M % 2 == 0:
        raise BiolearnError("expected_sign_overlap needs odd M", "argument 'M'",
                            "use an odd number of examples (no ties in the class mean)")
    p_wrong = binom.sf(M // 2, M, (1.0 - r) / 2.0)
    return float(1.0 - 2.0 * p_wrong)
