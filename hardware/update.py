"""Weight-update schemes: how a desired weight change becomes pulses on devices.

* ``ideal``: the represented weight becomes clip(w + dW) exactly (conductances set directly, no
  pulses) - the software reference on the same mapping.
* ``bidirectional`` (NeuroSim, Chen, Peng & Yu, TCAD 2018, Sec. III-B): the number of pulses is
  the quantised n = round(dW / (W_max - W_min) * P) (round half away from zero, NeuroSim
  ``truncate``), P = levels of the branch; LTP pulses if dW > 0, LTD if dW < 0. Offset mapping:
  on the single device. Differential mapping: +n on G+ and -n on G- (each pulse pair moves w by
  (W_max - W_min) / P on a linear device).
* ``unidirectional`` (Lim et al., arXiv:1707.06381, 2017; Neural Comput. Appl. 31:8101, 2019):
  differential pair, only potentiating pulses, n = round(|dW| / w_max * P) on G+ if dW > 0 else on
  G-. When the device to be potentiated cannot take the n pulses (its pulse-number equivalent would
  pass P), the pair is *refreshed*: the weight is read, both devices are reset to G_min, and |w| is
  re-programmed onto one device with LTP pulses (one-shot program-and-verify). Resets are counted
  separately; no LTD pulse is ever applied.

The public entry point for any learning rule is :func:`apply_delta`, a function over flat arrays::

    syn = make_synapses("ag_si", n_syn, rng, mapping="differential", w_init=w0)
    w_new, stats = apply_delta(syn, dw, "unidirectional", rng)  # syn's devices are written

``dw`` holds one desired change per synapse (e.g. accumulated STDP updates, in weight units of
[-w_max, w_max]); ``w_new`` is what the devices now represent. ``apply_delta(..., inplace=False)``
leaves ``syn`` untouched and also returns the new state.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from biolearn.errors import BiolearnError

from .devices import C_AUP, C_GMAX, C_GMIN, C_PUP, curve_x, energy_coefficients, write_device
from .synapses import DeviceSynapses, program_device, weight_of

SCHEMES = {"ideal": 0, "bidirectional": 1, "unidirectional": 2}


@dataclass
class UpdateStats:
    """Totals of one or more updates."""

    ltp_pulses: float = 0.0
    ltd_pulses: float = 0.0
    energy_j: float = 0.0
    refreshes: float = 0.0
    refresh_pulses: float = 0.0

    @property
    def pulses(self) -> float:
        return self.ltp_pulses + self.ltd_pulses

    @classmethod
    def from_array(cls, s: np.ndarray) -> UpdateStats:
        return cls(*map(float, s[:5]))


@numba.njit(cache=True)
def quantise_pulses(v: float, levels: float) -> float:
    """NeuroSim ``truncate``: round(v * levels) with halves away from zero (v = dW / range)."""
    m = abs(v) * levels
    q = np.floor(m + 0.5)
    return q if v >= 0 else -q


@numba.njit(cache=True)
def refresh_pair(i: int, mapping: int, nominal: np.ndarray, w_max: float, gp, prm_p, st_p, gn,
                 prm_n, st_n, kind, lut_up, lut_dn, ecoef, stats) -> None:
    """Lim et al. refresh: read w, reset G+ and G- to G_min, re-program |w| on one device."""
    w = weight_of(i, gp, gn, mapping, nominal, w_max)
    d = nominal[1] - nominal[0]
    stats[3] += 1.0
    stats[2] += ecoef[1] * (gp[i] + gn[i])  # one reset pulse per device (energy proxy only)
    before = stats[0]
    if w >= 0:
        program_device(gp, prm_p, st_p, i, nominal[0] + w / w_max * d, kind, lut_up, lut_dn,
                       ecoef, stats)
        if st_n[i] == 0:
            gn[i] = prm_n[i, C_GMIN]
    else:
        program_device(gn, prm_n, st_n, i, nominal[0] - w / w_max * d, kind, lut_up, lut_dn,
                       ecoef, stats)
        if st_p[i] == 0:
            gp[i] = prm_p[i, C_GMIN]
    stats[4] += stats[0] - before


@numba.njit(cache=True, inline="always")
def update_synapse(i: int, x: float, scheme: int, mapping: int, nominal: np.ndarray,
                   w_max: float, gp: np.ndarray, prm_p: np.ndarray, st_p: np.ndarray,
                   gn: np.ndarray, prm_n: np.ndarray, st_n: np.ndarray, kind: int,
                   lut_up: np.ndarray, lut_dn: np.ndarray, ecoef: np.ndarray,
                   stats: np.ndarray) -> None:
    """Apply the desired change ``x`` to synapse ``i`` with scheme code ``scheme`` (in place).

    Callable from any njit kernel (e.g. a trainer that fuses gradient and update per synapse).
    stats: [LTP pulses, LTD pulses, energy proxy (J), refreshes, refresh re-program pulses].
    """
    if x == 0.0:
        return
    d = nominal[1] - nominal[0]
    if scheme == 0:
        w = weight_of(i, gp, gn, mapping, nominal, w_max) + x
        w = min(max(w, -w_max), w_max)
        if mapping == 0:
            if st_p[i] == 0:
                t = nominal[0] + 0.5 * (w / w_max + 1.0) * d
                gp[i] = min(max(t, prm_p[i, C_GMIN]), prm_p[i, C_GMAX])
        else:
            tp = nominal[0] + max(w, 0.0) / w_max * d
            tn = nominal[0] + max(-w, 0.0) / w_max * d
            if st_p[i] == 0:
                gp[i] = min(max(tp, prm_p[i, C_GMIN]), prm_p[i, C_GMAX])
            if st_n[i] == 0:
                gn[i] = min(max(tn, prm_n[i, C_GMIN]), prm_n[i, C_GMAX])
    elif scheme == 1:
        rng_w = 2.0 * w_max
        n = quantise_pulses(x / rng_w, nominal[2] if x > 0 else nominal[3])
        if n != 0.0:
            write_device(gp, prm_p, st_p, i, n, kind, lut_up, lut_dn, ecoef, stats)
        if mapping == 1:  # G- moves the other way, quantised with its own branch's levels
            m = quantise_pulses(-x / rng_w, nominal[3] if x > 0 else nominal[2])
            if m != 0.0:
                write_device(gn, prm_n, st_n, i, m, kind, lut_up, lut_dn, ecoef, stats)
    else:
        n = quantise_pulses(abs(x) / w_max, nominal[2])
        if n == 0.0:
            return
        if x > 0:
            xs = curve_x(gp[i], kind, prm_p[i, C_GMIN], prm_p[i, C_GMAX], prm_p[i, C_AUP],
                         prm_p[i, C_PUP], lut_up)
            if xs + n > prm_p[i, C_PUP] + 1e-9:
                refresh_pair(i, mapping, nominal, w_max, gp, prm_p, st_p, gn, prm_n, st_n,
                             kind, lut_up, lut_dn, ecoef, stats)
            write_device(gp, prm_p, st_p, i, n, kind, lut_up, lut_dn, ecoef, stats)
        else:
            xs = curve_x(gn[i], kind, prm_n[i, C_GMIN], prm_n[i, C_GMAX], prm_n[i, C_AUP],
                         prm_n[i, C_PUP], lut_up)
            if xs + n > prm_n[i, C_PUP] + 1e-9:
                refresh_pair(i, mapping, nominal, w_max, gp, prm_p, st_p, gn, prm_n, st_n,
                             kind, lut_up, lut_dn, ecoef, stats)
            write_device(gn, prm_n, st_n, i, n, kind, lut_up, lut_dn, ecoef, stats)


@numba.njit(cache=True)
def no_pulse_bound(scheme: int, nominal: np.ndarray, w_max: float) -> float:
    """Largest |dW| that is certainly quantised to zero pulses (0 for the ideal scheme):
    bidirectional n = round(|dW| P / (2 w_max)) = 0 iff |dW| < w_max / P; unidirectional
    n = round(|dW| P / w_max) = 0 iff |dW| < w_max / (2 P). Callers may skip such updates."""
    if scheme == 0:
        return 0.0
    if scheme == 1:
        return w_max / max(nominal[2], nominal[3]) * (1.0 - 1e-12)
    return 0.5 * w_max / nominal[2] * (1.0 - 1e-12)


@numba.njit(cache=True)
def update_kernel(dw: np.ndarray, scheme: int, mapping: int, nominal: np.ndarray, w_max: float,
                  gp: np.ndarray, prm_p: np.ndarray, st_p: np.ndarray, gn: np.ndarray,
                  prm_n: np.ndarray, st_n: np.ndarray, kind: int, lut_up: np.ndarray,
                  lut_dn: np.ndarray, ecoef: np.ndarray, stats: np.ndarray) -> None:
    """Apply desired changes ``dw`` (flat, one per synapse) in place (see
    :func:`update_synapse`)."""
    for i in range(dw.size):
        if dw[i] != 0.0:
            update_synapse(i, dw[i], scheme, mapping, nominal, w_max, gp, prm_p, st_p, gn, prm_n,
                           st_n, kind, lut_up, lut_dn, ecoef, stats)


@numba.njit(cache=True)
def _update_seeded(dw, scheme, mapping, nominal, w_max, gp, prm_p, st_p, gn, prm_n, st_n, kind,
                   lut_up, lut_dn, ecoef, stats, seed):
    np.random.seed(seed)
    update_kernel(dw, scheme, mapping, nominal, w_max, gp, prm_p, st_p, gn, prm_n, st_n, kind,
                  lut_up, lut_dn, ecoef, stats)


def scheme_code(scheme: str, mapping: str) -> int:
    """Validated scheme code; unidirectional needs the differential mapping."""
    if scheme not in SCHEMES:
        raise BiolearnError(f"unknown update scheme '{scheme}'", "in update settings",
                            "choose one of: " + ", ".join(SCHEMES))
    if scheme == "unidirectional" and mapping != "differential":
        raise BiolearnError("the unidirectional scheme needs a differential pair",
                            "in update settings", "set mapping: differential")
    return SCHEMES[scheme]


def apply_delta(syn: DeviceSynapses, dw: np.ndarray, scheme: str = "bidirectional",
                rng: np.random.Generator | None = None, inplace: bool = True
                ) -> tuple[np.ndarray, UpdateStats] | tuple[np.ndarray, UpdateStats,
                                                             DeviceSynapses]:
    """Turn desired weight changes into device writes; return the weights now represented.

    ``dw``: flat array (one entry per synapse, weight units). ``scheme``: ``ideal``,
    ``bidirectional`` or ``unidirectional``. The devices of ``syn`` are written in place (like
    hardware); with ``inplace=False`` a copy is written and returned as third element.
    Randomness (C2C noise) comes from ``rng`` (default: a fixed-seed generator).
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    code = scheme_code(scheme, syn.mapping)
    dw = np.ascontiguousarray(dw, dtype=float).ravel()
    if dw.size != syn.n:
        raise BiolearnError(f"{dw.size} weight changes for {syn.n} synapses", "in apply_delta",
                            "pass one change per synapse (flat array)")
    tgt = syn if inplace else syn.copy()
    gn, prm_n, st_n = tgt.neg_arrays()
    stats = np.zeros(5)
    _update_seeded(dw, code, tgt.mapping_code, tgt.pos.nominal, tgt.w_max, tgt.pos.g,
                   tgt.pos.prm, tgt.pos.stuck, gn, prm_n, st_n, tgt.pos.kind, tgt.pos.lut_up,
                   tgt.pos.lut_dn, energy_coefficients(tgt.pos.params), stats,
                   int(rng.integers(2**31 - 1)))
    w = tgt.weights()
    if inplace:
        return w, UpdateStats.from_array(stats)
    return w, UpdateStats.from_array(stats), tgt
