"""Weights stored in devices: the weight <-> conductance mapping over flat arrays.

Two mappings (Chen, Peng & Yu, TCAD 2018, Sec. IV; Burr et al., IEEE TED 62:3498, 2015):

* ``offset``: one device per weight, read against a reference at mid-range conductance,
  w = w_max (2 (G - G_min) / (G_max - G_min) - 1), w in [-w_max, w_max] (NeuroSim's mapping).
* ``differential``: a pair per weight, w = w_max (G+ - G-) / (G_max - G_min).

The mapping uses the *nominal* G_min, G_max of the device type: peripheral circuits do not know a
device's own range, so device-to-device range variation shows up as weight error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numba
import numpy as np

from biolearn.errors import BiolearnError

from .devices import (
    C_GMAX,
    C_GMIN,
    C_PUP,
    DeviceArray,
    DeviceParams,
    curve_g,
    curve_x,
    make_devices,
    write_device,
)

MAPPINGS = {"offset": 0, "differential": 1}


@dataclass
class DeviceSynapses:
    """``n`` synaptic weights held by devices. ``neg`` is None for the offset mapping."""

    pos: DeviceArray
    neg: DeviceArray | None
    mapping: str
    w_max: float

    @property
    def n(self) -> int:
        return self.pos.n

    @property
    def mapping_code(self) -> int:
        return MAPPINGS[self.mapping]

    def neg_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(g, prm, stuck) of the G- devices, or 1-element dummies for the offset mapping."""
        if self.neg is None:
            return np.zeros(1), self.pos.prm[:1], np.zeros(1, dtype=np.int8)
        return self.neg.g, self.neg.prm, self.neg.stuck

    def weights(self) -> np.ndarray:
        """Represented weights from the true (noise-free, undrifted) conductances."""
        return conductance_to_weight(self.pos.g, None if self.neg is None else self.neg.g,
                                     self.pos.nominal, self.w_max)

    def copy(self) -> DeviceSynapses:
        return DeviceSynapses(self.pos.copy(), None if self.neg is None else self.neg.copy(),
                              self.mapping, self.w_max)

    @property
    def weight_step(self) -> float:
        """Nominal weight change of one LTP pulse on a linear device (one level)."""
        nom = self.pos.nominal
        return (2.0 if self.mapping == "offset" else 1.0) * self.w_max / nom[2]


def conductance_to_weight(g_pos: np.ndarray, g_neg: np.ndarray | None, nominal: np.ndarray,
                          w_max: float) -> np.ndarray:
    """Weights from conductances (offset mapping if ``g_neg`` is None, else differential)."""
    d = nominal[1] - nominal[0]
    if g_neg is None:
        return w_max * (2.0 * (g_pos - nominal[0]) / d - 1.0)
    return w_max * (g_pos - g_neg) / d


@numba.njit(cache=True)
def weight_of(i: int, gp: np.ndarray, gn: np.ndarray, mapping: int, nominal: np.ndarray,
              w_max: float) -> float:
    """Weight of synapse ``i`` (kernel version of :func:`conductance_to_weight`)."""
    d = nominal[1] - nominal[0]
    if mapping == 0:
        return w_max * (2.0 * (gp[i] - nominal[0]) / d - 1.0)
    return w_max * (gp[i] - gn[i]) / d


