"""STDP with device synapses: plastic projections of a biolearn simulation stored in devices.

Any plastic projection of a compiled :class:`~biolearn.engine.simulation.Simulation` can be
*attached* to an array of conductance devices (:mod:`biolearn.hardware.devices`, weight mapping
:mod:`biolearn.hardware.synapses`). The scheme, per presentation:

1. The engine keeps a float *shadow* of the projection's weights. During a presentation its STDP
   kernel accumulates the rule's changes there, on every spike event, exactly as in software.
2. At a write point (:func:`commit`, called by the recipe at the end of each presentation and
   again after synaptic scaling, which on hardware is a write as well) the accumulated change
   ΔW = W_shadow − W_device becomes programming pulses through
   :func:`biolearn.hardware.update.apply_delta` with the chosen scheme (``ideal``,
   ``bidirectional`` = NeuroSim, ``unidirectional`` = Lim et al. 2017).
3. The engine's weights are then overwritten with the weights the devices now represent (through
   the nominal conductance mapping), so the network always computes with the device state:
   finite levels, LTP/LTD nonlinearity, C2C write noise, D2D variation, stuck devices.

Writing once per presentation is a design choice. It follows the per-example writes of crossbar
online learning (Burr et al., IEEE TED 62:3498, 2015; NeuroSim, Chen, Peng & Yu, IEEE TCAD
37:3067, 2018), where the array is programmed row/column-parallel between inputs while the
periphery holds the pending update. The event-level alternative, a programming event on every
spike (e.g. on each post-synaptic spike, Querlioz et al., IEEE Trans. Nanotechnol. 12:288, 2013),
would need the device write inside the engine's spike kernel; it is not implemented. With
batching, how ΔW becomes a whole number of pulse steps (``rounding``) matters, because most
per-image STDP and scaling changes are smaller than one step:

* ``nearest`` (NeuroSim): round to the nearest step; a change below half a step is lost.
* ``stochastic``: floor plus one more step with probability equal to the remainder, so the
  expected change equals ΔW (stochastic rounding, Gupta et al., ICML 2015; the role stochastic
  switching plays for few-level STDP synapses, Suri et al., IEEE TED 60:2402, 2013).
* ``accumulate``: nearest, with the remainder kept per synapse in a digital accumulator and
  added to the next write (mixed precision, Nandakumar et al., Front. Neurosci. 14:406, 2020,
  with ε = one nominal step).

Weight mappings for a projection whose weights live in [w_lo, w_hi] (from the rule's bounds; an
unbounded lower bound is taken as 0, as conductance synapses are non-negative):

* ``unipolar``: one device per synapse, w = w_lo + (w_hi − w_lo)(G − G_min)/(G_max − G_min)
  (implemented as the ``offset`` mapping of :mod:`~biolearn.hardware.synapses` with
  w_max = (w_hi − w_lo)/2, shifted by (w_hi + w_lo)/2); one pulse ≈ (w_hi − w_lo)/P.
* ``differential``: a pair, w = w_max (G⁺ − G⁻)/(G_max − G_min) with w_max = max(|w_lo|, |w_hi|),
  needed by the unidirectional scheme. The network sees the pair's weight clipped to
  [w_lo, w_hi] (an excitatory conductance synapse cannot go negative).

Not modelled here: read noise and drift while the network runs (the engine reads the true
conductances), and peripheral circuit cost beyond the pulse-energy proxy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from biolearn.errors import BiolearnError

from .devices import DeviceParams
from .synapses import DeviceSynapses, make_synapses
from .update import SCHEMES, UpdateStats, apply_delta

MAPPINGS = ("unipolar", "differential")
ROUNDINGS = ("nearest", "stochastic", "accumulate")


@dataclass
class DeviceProjection:
    """One plastic projection held by devices, and the totals of everything written to it."""

    name: str
    syn: DeviceSynapses
    scheme: str
    mapping: str
    w_lo: float
    w_hi: float
    shift: float
    shape: tuple
    w_seen: np.ndarray  # flat: the weights the engine was last given (device state, clipped)
    rounding: str = "nearest"
    residual: np.ndarray | None = None  # sub-step remainders (``rounding="accumulate"``)
    totals: dict = field(default_factory=dict)  # tag -> UpdateStats
    writes: int = 0  # commits
    synapse_writes: int = 0  # (synapse, commit) pairs with at least one pulse or a change

    @property
    def level(self) -> float:
        """Nominal weight change of one write step (one pulse, or one pulse pair for the
        bidirectional scheme on a differential pair) on a linear device."""
        nom = self.syn.pos.nominal
        if self.mapping == "unipolar":
            return (self.w_hi - self.w_lo) / nom[2]
        return self.syn.w_max * (2.0 if self.scheme == "bidirectional" else 1.0) / nom[2]

    def device_weights(self) -> np.ndarray:
        """Weights the devices represent, in the projection's units, clipped to [w_lo, w_hi]."""
        return np.clip(self.syn.weights() + self.shift, self.w_lo, self.w_hi)

    def total(self) -> UpdateStats:
        """Sum over all tags."""
        out = UpdateStats()
        for s in self.totals.values():
            _add(out, s)
        return out


