"""Földiák's (1990) sparse-coding rules, in rate form and on the spike counts of engine projections.

Földiák P. (1990) "Forming sparse representations by local anti-Hebbian learning",
Biol. Cybern. 64:165–170. ``m`` inputs ``x`` (binary), ``n`` outputs:

- Activity: ``y*`` is the fixed point of ``dy*/dt = f(Q x + W y* − t) − y*`` with
  ``f(u) = 1/(1 + exp(−λu))``, ``λ = 10`` (eq. 1), started from ``y* = 0``; the output is
  binarised, ``y_i = 1`` if ``y*_i > 0.5`` else 0.
- Lateral anti-Hebbian: ``Δw_ij = −α (y_i y_j − p²)``, ``w_ii = 0``, ``w_ij ≤ 0`` (eq. 3).
- Feedforward Hebbian: ``Δq_ij = β y_i (x_j − q_ij)`` (eq. 4).
- Threshold: ``Δt_i = γ (y_i − p)`` (eq. 5).

Constants of the bars experiment: ``α = 0.1, β = 0.02, γ = 0.02, p = 1/8``; 8×8 grid, each of the
16 horizontal/vertical bars present independently with probability 1/8 (the data:
:func:`biolearn.data.synthetic.bars`); 16 output units. Trained, every unit becomes a detector of
a single bar and fires with probability ≈ ``p``.

**Rate form** (recipe ``foldiak_bars``): :class:`FoldiakRule` holds the constants,
:class:`FoldiakNet` the weights and thresholds, :func:`foldiak_present` relaxes eq. 1 and applies
eqs. 3–5 after every pattern in one ``@njit`` kernel.

**On spike counts** (recipe ``foldiak_spiking``): during a presentation the synapses count spikes,
after it one update turns the counts into Földiák's activities and changes the weights. Each rule
is a :class:`~biolearn.engine.SynapseModel`: per-synapse counters ``n_pre``, ``n_post``
(``on_pre``: ``n_pre += 1``, ``on_post``: ``n_post += 1``) and the event ``"update"``, which
applies the rule and clears the counters; call ``sim.apply_event(proj, "update")`` between
presentations. Activities: ``x_i = n_pre / n_on`` (the input's count relative to the count of an
"on" input), ``y_j = min(n_post / n_ref, 1)``.

- :class:`CountHebbian`, feedforward (eq. 4, the "instar" form):
  ``Δw_ij = β · y_j · (w_scale · x_i − w_ij)``. In units of ``w_scale`` this is ``Δq = βy(x − q)``.
- :class:`CountAntiHebbian`, lateral inhibition (eq. 3):
  ``Δw_ij = −α (y_i y_j − p²)``, ``w_ij ≤ 0`` (Földiák's sign: negative = inhibitory). The engine
  weight of the inhibitory synapse is ``g = g_sign · w_scale · |w|`` with the sign the post
  population needs (:func:`inhibition_sign`): negative for current-based LIF (``gi`` adds to
  ``v``), positive for conductance-based LIF (``gi`` is a conductance towards ``e_i``).
  :func:`lateral` builds the all-but-self projection with that sign.
- :class:`CountThreshold`, adaptive threshold (eq. 5):
  ``Δθ_i = γ · θ_scale · (y_i − p)`` on the neuron variable θ (mV). This one stays NumPy
  (:func:`apply_threshold`): an engine event runs on synapses and writes only synaptic variables,
  and a neuron model has no statements run between presentations.

Counting happens only while the projection is plastic (``sim.set_plastic``), so presentations
without learning leave the counters at zero. The network that uses these rules is
:class:`biolearn.models.foldiak_spiking.SpikingFoldiak`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numba
import numpy as np

from biolearn.engine import Projection, Simulation, SynapseModel, connect
from biolearn.errors import BiolearnError


# ------------------------------------------------------------------------------ rate form
@dataclass(frozen=True)
class FoldiakRule:
    """Constants of Földiák's rules and of the activity relaxation (Földiák 1990, eqs. 1–5)."""

    alpha: float = 0.1                # lateral anti-Hebbian rate (eq. 3)
    beta: float = 0.02                # feedforward Hebbian rate (eq. 4)
    gamma: float = 0.02               # threshold rate (eq. 5)
    p: float = 1.0 / 8.0              # target firing probability
    lam: float = 10.0                 # sigmoid steepness λ (eq. 1)
    dt: float = 0.1                   # Euler step of the relaxation, in units of its time constant
    max_iter: int = 300               # relaxation steps per pattern at most
    tol: float = 1e-4                 # stop when max |Δy*| < tol·dt


