"""Hebbian and anti-Hebbian rules on spiking engine projections, and a spiking Földiák network.

The rules act between presentations on the spike counts of one presentation (rate-based Hebbian
learning on spike counts), on any projection of a compiled :class:`biolearn.engine.Simulation`
(dense or given per synapse), through its public weight and threshold arrays:

- :class:`CountHebbian`, feedforward (Földiák 1990, eq. 4, the "instar" form):
  ``Δw_ij = β · y_j · (w_scale · x_i − w_ij)``, with ``x_i`` the presynaptic and ``y_j`` the
  postsynaptic activity of the presentation. In units of ``w_scale`` this is ``Δq = βy(x − q)``.
- :class:`CountAntiHebbian`, lateral inhibition (Földiák 1990, eq. 3):
  ``Δw_ij = −α (y_i y_j − p²)``, ``w_ij ≤ 0`` (Földiák's sign: negative = inhibitory). The engine
  weight of the inhibitory (target ``"i"``) synapse is ``g = w_scale · |w|`` with the sign the
  post population needs: negative for current-based LIF (``gi`` adds to ``v``), positive for
  conductance-based LIF (``gi`` is a conductance towards ``e_i``).
- :class:`CountThreshold`, adaptive threshold (Földiák 1990, eq. 5):
  ``Δθ_i = γ · θ_scale · (y_i − p)`` on the engine's per-neuron threshold shift θ (mV).

Activities from spike counts: ``x_i = n_i / (r_on · T)`` (the input's count relative to the
count of an "on" input), ``y_j = min(n_j / n_ref, 1)``.

:class:`SpikingFoldiak` builds the Földiák network from engine parts: Poisson inputs (pixel on
→ ``rate_on``), current-based LIF outputs, a dense feedforward projection ``ff`` (target
``"e"``) and an all-but-self inhibitory projection ``lat`` (target ``"i"``); each presentation
resets the membrane state (as Földiák's relaxation starts from ``y* = 0``), runs ``t_present``
ms, then applies the three rules.

Trace-based variant (``ff_rule="stdp"``): the feedforward weights learn during the presentation
with the engine's additive :class:`biolearn.rules.stdp.PairSTDP` restricted to its Hebbian half
(``a_minus = 0``: on a post spike ``w += a_plus · x_pre``, Song, Miller & Abbott 2000), whose
mean change over a presentation is ``a_plus τ_pre r_pre n_post``, i.e. Hebbian in the rates.
Pair STDP has no postsynaptic-only term, so it cannot express the ``−β y q`` decay of eq. 4;
synaptic scaling after each presentation (each output's weights sum to ``ff_sum``) supplies the
competition instead (Hebb + normalisation, von der Malsburg 1973). ``ff_sum = 21`` is the sum of
Földiák's fixed point for a bar detector on 8×8 bars: ``8 + 56 · (1 − (7/8)²)``.

Units: ms, mV, Hz. ``u_unit`` is the mean depolarisation (mV) of one unit of Földiák's net input
``Σ q_ij x_j`` (one fully weighted "on" pixel): for a current-based LIF the mean of ``ge`` is
``w · r · τe`` per input, so the feedforward scale is ``u_unit / (r_on · τe)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numba
import numpy as np

from biolearn.engine import LIF, Network, PoissonSource, Simulation, connect
from biolearn.errors import BiolearnError
from biolearn.rules.foldiak import BarScore, single_bars
from biolearn.rules.stdp import PairSTDP


# ----------------------------------------------------------------------------- rules
@dataclass(frozen=True)
class CountHebbian:
    """Feedforward Hebbian rule on spike counts, ``Δw_ij = β y_j (w_scale x_i − w_ij)``.

    Földiák 1990, eq. 4 (β = 0.02 there); with ``y ∈ [0, 1]`` and ``β ≤ 1`` each weight moves
    towards ``w_scale · x_i`` and stays ≥ 0 when the inputs are ≥ 0.
    """

    beta: float = 0.02
    w_scale: float = 1.0


@dataclass(frozen=True)
class CountAntiHebbian:
    """Lateral anti-Hebbian rule on spike counts, ``Δw_ij = −α (y_i y_j − p²)``, ``w_ij ≤ 0``.

    Földiák 1990, eq. 3 (α = 0.1, p = 1/8 there). ``w`` is Földiák's (non-positive) weight; the
    engine stores ``w_scale · |w|`` with the sign of inhibition of the post population.
    """

    alpha: float = 0.1
    p: float = 1.0 / 8.0
    w_scale: float = 1.0


@dataclass(frozen=True)
class CountThreshold:
    """Adaptive threshold, ``Δθ_i = γ θ_scale (y_i − p)`` (Földiák 1990, eq. 5; γ = 0.02).

    θ (mV) is the engine's per-neuron threshold shift: a LIF neuron spikes when
    ``v > v_thresh + θ``. Use it with ``theta_rule="none"`` so the engine leaves θ alone.
    """

    gamma: float = 0.02
    p: float = 1.0 / 8.0
    theta_scale: float = 1.0


@numba.njit(cache=True)
def hebbian_update(w: np.ndarray, pre: np.ndarray, post: np.ndarray, x: np.ndarray,
                   y: np.ndarray, beta: float, w_scale: float) -> None:
    """In place over synapses ``s``: ``w[s] += β y[post[s]] (w_scale x[pre[s]] − w[s])``."""
    for s in range(w.shape[0]):
        yj = y[post[s]]
        if yj != 0.0:
            w[s] += beta * yj * (w_scale * x[pre[s]] - w[s])


@numba.njit(cache=True)
def anti_hebbian_update(g: np.ndarray, pre: np.ndarray, post: np.ndarray, y: np.ndarray,
                        alpha: float, p: float, w_scale: float) -> None:
    """In place over inhibitory synapses ``s`` (engine weights ``g = ±w_scale·|w|``):
    ``w ← min(w − α (y_pre y_post − p²), 0)`` with Földiák's ``w = −|g| / w_scale``.

    The sign of each stored weight is kept (the sign of inhibition of the post population);
    zero weights take the sign of ``w_scale``. Self-synapses (pre == post) are left at 0.
    """
    p2 = p * p
    for s in range(g.shape[0]):
        i, j = pre[s], post[s]
        if i == j:
            g[s] = 0.0
            continue
        sgn = 1.0 if w_scale > 0.0 else -1.0
        if g[s] < 0.0:
            sgn = -1.0
        elif g[s] > 0.0:
            sgn = 1.0
        mag = abs(w_scale)
        w = -abs(g[s]) / mag - alpha * (y[i] * y[j] - p2)
        if w > 0.0:
            w = 0.0
        g[s] = sgn * mag * (-w)


def count_activity(counts: np.ndarray, n_ref: float) -> np.ndarray:
    """``y = min(n / n_ref, 1)``: spike counts of one presentation as activities in [0, 1]."""
    if n_ref <= 0:
        raise BiolearnError(f"n_ref must be > 0, got {n_ref}", "in count_activity",
                            "give the spike count that means 'fully active'")
    return np.minimum(np.asarray(counts, np.float64) / n_ref, 1.0)


def _projection(sim: Simulation, name: str) -> Any:
    if name not in sim.proj_index:
        raise BiolearnError(f"unknown projection '{name}'", "in a spiking Hebbian rule",
                            "use one of " + ", ".join(sim.proj_index))
    return sim.net.projections[sim.proj_index[name]]


def apply_hebbian(sim: Simulation, proj: str, x: np.ndarray, y: np.ndarray,
                  rule: CountHebbian) -> None:
    """Apply :class:`CountHebbian` to projection ``proj`` of ``sim`` (pre activity ``x``, post
    activity ``y`` of one presentation)."""
    q = _projection(sim, proj)
    w = sim.weights(proj).reshape(-1)
    hebbian_update(w, q.i, q.j, np.asarray(x, np.float64), np.asarray(y, np.float64),
                   float(rule.beta), float(rule.w_scale))
    sim.set_weights(proj, w)


def inhibition_sign(sim: Simulation, proj: str) -> float:
    """−1 if the post population of ``proj`` is current based (inhibition = negative ``gi``) or
    the target is ``"v"``, +1 if it is conductance based (a positive conductance towards
    ``e_i``)."""
    q = _projection(sim, proj)
    post = sim.net.population(q.post)
    return -1.0 if q.target == "v" or post.synapse == "current" else 1.0


def apply_anti_hebbian(sim: Simulation, proj: str, y: np.ndarray, rule: CountAntiHebbian) -> None:
    """Apply :class:`CountAntiHebbian` to the lateral projection ``proj`` (pre and post in the
    same population with activity ``y``)."""
    q = _projection(sim, proj)
    if q.pre != q.post:
        raise BiolearnError("anti-Hebbian lateral rule needs a recurrent projection",
                            f"in projection '{proj}' ({q.pre} → {q.post})",
                            "connect a population to itself (connect.all_but_self)")
    if q.target == "e":
        raise BiolearnError("lateral anti-Hebbian weights must be inhibitory",
                            f"in projection '{proj}'", "use target 'i' (or 'v')")
    g = sim.weights(proj).reshape(-1)
    scale = abs(float(rule.w_scale)) * inhibition_sign(sim, proj)
    anti_hebbian_update(g, q.i, q.j, np.asarray(y, np.float64), float(rule.alpha),
                        float(rule.p), scale)
    sim.set_weights(proj, g)


def apply_threshold(sim: Simulation, pop: str, y: np.ndarray, rule: CountThreshold) -> None:
    """Apply :class:`CountThreshold` to the threshold shifts θ of population ``pop``."""
    sl = sim.slice(pop)
    sim.theta[sl] += rule.gamma * rule.theta_scale * (np.asarray(y, np.float64) - rule.p)


# ----------------------------------------------------------------------------- Földiák network
@dataclass
class SpikingFoldiakParams:
    """Constants of the spiking Földiák network (learning rates from Földiák 1990)."""

    alpha: float = 0.1          # lateral anti-Hebbian rate (eq. 3)
    beta: float = 0.02          # feedforward Hebbian rate (eq. 4)
    gamma: float = 0.02         # threshold rate (eq. 5)
    p: float = 1.0 / 8.0        # target activity per presentation
    rate_on: float = 200.0      # Hz, input rate of an "on" pixel
    rate_off: float = 0.0       # Hz, input rate of an "off" pixel
    t_present: float = 40.0     # ms per presentation
    n_ref: float = 2.0          # spikes that count as a fully active output (y = 1)
    u_unit: float = 2.0         # mV of mean depolarisation per unit of Földiák net input Σqx
    lat_unit: float = 4.0       # mV jump of gi per output spike per unit of |w|
    dt: float = 0.5             # ms
    tau_m: float = 10.0         # ms
    tau_e: float = 5.0          # ms
    tau_i: float = 5.0          # ms
    t_ref: float = 2.0          # ms
    v_rest: float = -60.0       # mV
    v_thresh: float = -50.0     # mV (θ shifts it)
    ff_rule: str = "count"      # "count": CountHebbian; "stdp": PairSTDP + synaptic scaling
    stdp_a_plus: float = 0.004  # mV per post spike per unit pre trace ("stdp")
    stdp_tau_pre: float = 20.0  # ms, pre trace time constant ("stdp")
    ff_sum: float = 21.0        # Σ_i q_ij kept by synaptic scaling ("stdp"), Földiák units


@dataclass
class SpikingFoldiak:
    """A Földiák (1990) network of LIF neurons on the engine; see the module docstring."""

    sim: Simulation
    par: SpikingFoldiakParams
    n_in: int
    n_out: int

    @classmethod
    def create(cls, n_in: int, n_out: int, rng: np.random.Generator,
               par: SpikingFoldiakParams | None = None) -> SpikingFoldiak:
        """Feedforward weights ``w_scale · U[0, 1)`` (Földiák's random start), no lateral
        inhibition, θ = 0."""
        par = par or SpikingFoldiakParams()
        net = Network(dt=par.dt)
        net.add(PoissonSource("input", n_in, rates=0.0))
        net.add(LIF("output", n_out, synapse="current", integration="exact", tau_m=par.tau_m,
                    tau_e=par.tau_e, tau_i=par.tau_i, t_ref=par.t_ref, v_rest=par.v_rest,
                    v_reset=par.v_rest, v_thresh=par.v_thresh))
        if par.ff_rule not in ("count", "stdp"):
            raise BiolearnError(f"ff_rule={par.ff_rule!r} is not supported",
                                "in SpikingFoldiakParams", "use 'count' or 'stdp'")
        rule = None
        if par.ff_rule == "stdp":  # Hebbian half of Song et al. 2000 pair STDP, no depression
            rule = PairSTDP(a_plus=par.stdp_a_plus, a_minus=0.0, tau_pre=par.stdp_tau_pre,
                            tau_post=par.stdp_tau_pre, w_min=0.0, w_max=np.inf)
        q0 = rng.random((n_in, n_out))
        net.connect(connect.dense("ff", "input", "output", cls.ff_scale(par) * q0, target="e",
                                  rule=rule))
        net.connect(connect.all_but_self("lat", "output", "output", n_out, 0.0, target="i"))
        sim = net.compile(seed=int(rng.integers(2**31)))
        out = cls(sim, par, n_in, n_out)
        if rule is not None:
            out.scale_ff()
        return out

    def scale_ff(self) -> None:
        """Synaptic scaling of the "stdp" variant: each output's feedforward weights sum to
        ``ff_sum`` (Földiák units)."""
        self.sim.normalize("ff", self.par.ff_sum * self.ff_scale(self.par))

    @staticmethod
    def ff_scale(par: SpikingFoldiakParams) -> float:
        """Feedforward weight (mV jump of ``ge``) of ``q = 1``: ``u_unit / (r_on τe)``."""
        return par.u_unit / (par.rate_on / 1000.0 * par.tau_e)

    @property
    def rules(self) -> tuple[CountHebbian, CountAntiHebbian, CountThreshold]:
        p = self.par
        return (CountHebbian(p.beta, self.ff_scale(p)),
                CountAntiHebbian(p.alpha, p.p, p.lat_unit),
                CountThreshold(p.gamma, p.p, p.u_unit))

    @property
    def q(self) -> np.ndarray:
        """Feedforward weights in Földiák's units, ``[n_out, n_in]``."""
        return self.sim.weights("ff").T / self.ff_scale(self.par)

    @property
    def w(self) -> np.ndarray:
        """Lateral weights in Földiák's units (≤ 0, zero diagonal), ``[n_out, n_out]``."""
        q = _projection(self.sim, "lat")
        out = np.zeros((self.n_out, self.n_out))
        out[q.j, q.i] = -np.abs(self.sim.weights("lat")) / self.par.lat_unit
        return out

    @property
    def theta(self) -> np.ndarray:
        """Threshold shifts θ (mV)."""
        return self.sim.theta[self.sim.slice("output")].copy()

    def present(self, x: np.ndarray, learn: bool = True,
                spikes: list | None = None) -> np.ndarray:
        """Present the rows of ``x`` (pixel values in [0, 1]); returns the output spike counts
        ``[T, n_out]``. With ``learn`` the three rules are applied after each presentation.
        If a list ``spikes`` is given, the output spikes of each presentation are appended to
        it as ``(times_ms, unit)`` with times relative to the presentation onset."""
        x = np.asarray(x, np.float64)
        if x.ndim != 2 or x.shape[1] != self.n_in:
            raise BiolearnError(f"inputs of shape {x.shape} do not match {self.n_in} inputs",
                                "in SpikingFoldiak.present", "pass [T, n_in] patterns")
        p, sim = self.par, self.sim
        heb, anti, thr = self.rules
        n_on = p.rate_on / 1000.0 * p.t_present
        counts = np.zeros((x.shape[0], self.n_out), np.int64)
        stdp = p.ff_rule == "stdp"
        if stdp:
            sim.set_plastic("ff", learn)
        sim.set_recording(["output"], spikes is not None)
        for s in range(x.shape[0]):
            sim.reset_state()
            sim.set_rates("input", p.rate_off + (p.rate_on - p.rate_off) * x[s])
            sim.reset_counts()
            t0 = sim.t * sim.dt
            out = sim.run(p.t_present)
            if spikes is not None:
                tt, ids = out["spikes"]["output"]
                spikes.append((tt - t0, ids))
            n_out = sim.spike_counts("output")
            counts[s] = n_out
            if learn:
                y = count_activity(n_out, p.n_ref)
                if stdp:  # the weights changed on spikes during the run; rescale them
                    self.scale_ff()
                else:
                    apply_hebbian(sim, "ff", sim.spike_counts("input") / n_on, y, heb)
                apply_anti_hebbian(sim, "lat", y, anti)
                apply_threshold(sim, "output", y, thr)
        return counts


def score_responses(resp: np.ndarray) -> BarScore:
    """Match units to bars from a binary ``[n_out, n_bars]`` response table, as
    :func:`biolearn.rules.foldiak.score_bars` does for the rate network."""
    resp = np.asarray(resp, bool)
    counts = resp.sum(axis=1)
    unit_bar = np.where(counts == 1, resp.argmax(axis=1), -1)
    det = unit_bar[unit_bar >= 0]
    per_bar = np.bincount(det, minlength=resp.shape[1])
    one_to_one = bool(np.all(per_bar == 1) and np.all(unit_bar >= 0))
    return BarScore(resp.astype(np.float64), unit_bar, int((counts == 1).sum()),
                    int(np.unique(det).size), one_to_one)


def bars_with_unique_detector(score: BarScore) -> int:
    """Bars detected by exactly one single-bar detector unit."""
    det = score.unit_bar[score.unit_bar >= 0]
    return int(np.sum(np.bincount(det, minlength=score.response.shape[1]) == 1))


def probe_bars(net: SpikingFoldiak, size: int = 8, repeats: int = 10) -> np.ndarray:
    """Fraction of ``repeats`` presentations of each single bar in which each unit fires at
    least ``n_ref/2`` spikes (no learning): ``[n_out, 2·size]``."""
    sb = np.repeat(single_bars(size), repeats, axis=0)
    c = net.present(sb, learn=False)
    act = c >= max(net.par.n_ref / 2.0, 1.0)
    return act.reshape(2 * size, repeats, net.n_out).mean(axis=1).T