def _add(a: UpdateStats, b: UpdateStats) -> None:
    a.ltp_pulses += b.ltp_pulses
    a.ltd_pulses += b.ltd_pulses
    a.energy_j += b.energy_j
    a.refreshes += b.refreshes
    a.refresh_pulses += b.refresh_pulses


def weight_range(sim: Any, name: str) -> tuple[float, float]:
    """[w_lo, w_hi] of a plastic projection from its rule (−∞ lower bound → 0)."""
    k = sim.proj_index.get(name) if hasattr(sim, "proj_index") else None
    if k is None:
        raise BiolearnError(f"unknown projection '{name}'", "in device synapses",
                            "name a projection of the network")
    rule = sim.net.projections[k].rule
    if rule is None:
        raise BiolearnError(f"projection '{name}' is not plastic", "in device synapses",
                            "give it an STDP rule or leave it off the device list")
    from biolearn.rules.stdp import P_WMAX, P_WMIN

    par = rule.params()
    lo, hi = float(par[P_WMIN]), float(par[P_WMAX])
    lo = 0.0 if not np.isfinite(lo) else lo
    if not (np.isfinite(hi) and hi > lo):
        raise BiolearnError(f"projection '{name}' has no finite weight range [{lo}, {hi}]",
                            "in device synapses", "set the rule's w_max")
    return lo, hi


def attach(sim: Any, name: str, device: DeviceParams | str | dict, rng: np.random.Generator,
           scheme: str = "bidirectional", mapping: str = "auto", program: str = "exact",
           rounding: str = "nearest") -> DeviceProjection:
    """Store projection ``name`` of ``sim`` in devices and hand the engine the device weights.

    The current engine weights are programmed onto fresh devices: ``program="exact"`` sets the
    conductances directly (NeuroSim's initial mapping), ``"pulses"`` by reset + LTP pulses with
    program-and-verify (the initial weights then land on the device levels).
    ``mapping="auto"``: differential for ``unidirectional``, else unipolar. ``rounding``: how
    ΔW becomes whole pulse steps (``nearest``, ``stochastic``, ``accumulate``; module docs).
    """
    if scheme not in SCHEMES:
        raise BiolearnError(f"unknown update scheme '{scheme}'", "in device synapses",
                            "choose one of: " + ", ".join(SCHEMES))
    if mapping == "auto":
        mapping = "differential" if scheme == "unidirectional" else "unipolar"
    if mapping not in MAPPINGS:
        raise BiolearnError(f"unknown mapping '{mapping}'", "in device synapses",
                            "choose one of: auto, " + ", ".join(MAPPINGS))
    if scheme == "unidirectional" and mapping != "differential":
        raise BiolearnError("the unidirectional scheme needs a differential pair",
                            "in device synapses", "use mapping: differential (or auto)")
    if rounding not in ROUNDINGS:
        raise BiolearnError(f"unknown rounding '{rounding}'", "in device synapses",
                            "choose one of: " + ", ".join(ROUNDINGS))
    if program not in ("exact", "pulses"):
        raise BiolearnError(f"unknown programming mode '{program}'", "in device synapses",
                            "choose exact or pulses")
    lo, hi = weight_range(sim, name)
    w0 = sim.weights(name)
    shape = w0.shape
    w0 = np.clip(w0.ravel(), lo, hi)
    if mapping == "unipolar":
        w_max, shift, smap = 0.5 * (hi - lo), 0.5 * (hi + lo), "offset"
    else:
        w_max, shift, smap = max(abs(lo), abs(hi)), 0.0, "differential"
    syn = make_synapses(device, w0.size, rng, mapping=smap, w_max=w_max, w_init=w0 - shift,
                        exact=program == "exact")
    dp = DeviceProjection(name, syn, scheme, mapping, lo, hi, shift, shape, w0, rounding,
                          np.zeros(w0.size) if rounding == "accumulate" else None)
    dp.w_seen = dp.device_weights()
    sim.set_weights(name, dp.w_seen.reshape(shape))
    return dp


def _nominal_steps(x: np.ndarray, level: float) -> np.ndarray:
    """Signed write steps the scheme derives from ``x`` (round half away from zero, as
    :func:`biolearn.hardware.update.quantise_pulses`)."""
    return np.sign(x) * np.floor(np.abs(x) / level + 0.5)


