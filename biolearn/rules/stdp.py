"""Spike-timing-dependent plasticity rules, each one :class:`SynapseModel` definition.

Every rule here is trace based: each presynaptic neuron of a projection has a trace (``apre``)
and each postsynaptic neuron its traces (``apost``, …); they decay exponentially and are decayed
lazily when read (no per-step work). The definitions (``PAIR_STDP``, ``DIEHL_COOK_STDP``, …) are
what the engine compiles; the frozen dataclasses (:class:`PairSTDP`, …) are their parameter sets
with the papers' names, and also give the rule as a flat parameter vector (:meth:`params`, the
layout below) for reference implementations.

Time constants in ms; weights in the projection's units.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from biolearn.engine.definitions import SynapseModel

_TRACES = ("dapre/dt = -apre/tau_pre : 1 (event-driven)\n"
           "dapost/dt = -apost/tau_post : 1 (event-driven)\n")
_W = {"w_min": 0.0, "w_max": 1.0}

#: Additive pair STDP, all-to-all traces (Song, Miller & Abbott 2000).
PAIR_STDP = SynapseModel(
    "pair_stdp", "w : 1\n" + _TRACES,
    on_pre="w = clip(w - a_minus*apost, w_min, w_max)\napre += 1",
    on_post="w = clip(w + a_plus*apre, w_min, w_max)\napost += 1",
    parameters={"a_plus": 0.01, "a_minus": 0.0105, "tau_pre": "20 ms", "tau_post": "20 ms", **_W},
    learning_rates=("a_plus", "a_minus"))

#: Multiplicative (soft-bound) pair STDP (van Rossum, Bi & Turrigiano 2000).
PAIR_STDP_MULT = SynapseModel(
    "pair_stdp_mult", "w : 1\n" + _TRACES,
    on_pre="w = clip(w - a_minus*apost*(w - w_min), w_min, w_max)\napre += 1",
    on_post="w = clip(w + a_plus*apre*(w_max - w), w_min, w_max)\napost += 1",
    parameters=dict(PAIR_STDP.parameters), learning_rates=("a_plus", "a_minus"))

#: Diehl & Cook 2015 (their Brian code): nearest-spike traces, potentiation gated by the
#: post2 trace before the post spike.
DIEHL_COOK_STDP = SynapseModel(
    "diehl_cook_stdp",
    "w : 1\n"
    "dapre/dt = -apre/tau_pre : 1 (event-driven)\n"
    "dapost1/dt = -apost1/tau_post1 : 1 (event-driven)\n"
    "dapost2/dt = -apost2/tau_post2 : 1 (event-driven)\n",
    on_pre="w = clip(w - nu_pre*apost1, w_min, w_max)\napre = 1",
    on_post="w = clip(w + nu_post*apre*apost2, w_min, w_max)\napost1 = 1\napost2 = 1",
    parameters={"nu_pre": 1e-4, "nu_post": 1e-2, "tau_pre": "20 ms", "tau_post1": "20 ms",
                "tau_post2": "40 ms", **_W},
    learning_rates=("nu_pre", "nu_post"))

#: Symmetric STDP of Hao et al. 2020: both spike orders potentiate, no lower bound.
SYMMETRIC_STDP = SynapseModel(
    "symmetric_stdp",
    "w : 1\n"
    "dapre/dt = -apre/tau : 1 (event-driven)\n"
    "dapost/dt = -apost/tau : 1 (event-driven)\n",
    on_pre="w = clip(w + eta*apost, w_min, w_max)\napre += inc",
    on_post="w = clip(w + eta*apre, w_min, w_max)\napost += inc",
    parameters={"eta": 0.005, "tau": "20 ms", "inc": 0.1, "w_min": -np.inf, "w_max": 1.0},
    learning_rates=("eta",))

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
    """Base class: a parameter set of a rule definition (``definition`` + :meth:`values`)."""

    code = NONE

    @property
    def definition(self) -> SynapseModel:  # pragma: no cover - overridden
        raise NotImplementedError

    def values(self) -> dict:
        """Parameter values of the definition (biolearn units)."""
        return asdict(self)

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

    @property
    def definition(self) -> SynapseModel:
        return PAIR_STDP_MULT if self.multiplicative else PAIR_STDP

    def values(self) -> dict:
        d = asdict(self)
        del d["multiplicative"]
        return d

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
    definition = DIEHL_COOK_STDP

    def values(self) -> dict:
        return {**asdict(self), "w_min": 0.0}

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
    definition = SYMMETRIC_STDP

    def params(self) -> np.ndarray:
        p = np.zeros(N_PARAMS)
        p[[P_TAU_PRE, P_TAU_POST1, P_TAU_POST2]] = self.tau, self.tau, self.tau
        p[[P_INC_PRE, P_INC_POST, P_SET]] = self.inc, self.inc, 0.0
        p[[P_ETA_PRE, P_ETA_POST]] = self.eta, self.eta
        p[[P_WMIN, P_WMAX]] = -np.inf, self.w_max
        return p