@dataclass
class FoldiakNet:
    """Weights and thresholds of a rate Földiák network and its :class:`FoldiakRule`."""

    q: np.ndarray                     # feedforward weights [n_out, n_in]
    w: np.ndarray                     # lateral weights [n_out, n_out], ≤ 0, zero diagonal
    t: np.ndarray                     # thresholds [n_out]
    rule: FoldiakRule = field(default_factory=FoldiakRule)

    @classmethod
    def create(cls, n_in: int, n_out: int, rng: np.random.Generator,
               rule: FoldiakRule | None = None) -> FoldiakNet:
        """Random feedforward weights uniform in [0, 1), zero lateral weights and thresholds.

        The paper starts from random feedforward weights; the thresholds then rise under eq. 5
        until each unit fires with probability ≈ ``p``.
        """
        q = rng.random((n_out, n_in))
        w = np.zeros((n_out, n_out))
        t = np.zeros(n_out)
        return cls(q=q, w=w, t=t, rule=rule or FoldiakRule())


@numba.njit(cache=True)
def _relax(q: np.ndarray, w: np.ndarray, t: np.ndarray, x: np.ndarray, lam: float, dt: float,
           max_iter: int, tol: float, ystar: np.ndarray, ff: np.ndarray) -> int:
    """Euler-integrate ``dy*/dt = f(Qx + W y* − t) − y*`` from 0 to its fixed point (eq. 1)."""
    n_out, n_in = q.shape
    for i in range(n_out):
        s = -t[i]
        for j in range(n_in):
            s += q[i, j] * x[j]
        ff[i] = s
        ystar[i] = 0.0
    n_iter = 0
    for _ in range(max_iter):
        n_iter += 1
        dmax = 0.0
        for i in range(n_out):
            u = ff[i]
            for j in range(n_out):
                u += w[i, j] * ystar[j]
            d = dt * (1.0 / (1.0 + np.exp(-lam * u)) - ystar[i])
            # synchronous update uses the previous y*; store increments first
            ff[n_out + i] = d
            if abs(d) > dmax:
                dmax = abs(d)
        for i in range(n_out):
            ystar[i] += ff[n_out + i]
        if dmax < tol * dt:
            break
    return n_iter


@numba.njit(cache=True)
def _foldiak_kernel(q: np.ndarray, w: np.ndarray, t: np.ndarray, x: np.ndarray,
                    alpha: float, beta: float, gamma: float, p: float, lam: float, dt: float,
                    max_iter: int, tol: float, learn: bool, y_out: np.ndarray) -> int:
    """Present the rows of ``x``; binarised outputs into ``y_out``; learn (eqs. 3–5) if asked.

    Returns the total number of relaxation steps (for diagnostics).
    """
    n_samples = x.shape[0]
    n_out, n_in = q.shape
    ystar = np.zeros(n_out)
    ff = np.zeros(2 * n_out)
    y = np.zeros(n_out)
    p2 = p * p
    steps = 0
    for s in range(n_samples):
        xs = x[s]
        steps += _relax(q, w, t, xs, lam, dt, max_iter, tol, ystar, ff)
        for i in range(n_out):
            y[i] = 1.0 if ystar[i] > 0.5 else 0.0
            y_out[s, i] = y[i]
        if not learn:
            continue
        for i in range(n_out):
            yi = y[i]
            for j in range(n_out):
                if i == j:
                    continue
                v = w[i, j] - alpha * (yi * y[j] - p2)
                w[i, j] = v if v < 0.0 else 0.0
            if yi > 0.0:
                for j in range(n_in):
                    q[i, j] += beta * yi * (xs[j] - q[i, j])
            t[i] += gamma * (yi - p)
    return steps


def foldiak_present(net: FoldiakNet, x: np.ndarray, learn: bool = True) -> np.ndarray:
    """Present the rows of ``x`` in order; returns the binary outputs ``[T, n_out]``.

    With ``learn=True`` the weights and thresholds of ``net`` are updated in place after every
    pattern (Földiák 1990, eqs. 3–5).
    """
    x = np.ascontiguousarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != net.q.shape[1]:
        raise BiolearnError(f"inputs of shape {x.shape} do not match {net.q.shape[1]} input units",
                            "in foldiak_present()", "pass [T, n_in] patterns")
    y = np.zeros((x.shape[0], net.q.shape[0]))
    r = net.rule
    _foldiak_kernel(net.q, net.w, net.t, x, r.alpha, r.beta, r.gamma, r.p, r.lam, r.dt,
                    r.max_iter, r.tol, learn, y)
    return y


# ------------------------------------------------------------------------ on spike counts
#: Name of the rules' between-presentation event.
UPDATE = "update"

_COUNTS = "w : 1\nn_pre : 1\nn_post : 1\n"
_Y = "clip(n_post/n_ref, 0, 1)"

#: Földiák 1990, eq. 4, on spike counts: ``Δw = β y_j (w_scale x_i − w)``.
COUNT_HEBBIAN = SynapseModel(
    "count_hebbian", _COUNTS,
    on_pre="n_pre += 1", on_post="n_post += 1",
    parameters={"beta": 0.02, "w_scale": 1.0, "n_on": 1.0, "n_ref": 1.0},
    learning_rates=("beta",),
    events={UPDATE: f"w += beta*{_Y}*(w_scale*n_pre/n_on - w)\nn_pre = 0\nn_post = 0"})