def commit(sim: Any, dp: DeviceProjection, rng: np.random.Generator,
           tag: str = "write") -> UpdateStats:
    """Write the change accumulated in the engine since the last commit to the devices.

    ΔW = W_engine − W_seen (+ the accumulated remainder) is rounded to whole steps as
    ``dp.rounding`` says and goes through ``apply_delta``; the engine's weights become the
    devices' weights. Returns the pulses/energy of this write (also added to
    ``dp.totals[tag]``).
    """
    w = sim.weights(dp.name).ravel()
    dw = w - dp.w_seen
    if dp.scheme != "ideal":
        lv = dp.level
        if dp.rounding == "accumulate":  # Nandakumar et al. 2020: chi -= n * epsilon
            dw += dp.residual
            n = _nominal_steps(dw, lv)
            dp.residual[:] = dw - n * lv
            dw = n * lv
        elif dp.rounding == "stochastic":  # E[n] = dW / step
            m = np.abs(dw) / lv
            n = np.floor(m)
            n += rng.random(n.size) < (m - n)
            dw = np.sign(dw) * n * lv
    if not np.any(dw):
        return UpdateStats()
    g_before = dp.syn.pos.g.copy()
    gn_before = None if dp.syn.neg is None else dp.syn.neg.g.copy()
    _, stats = apply_delta(dp.syn, dw, dp.scheme, rng)
    changed = dp.syn.pos.g != g_before
    if gn_before is not None:
        changed |= dp.syn.neg.g != gn_before
    dp.synapse_writes += int(np.count_nonzero(changed))
    dp.w_seen = dp.device_weights()
    sim.set_weights(dp.name, dp.w_seen.reshape(dp.shape))
    dp.writes += 1
    _add(dp.totals.setdefault(tag, UpdateStats()), stats)
    return stats


@dataclass
class DeviceSynapseSet:
    """Several device projections of one simulation, written together.

    ``rng`` supplies the C2C noise of every write (seeded, so runs are reproducible)."""

    projections: dict[str, DeviceProjection]
    rng: np.random.Generator

    def commit(self, sim: Any, tag: str = "write") -> UpdateStats:
        """Commit every projection; returns the summed stats of this write."""
        out = UpdateStats()
        for dp in self.projections.values():
            _add(out, commit(sim, dp, self.rng, tag))
        return out

    def resync(self, sim: Any) -> None:
        """Re-program every device from the engine's current weights (exact mapping), e.g.
        after a checkpoint was loaded into ``sim``; pulse totals are kept."""
        for dp in self.projections.values():
            from .synapses import program_weights

            w = np.clip(sim.weights(dp.name).ravel(), dp.w_lo, dp.w_hi)
            program_weights(dp.syn, w - dp.shift, self.rng, exact=True)
            dp.w_seen = dp.device_weights()
            sim.set_weights(dp.name, dp.w_seen.reshape(dp.shape))
            if dp.residual is not None:
                dp.residual[:] = 0.0

    def summary(self) -> dict:
        """Totals per projection and tag, JSON-ready: pulses, energy proxy (J), refreshes."""
        out: dict = {}
        tot = UpdateStats()
        for name, dp in self.projections.items():
            d = {tag: _stats_dict(s) for tag, s in dp.totals.items()}
            t = dp.total()
            d["total"] = _stats_dict(t)
            d["writes"] = dp.writes
            d["synapse_writes"] = dp.synapse_writes
            d["n_synapses"] = dp.syn.n
            d["level"] = dp.level
            out[name] = d
            _add(tot, t)
        out["total"] = _stats_dict(tot)
        return out


def _stats_dict(s: UpdateStats) -> dict:
    return {"ltp_pulses": s.ltp_pulses, "ltd_pulses": s.ltd_pulses, "pulses": s.pulses,
            "energy_j": s.energy_j, "refreshes": s.refreshes,
            "refresh_pulses": s.refresh_pulses}


def attach_all(sim: Any, names: list[str], device: DeviceParams | str | dict,
               rng: np.random.Generator, scheme: str = "bidirectional", mapping: str = "auto",
               program: str = "exact", rounding: str = "nearest") -> DeviceSynapseSet:
    """:func:`attach` each named projection (same device type and scheme); the returned set
    keeps ``rng`` for the writes."""
    if len(set(names)) != len(names):
        raise BiolearnError("a projection is listed twice", "in device synapses",
                            "name each projection once")
    projs = {n: attach(sim, n, device, rng, scheme, mapping, program, rounding)
             for n in names}
    return DeviceSynapseSet(projs, rng)
