"""Spike-timing-dependent plasticity rules, each one :class:`SynapseModel` definition.

Every rule here is trace based: each presynaptic neuron of a projection has a trace (``apre``)
and each postsynaptic neuron its traces (``apost``, …); they decay exponentially and are decayed
lazily when read (no per-step work). :data:`REWARD_STDP` also keeps a per-synapse eligibility
trace that only its ``reward`` event turns into weight change. The definitions (``PAIR_STDP``,
``DIEHL_COOK_STDP``, ``TRIPLET_STDP``, …) are what the engine compiles; the frozen dataclasses
(:class:`PairSTDP`, …) are their parameter sets with the papers' names, and also give the rule as
a flat parameter vector (:meth:`params`, the layout below) for reference implementations (the
triplet and reward rules fill only the weight bounds of it).

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

#: The same with its own post-trace increment ``inc_post`` (emulating unequal GPU trace races,
#: :func:`genn_race_increments`).
SYMMETRIC_STDP_2INC = SynapseModel(
    "symmetric_stdp_2inc",
    SYMMETRIC_STDP.model,
    on_pre=SYMMETRIC_STDP.on_pre,
    on_post="w = clip(w + eta*apre, w_min, w_max)\napost += inc_post",
    parameters={**SYMMETRIC_STDP.parameters, "inc_post": 0.1},
    learning_rates=("eta",))

#: Triplet STDP of Pfister & Gerstner 2006, all-to-all interaction: fast/slow pre traces r1, r2,
#: fast/slow post traces o1, o2; r2 and o2 are read before their own spike's increment.
TRIPLET_STDP = SynapseModel(
    "triplet_stdp",
    "w : 1\n"
    "dr1/dt = -r1/tau_plus : 1 (event-driven)\n"
    "dr2/dt = -r2/tau_x : 1 (event-driven)\n"
    "do1/dt = -o1/tau_minus : 1 (event-driven)\n"
    "do2/dt = -o2/tau_y : 1 (event-driven)\n",
    on_pre="w = clip(w - o1*(A2_minus + A3_minus*r2), w_min, w_max)\nr1 += 1\nr2 += 1",
    on_post="w = clip(w + r1*(A2_plus + A3_plus*o2), w_min, w_max)\no1 += 1\no2 += 1",
    parameters={"A2_plus": 0.0, "A3_plus": 6.5e-3, "A2_minus": 7.1e-3, "A3_minus": 0.0,
                "tau_plus": "16.8 ms", "tau_minus": "33.7 ms", "tau_x": "101 ms",
                "tau_y": "114 ms", **_W},
    learning_rates=("A2_plus", "A3_plus", "A2_minus", "A3_minus"))

#: Reward-modulated STDP with a per-synapse eligibility trace c (Izhikevich 2007): spikes change
#: only c; the event ``reward`` (``sim.apply_event(proj, "reward", reward=R)``) turns it into
#: weight change.
REWARD_STDP = SynapseModel(
    "reward_stdp",
    "w : 1\n"
    "dapre/dt = -apre/tau_plus : 1 (event-driven)\n"
    "dapost/dt = -apost/tau_minus : 1 (event-driven)\n"
    "dc/dt = -c/tau_c : 1 (event-driven)\n",
    on_pre="c -= A_minus*apost\napre += 1",
    on_post="c += A_plus*apre\napost += 1",
    parameters={"A_plus": 1.0, "A_minus": 1.5, "tau_plus": "20 ms", "tau_minus": "20 ms",
                "tau_c": "1000 ms", "eta": 0.01, "reward": 0.0, **_W},
    learning_rates=("eta",),
    events={"reward": "w = clip(w + eta*reward*c, w_min, w_max)"})

# Rule codes of the parameter sets (``code``); the engine compiles the definitions above.
NONE, PAIR_ADD, PAIR_MULT, DIEHL_COOK, SYMMETRIC = 0, 1, 2, 3, 4

# Layout of the flat parameter vector of :meth:`params` (index → meaning).
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

    def params(self) -> np.ndarray:
        """The flat parameter vector of the pair rules (layout above); rules without that
        layout fill only the weight bounds."""
        p = np.zeros(N_PARAMS)
        v = self.values()
        p[[P_WMIN, P_WMAX]] = v.get("w_min", 0.0), v.get("w_max", np.inf)
        return p


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
    on post ``w = min(w + eta·x_pre, w_max)`` then ``x_post += inc_post``; traces decay with τ
    (20 ms). ``inc_post`` is ``inc`` unless given (the paper: 0.1 for both; unequal increments
    emulate the authors' unsynchronised GPU trace writes, :func:`genn_race_increments`).
    For one pair at any Δt the change is ``eta·inc·exp(−|Δt|/τ)``.
    """

    eta: float = 0.005
    tau: float = 20.0
    inc: float = 0.1
    w_max: float = 1.0
    inc_post: float | None = None

    code = SYMMETRIC

    @property
    def two_increments(self) -> bool:
        return self.inc_post is not None and self.inc_post != self.inc

    @property
    def definition(self) -> SynapseModel:  # type: ignore[override]
        return SYMMETRIC_STDP_2INC if self.two_increments else SYMMETRIC_STDP

    def values(self) -> dict:
        d = asdict(self)
        if not self.two_increments:
            del d["inc_post"]
        return d

    def params(self) -> np.ndarray:
        p = np.zeros(N_PARAMS)
        p[[P_TAU_PRE, P_TAU_POST1, P_TAU_POST2]] = self.tau, self.tau, self.tau
        inc_post = self.inc_post if self.two_increments else self.inc
        p[[P_INC_PRE, P_INC_POST, P_SET]] = self.inc, inc_post, 0.0
        p[[P_ETA_PRE, P_ETA_POST]] = self.eta, self.eta
        p[[P_WMIN, P_WMAX]] = -np.inf, self.w_max
        return p


