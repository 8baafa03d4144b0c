"""Spike-timing-dependent plasticity rules, applied by the engine on pre/post spike events.

Every rule here is trace based: each presynaptic neuron of a projection has a trace ``x_pre`` and
each postsynaptic neuron traces ``x_post1`` (and ``x_post2``); traces decay exponentially and are
stored with the step of their last update, so they are decayed lazily when read (no per-step work).
A rule is a frozen dataclass that compiles to a rule code and a float parameter vector consumed by
:func:`biolearn.engine.kernels.on_pre` / ``on_post``.

Time constants in ms; weights in the projection's units.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Rule codes understood by the kernels.
NONE, PAIR_ADD, PAIR_MULT, DIEHL_COOK, SYMMETRIC = 0, 1, 2, 3, 4

# Layout of the parameter vector (index → meaning), shared with the kernels.
P_TAU_PRE, P_TAU_POST1, P_TAU_POST2 = 0, 1, 2
P_INC_PRE, P_INC_POST = 3, 4  # trace increment on a spike
P_SET = 5  # 1.0: traces are *set* to the increment on a spike (nearest spike); 0.0: added
P_ETA_PRE, P_ETA_POST = 6, 7
P_WMIN, P_WMAX = 8, 9
N_PARAMS = 10


@dataclass(frozen=True)
class STDPRule:
    """Base class: a compiled rule is ``(code, params)``."""

    code = NONE

    def params(self) -> np.ndarray:  # pragma: no cover - overridden
        return np.zeros(N_PARAMS)


@dataclass(frozen=True)
class PairSTDP(STDPRule):
    """Classic pair-based STDP with all-to-all trace interaction (Song, Miller & Abbott 2000).

    Additive: on pre ``w -= a_minus·x_post``; on post ``w += a_plus·x_pre``; w clipped to
    [w_min, w_max]. Multiplicative (van Rossum et al. 2000 / soft bounds): on pre
    ``w -= a_minus·x_post·(w − w_min)``; on post ``w += a_plus·x_pre·(w_max − w)``.
    For one pair at Δt = t_post − t_pre > 0 the additive change is ``a_plus·exp(−Δt/τ_pre)``,
    for Δt < 0 it is ``−a_minus·exp(Δt/τ_post)``.
    """

    a_plus: float = 0.01
    a_minus: float = 0.0105
    tau_pre: float = 20.0
    tau_post: float = 20.0
    w_min: float = 0.0
    w_max: float = 1.0
    multiplicative: bool = False

    @property
    def code(self) -> int:  # type: ignore[override]
        return PAIR_MULT if self.multiplicative else PAIR_ADD

    def params(self) -> np.ndarray:
        p = np.zeros(N_PARAMS)
        p[[P_TAU_PRE, P_TAU_POST1, P_TAU_POST2]] = self.tau_pre, self.tau_post, self.tau_post
        p[[P_INC_PRE, P_INC_POST, P_SET]] = 1.0, 1.0, 0.0
        p[[P_ETA_PRE, P_ETA_POST]] = self.a_minus, self.a_plus
        p[[P_WMIN, P_WMAX]] = self.w_min, self.w_max
        return p


@dataclass(frozen=True)
class DiehlCookSTDP(STDPRule):
    """Diehl & Cook 2015 pre/post rule (their Brian code, ``stdp-mnist``).

    Traces are set to 1 on a spike (nearest-spike): pre (τ 20 ms), post1 (τ 20 ms), post2 (τ 40 ms).
    On pre: ``x_pre = 1; w = clip(w − nu_pre·x_post1, 0, w_max)``.
    On post: ``w = clip(w + nu_post·x_pre·x_post2_before, 0, w_max); x_post1 = x_post2 = 1``.
    """

    nu_pre: float = 1e-4
    nu_post: float = 1e-2
    tau_pre: float = 20.0
    tau_post1: float = 20.0
    tau_post2: float = 40.0
    w_max: float = 1.0

    code = DIEHL_COOK

    def params(self) -> np.ndarray:
        p = np.zeros(N_PARAMS)
        p[[P_TAU_PRE, P_TAU_POST1, P_TAU_POST2]] = self.tau_pre, self.tau_post1, self.tau_post2
        p[[P_INC_PRE, P_INC_POST, P_SET]] = 1.0, 1.0, 1.0
        p[[P_ETA_PRE, P_ETA_POST]] = self.nu_pre, self.nu_post
        p[[P_WMIN, P_WMAX]] = 0.0, self.w_max
        return p


@dataclass(frozen=True)
class SymmetricSTDP(STDPRule):
    """Symmetric STDP of Hao, Huang, Dong & Xu 2020 (Neural Networks 121:387), from their code.

    Both spike orders potentiate; there is no depression term (synaptic scaling supplies it):
    on pre ``w = min(w + eta·x_post, w_max)`` then ``x_pre += inc``;
    on post ``w = min(w + eta·x_pre, w_max)`` then ``x_post += inc``; traces decay with τ (20 ms).
    For one pair at any Δt the change is ``eta·inc·exp(−|Δt|/τ)``.
    """

    eta: float = 0.005
    tau: float = 20.0
    inc: float = 0.1
    w_max: float = 1.0

    code = SYMMETRIC

    def params(self) -> np.ndarray:
        p = np.zeros(N_PARAMS)
        p[[P_TAU_PRE, P_TAU_POST1, P_TAU_POST2]] = self.tau, self.tau, self.tau
        p[[P_INC_PRE, P_INC_POST, P_SET]] = self.inc, self.inc, 0.0
        p[[P_ETA_PRE, P_ETA_POST]] = self.eta, self.eta
        p[[P_WMIN, P_WMAX]] = -np.inf, self.w_max
        return p
