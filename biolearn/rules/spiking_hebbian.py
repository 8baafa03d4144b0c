"""Földiák's (1990) Hebbian and anti-Hebbian rules on the spike counts of a presentation, as
engine definitions.

Rate-based Hebbian learning on spike counts: during a presentation the synapses count spikes,
after it one update turns the counts into Földiák's activities and changes the weights. Each rule
is a :class:`~biolearn.engine.SynapseModel`: per-synapse counters ``n_pre``, ``n_post``
(``on_pre``: ``n_pre += 1``, ``on_post``: ``n_post += 1``) and the event ``"update"``, which
applies the rule and clears the counters; call ``sim.apply_event(proj, "update")`` between
presentations. Activities: ``x_i = n_pre / n_on`` (the input's count relative to the count of an
"on" input), ``y_j = min(n_post / n_ref, 1)``.

- :class:`CountHebbian`, feedforward (Földiák 1990, eq. 4, the "instar" form):
  ``Δw_ij = β · y_j · (w_scale · x_i − w_ij)``. In units of ``w_scale`` this is ``Δq = βy(x − q)``.
- :class:`CountAntiHebbian`, lateral inhibition (Földiák 1990, eq. 3):
  ``Δw_ij = −α (y_i y_j − p²)``, ``w_ij ≤ 0`` (Földiák's sign: negative = inhibitory). The engine
  weight of the inhibitory synapse is ``g = g_sign · w_scale · |w|`` with the sign the post
  population needs (:func:`inhibition_sign`): negative for current-based LIF (``gi`` adds to
  ``v``), positive for conductance-based LIF (``gi`` is a conductance towards ``e_i``).
  :func:`lateral` builds the all-but-self projection with that sign.
- :class:`CountThreshold`, adaptive threshold (Földiák 1990, eq. 5):
  ``Δθ_i = γ · θ_scale · (y_i − p)`` on the neuron variable θ (mV). This one stays NumPy
  (:func:`apply_threshold`): an engine event runs on synapses and writes only synaptic variables,
  and a neuron model has no statements run between presentations.

Counting happens only while the projection is plastic (``sim.set_plastic``), so presentations
without learning leave the counters at zero. The network that uses these rules is
:class:`biolearn.models.foldiak_spiking.SpikingFoldiak`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from biolearn.engine import Projection, Simulation, SynapseModel, connect
from biolearn.errors import BiolearnError

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