#: Földiák 1990, eq. 3, on spike counts: Földiák's weight ``−|w|/w_scale`` changes by
#: ``−α (y_i y_j − p²)`` and stays ≤ 0; the engine weight has the sign ``g_sign``.
COUNT_ANTI_HEBBIAN = SynapseModel(
    "count_anti_hebbian", _COUNTS,
    on_pre="n_pre += 1", on_post="n_post += 1",
    parameters={"alpha": 0.1, "p": 0.125, "w_scale": 1.0, "g_sign": -1.0, "n_ref": 1.0},
    learning_rates=("alpha",),
    events={UPDATE: "w = g_sign*w_scale*clip(abs(w)/w_scale + alpha*(clip(n_pre/n_ref, 0, 1)*"
                    f"{_Y} - p**2), 0, inf)\nn_pre = 0\nn_post = 0"})


@dataclass(frozen=True)
class CountHebbian:
    """Feedforward Hebbian rule on spike counts, ``Δw_ij = β y_j (w_scale x_i − w_ij)``.

    Földiák 1990, eq. 4 (β = 0.02 there); with ``y ∈ [0, 1]`` and ``β ≤ 1`` each weight moves
    towards ``w_scale · x_i`` and stays ≥ 0 when the inputs are ≥ 0. ``n_on``: presynaptic spikes
    per presentation that mean ``x = 1``; ``n_ref``: postsynaptic spikes that mean ``y = 1``.
    Use as ``Projection(..., rule=CountHebbian(...))``.
    """

    beta: float = 0.02
    w_scale: float = 1.0
    n_on: float = 1.0
    n_ref: float = 1.0

    definition = COUNT_HEBBIAN

    def values(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class CountAntiHebbian:
    """Lateral anti-Hebbian rule on spike counts, ``Δw_ij = −α (y_i y_j − p²)``, ``w_ij ≤ 0``.

    Földiák 1990, eq. 3 (α = 0.1, p = 1/8 there). ``w`` is Földiák's (non-positive) weight; the
    engine stores ``g_sign · w_scale · |w|`` (``g_sign``: :func:`inhibition_sign`). Both sides count
    with ``n_ref`` spikes meaning ``y = 1``.
    """

    alpha: float = 0.1
    p: float = 1.0 / 8.0
    w_scale: float = 1.0
    n_ref: float = 1.0
    g_sign: float = -1.0

    definition = COUNT_ANTI_HEBBIAN

    def values(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class CountThreshold:
    """Adaptive threshold, ``Δθ_i = γ θ_scale (y_i − p)`` (Földiák 1990, eq. 5; γ = 0.02).

    θ (mV) is the engine's per-neuron threshold shift: a LIF neuron spikes when
    ``v > v_thresh + θ``. Use it with ``theta_rule="none"`` so the engine leaves θ alone.
    """

    gamma: float = 0.02
    p: float = 1.0 / 8.0
    theta_scale: float = 1.0


def count_activity(counts: np.ndarray, n_ref: float) -> np.ndarray:
    """``y = min(n / n_ref, 1)``: spike counts of one presentation as activities in [0, 1]."""
    if n_ref <= 0:
        raise BiolearnError(f"n_ref must be > 0, got {n_ref}", "in count_activity",
                            "give the spike count that means 'fully active'")
    return np.minimum(np.asarray(counts, np.float64) / n_ref, 1.0)


def inhibition_sign(post: Any, target: str = "i") -> float:
    """Sign of an inhibitory engine weight onto population ``post``: −1 if it is current based
    (inhibition = negative ``gi``) or the target is ``"v"``, +1 if conductance based (a positive
    conductance towards ``e_i``)."""
    return -1.0 if target == "v" or getattr(post, "synapse", "current") == "current" else 1.0


def lateral(name: str, pop: Any, rule: CountAntiHebbian, target: str = "i",
            w: Any = 0.0) -> Projection:
    """All-but-self inhibitory projection of population ``pop`` onto itself learning with
    ``rule``, its ``g_sign`` set for ``pop`` (:func:`inhibition_sign`)."""
    if target in ("e", "ge"):
        raise BiolearnError("lateral anti-Hebbian weights must be inhibitory",
                            f"in projection '{name}'", "use target 'i' (or 'v')")
    rule = replace(rule, g_sign=inhibition_sign(pop, target))
    return connect.all_but_self(name, pop.name, pop.name, pop.n, w, target=target, rule=rule)


def apply_threshold(sim: Simulation, pop: str, y: np.ndarray, rule: CountThreshold) -> None:
    """Apply :class:`CountThreshold` to the threshold shifts θ of population ``pop``."""
    sl = sim.slice(pop)
    sim.theta[sl] += rule.gamma * rule.theta_scale * (np.asarray(y, np.float64) - rule.p)