@dataclass(frozen=True)
class TripletSTDP(STDPRule):
    """Triplet STDP, all-to-all interaction (Pfister & Gerstner 2006, J Neurosci 26:9673).

    Pre traces r1 (τ+), r2 (τx) and post traces o1 (τ−), o2 (τy) jump by 1 on their spike and
    decay exponentially. On a pre spike ``w ← w − o1·(A2− + A3−·r2)``; on a post spike
    ``w ← w + r1·(A2+ + A3+·o2)``; r2 and o2 are taken just before their own spike's increment
    (the paper's ε); w is clipped to [w_min, w_max]. For one pair at Δt = t_post − t_pre > 0 the
    change is ``A2+·exp(−Δt/τ+)``, for Δt < 0 it is ``−A2−·exp(Δt/τ−)``; the triplet terms act
    from the third spike on (post at t1, pre at t2, post at t3: the second post spike adds
    ``A3+·exp(−(t3 − t2)/τ+)·exp(−(t3 − t1)/τy)`` to its pair term).

    The defaults are the paper's minimal all-to-all fit to the visual-cortex pairing data of
    Sjöström et al. 2001 (its Table 3; :meth:`visual_cortex_minimal`, τx unused as A3− = 0);
    :meth:`visual_cortex_full` is the full all-to-all fit of the same table.
    """

    A2_plus: float = 0.0
    A3_plus: float = 6.5e-3
    A2_minus: float = 7.1e-3
    A3_minus: float = 0.0
    tau_plus: float = 16.8
    tau_minus: float = 33.7
    tau_x: float = 101.0
    tau_y: float = 114.0
    w_min: float = 0.0
    w_max: float = 1.0

    definition = TRIPLET_STDP

    @classmethod
    def visual_cortex_minimal(cls, **kw: float) -> TripletSTDP:
        """Minimal all-to-all model, visual cortex: A2+ = 0, A3+ = 6.5e-3, A2− = 7.1e-3,
        A3− = 0, τy = 114 ms (τ+ = 16.8 ms, τ− = 33.7 ms; τx unused)."""
        return cls(**kw)

    @classmethod
    def visual_cortex_full(cls, **kw: float) -> TripletSTDP:
        """Full all-to-all model, visual cortex: A2+ = 5e-10, A3+ = 6.2e-3, A2− = 7e-3,
        A3− = 2.3e-4, τx = 101 ms, τy = 125 ms."""
        return cls(**{"A2_plus": 5e-10, "A3_plus": 6.2e-3, "A2_minus": 7e-3, "A3_minus": 2.3e-4,
                      "tau_x": 101.0, "tau_y": 125.0, **kw})


@dataclass(frozen=True)
class RewardSTDP(STDPRule):
    """Reward-modulated STDP with an eligibility trace (Izhikevich 2007, Cereb Cortex 17:2443;
    three-factor rules: Frémaux & Gerstner 2016, Front Neural Circuits 9:85).

    Pair STDP with all-to-all traces (apre: τ+, apost: τ−) does not change w but a per-synapse
    eligibility trace c, which decays with τc: on pre ``c −= A−·apost``, on post
    ``c += A+·apre``. The third factor arrives as the event ``reward`` between runs,
    ``sim.apply_event(proj, "reward", reward=R)``: ``w ← clip(w + eta·R·c, w_min, w_max)``
    with c decayed to that moment (Izhikevich's ``ds/dt = c·d`` for a brief dopamine pulse).
    After one pair at Δt = t_post − t_pre > 0, a reward at time T changes w by
    ``eta·R·A+·exp(−Δt/τ+)·exp(−(T − t_post)/τc)``.
    """

    A_plus: float = 1.0
    A_minus: float = 1.5
    tau_plus: float = 20.0
    tau_minus: float = 20.0
    tau_c: float = 1000.0
    eta: float = 0.01
    reward: float = 0.0
    w_min: float = 0.0
    w_max: float = 1.0

    definition = REWARD_STDP


def genn_race_increments(inc: float, n_pre: int, n_post: int, fraction: float,
                         warp: int = 32) -> tuple[float, float]:
    """Effective (pre, post) trace increments of symmetric STDP under GeNN 2.2.2's unsynchronised
    per-synapse trace writes (Hao et al.'s ``src/add_model.cc``: ``$(trace_pre) += $(a_plus)`` in
    the per-synapse pre code, ``$(trace1_post) += $(a_minus)`` in the learn-post code, no
    atomics).

    A pre spike runs one thread per post neuron, all adding to the one pre trace; a post spike one
    thread per pre neuron. The 32 threads of a warp read-add-write together, so at most one
    increment per warp survives: ``W = ceil(threads / 32)`` warps give between ``inc`` (all
    writes but one lost) and ``W·inc`` (every warp's write survives). ``fraction`` ∈ [0, 1] picks
    ``inc·(1 + fraction·(W − 1))`` in that range; 0 is the paper's rule.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")

    def bound(threads: int) -> float:
        w = -(-int(threads) // warp)
        return inc * (1.0 + fraction * (max(w, 1) - 1))

    return bound(n_post), bound(n_pre)