@numba.njit(cache=True)
def program_device(g: np.ndarray, prm: np.ndarray, stuck: np.ndarray, i: int, g_target: float,
                   kind: int, lut_up: np.ndarray, lut_dn: np.ndarray, ecoef: np.ndarray,
                   stats: np.ndarray) -> None:
    """Reset device ``i`` to its G_min, then program ``g_target`` with LTP pulses only, by
    incremental program-and-verify: single pulses (each with its C2C noise) until the read
    conductance is within half a local step of the target (or the level budget 2P is spent).
    Without C2C noise this lands on the nearest reachable level."""
    if stuck[i] != 0:
        return
    gmin = prm[i, C_GMIN]
    gmax = prm[i, C_GMAX]
    g[i] = gmin
    a = prm[i, 2]
    p = prm[i, C_PUP]
    g_target = min(max(g_target, gmin), gmax)
    for _ in range(int(2 * p) + 2):
        x = curve_x(g[i], kind, gmin, gmax, a, p, lut_up)
        step = curve_g(x + 1.0, kind, gmin, gmax, a, p, lut_up) - g[i]
        if g[i] >= g_target - 0.5 * step or step <= 0.0:
            break
        write_device(g, prm, stuck, i, 1.0, kind, lut_up, lut_dn, ecoef, stats)


@numba.njit(cache=True)
def _program_kernel(w, mapping, nominal, w_max, gp, prm_p, st_p, gn, prm_n, st_n, kind, lut_up,
                    lut_dn, ecoef, stats, exact, seed):
    np.random.seed(seed)
    d = nominal[1] - nominal[0]
    for i in range(w.size):
        wi = min(max(w[i], -w_max), w_max)
        if mapping == 0:
            tp = nominal[0] + 0.5 * (wi / w_max + 1.0) * d
            tn = 0.0
        else:
            tp = nominal[0] + max(wi, 0.0) / w_max * d
            tn = nominal[0] + max(-wi, 0.0) / w_max * d
        if exact:
            if st_p[i] == 0:
                gp[i] = min(max(tp, prm_p[i, C_GMIN]), prm_p[i, C_GMAX])
            if mapping == 1 and st_n[i] == 0:
                gn[i] = min(max(tn, prm_n[i, C_GMIN]), prm_n[i, C_GMAX])
        else:
            program_device(gp, prm_p, st_p, i, tp, kind, lut_up, lut_dn, ecoef, stats)
            if mapping == 1:
                program_device(gn, prm_n, st_n, i, tn, kind, lut_up, lut_dn, ecoef, stats)


def make_synapses(device: DeviceParams | str | dict[str, Any], n: int, rng: np.random.Generator,
                  mapping: str = "offset", w_max: float = 1.0,
                  w_init: np.ndarray | float | None = 0.0, exact: bool = True) -> DeviceSynapses:
    """``n`` device synapses holding ``w_init`` (programmed exactly, or by pulses if
    ``exact=False``)."""
    from .devices import energy_coefficients
    from .presets import device_from_dict

    p = device if isinstance(device, DeviceParams) else device_from_dict(device)
    if mapping not in MAPPINGS:
        raise BiolearnError(f"unknown weight mapping '{mapping}'", "in crossbar/synapse settings",
                            "choose one of: offset, differential")
    pos = make_devices(p, n, rng)
    neg = make_devices(p, n, rng) if mapping == "differential" else None
    syn = DeviceSynapses(pos, neg, mapping, float(w_max))
    if w_init is not None:
        program_weights(syn, np.broadcast_to(np.asarray(w_init, dtype=float), (n,)), rng, exact)
    _ = energy_coefficients
    return syn


def program_weights(syn: DeviceSynapses, w: np.ndarray, rng: np.random.Generator,
                    exact: bool = False) -> np.ndarray:
    """Write weights ``w``: exactly (``exact=True``: set conductances, as NeuroSim's initial
    mapping) or by reset + LTP pulses. Returns stats [ltp, ltd, energy_J]."""
    from .devices import energy_coefficients

    w = np.ascontiguousarray(w, dtype=float).ravel()
    gn, prm_n, st_n = syn.neg_arrays()
    stats = np.zeros(3)
    _program_kernel(w, syn.mapping_code, syn.pos.nominal, syn.w_max, syn.pos.g, syn.pos.prm,
                    syn.pos.stuck, gn, prm_n, st_n, syn.pos.kind, syn.pos.lut_up, syn.pos.lut_dn,
                    energy_coefficients(syn.pos.params), stats, exact,
                    int(rng.integers(2**31 - 1)))
    return stats
