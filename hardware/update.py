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
* ``coincidence`` (Gokmen & Vlasov, Front. Neurosci. 10:333, 2016, Eqs. 2-3; update management:
  Gokmen, Onen & Haensch, Front. Neurosci. 11:538, 2017): the stochastic pulse-coincidence update
  of an outer product dW = lr x d^T, done in the array in one parallel step. Row i fires a
  stochastic pulse train of BL slots, each slot with probability p_i = min(1, C_x |x_i|); column
  j one with q_j = min(1, C_d |d_j|); a device receives one pulse (polarity sign(x_i d_j)) per
  slot where both fire, so E[n_ij] = BL p_i q_j and E[dW_ij] = BL dw_min C_x C_d x_i d_j =
  lr x_i d_j for C_x C_d = lr / (BL dw_min), dw_min = 2 w_max / P the weight step of one
  pulse (P: mean of the LTP and LTD levels). Update management balances the two sides:
  C_x = sqrt(m d_max / x_max), C_d = sqrt(m x_max / d_max), m = lr / (BL dw_min); without it
  C_x = C_d = sqrt(m). It needs x and d, not dW, so it is available to outer-product trainers
  (:func:`coincidence_update`, :func:`apply_outer`) and not to :func:`apply_delta`.

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
OUTER_SCHEMES = {"coincidence": 3}  # need the outer-product factors (x, d), not dW per synapse
MAX_BL = 64  # pulse-train length limit (one 64-bit word per row / column)


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
        # potentiate G+ for a positive change, G- for a negative one (never depress)
        g, prm, st = (gp, prm_p, st_p) if x > 0 else (gn, prm_n, st_n)
        xs = curve_x(g[i], kind, prm[i, C_GMIN], prm[i, C_GMAX], prm[i, C_AUP],
                     prm[i, C_PUP], lut_up)
        if xs + n > prm[i, C_PUP] + 1e-9:
            refresh_pair(i, mapping, nominal, w_max, gp, prm_p, st_p, gn, prm_n, st_n,
                         kind, lut_up, lut_dn, ecoef, stats)
        write_device(g, prm, st, i, n, kind, lut_up, lut_dn, ecoef, stats)


@numba.njit(cache=True)
def no_pulse_bound(scheme: int, nominal: np.ndarray, w_max: float) -> float:
    """Largest |dW| that is certainly quantised to zero pulses (0 for the ideal scheme):
    bidirectional n = round(|dW| P / (2 w_max)) = 0 iff |dW| < w_max / P; unidirectional
    n = round(|dW| P / w_max) = 0 iff |dW| < w_max / (2 P). Callers may skip such updates."""
    if scheme == 0 or scheme == 3:
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


def scheme_code(scheme: str, mapping: str, outer: bool = False) -> int:
    """Validated scheme code; unidirectional needs the differential mapping. ``outer``: the
    caller updates by outer products (x, d), so the ``coincidence`` scheme is allowed."""
    if outer and scheme in OUTER_SCHEMES:
        return OUTER_SCHEMES[scheme]
    if scheme not in SCHEMES:
        if scheme in OUTER_SCHEMES:
            raise BiolearnError(f"the '{scheme}' scheme updates outer products dW = lr x d^T, "
                                "not a given dW per synapse", "in update settings",
                                "use apply_outer / an outer-product trainer (memristor_mlp), "
                                "or choose one of: " + ", ".join(SCHEMES))
        raise BiolearnError(f"unknown update scheme '{scheme}'", "in update settings",
                            "choose one of: " + ", ".join(SCHEMES))
    if scheme == "unidirectional" and mapping != "differential":
        raise BiolearnError("the unidirectional scheme needs a differential pair",
                            "in update settings", "set mapping: differential")
    return SCHEMES[scheme]


@numba.njit(cache=True, inline="always")
def _popcount(v: np.uint64) -> int:
    """Number of set bits of a 64-bit word (SWAR)."""
    v = v - ((v >> np.uint64(1)) & np.uint64(0x5555555555555555))
    v = (v & np.uint64(0x3333333333333333)) + ((v >> np.uint64(2)) & np.uint64(0x3333333333333333))
    v = (v + (v >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return int((v * np.uint64(0x0101010101010101)) >> np.uint64(56))


@numba.njit(cache=True)
def _pulse_train(p: float, bl: int) -> np.uint64:
    """BL Bernoulli(p) slots as the low bits of a word."""
    m = np.uint64(0)
    if p <= 0.0:
        return m
    for t in range(bl):
        if p >= 1.0 or np.random.random() < p:
            m |= np.uint64(1) << np.uint64(t)
    return m


@numba.njit(cache=True)
def coincidence_probabilities(x: np.ndarray, d: np.ndarray, lr: float, bl: int, um: bool,
                              nominal: np.ndarray, w_max: float
                              ) -> tuple[np.ndarray, np.ndarray]:
    """Row and column pulse probabilities (p_i, q_j) of the coincidence update of lr x d^T
    (Gokmen & Vlasov 2016, Eq. 3; update management ``um``: Gokmen et al. 2017)."""
    p = np.zeros(x.size)
    q = np.zeros(d.size)
    xmax = np.max(np.abs(x)) if x.size else 0.0
    dmax = np.max(np.abs(d)) if d.size else 0.0
    if xmax == 0.0 or dmax == 0.0 or lr == 0.0:
        return p, q
    dw_min = 2.0 * w_max / (0.5 * (nominal[2] + nominal[3]))
    m = abs(lr) / (bl * dw_min)
    if um:
        cx = np.sqrt(m * dmax / xmax)
        cd = np.sqrt(m * xmax / dmax)
    else:
        cx = cd = np.sqrt(m)
    for i in range(x.size):
        p[i] = min(1.0, cx * abs(x[i]))
    for j in range(d.size):
        q[j] = min(1.0, cd * abs(d[j]))
    return p, q


@numba.njit(cache=True)
def coincidence_update(x: np.ndarray, d: np.ndarray, lr: float, bl: int, um: bool,
                       mapping: int, nominal: np.ndarray, w_max: float, gp: np.ndarray,
                       prm_p: np.ndarray, st_p: np.ndarray, gn: np.ndarray, prm_n: np.ndarray,
                       st_n: np.ndarray, kind: int, lut_up: np.ndarray, lut_dn: np.ndarray,
                       ecoef: np.ndarray, stats: np.ndarray) -> None:
    """Stochastic pulse-coincidence update of dW = lr x d^T on an array whose synapse (i, j)
    is index i * d.size + j (in place; see the module docstring). Each device gets its
    coincidence count n_ij = popcount(A_i & B_j) as n_ij pulses of polarity sign(lr x_i d_j):
    on the device (offset mapping) or +n on G+ and -n on G- (differential), as the
    bidirectional scheme does. BL <= 64."""
    p, q = coincidence_probabilities(x, d, lr, bl, um, nominal, w_max)
    n_c = d.size
    a = np.empty(x.size, dtype=np.uint64)
    b = np.empty(n_c, dtype=np.uint64)
    for i in range(x.size):
        a[i] = _pulse_train(p[i], bl)
    cols = np.empty(n_c, dtype=np.int64)
    k = 0
    for j in range(n_c):
        b[j] = _pulse_train(q[j], bl)
        if b[j] != np.uint64(0):
            cols[k] = j
            k += 1
    sgn_lr = 1.0 if lr > 0 else -1.0
    for i in range(x.size):
        if a[i] == np.uint64(0):
            continue
        sx = sgn_lr if x[i] > 0 else -sgn_lr
        for c in range(k):
            j = cols[c]
            n = _popcount(a[i] & b[j])
            if n == 0:
                continue
            s = float(n) if (sx > 0) == (d[j] > 0) else -float(n)
            write_device(gp, prm_p, st_p, i * n_c + j, s, kind, lut_up, lut_dn, ecoef, stats)
            if mapping == 1:
                write_device(gn, prm_n, st_n, i * n_c + j, -s, kind, lut_up, lut_dn, ecoef,
                             stats)


@numba.njit(cache=True)
def _outer_seeded(x, d, lr, bl, um, mapping, nominal, w_max, gp, prm_p, st_p, gn, prm_n, st_n,
                  kind, lut_up, lut_dn, ecoef, stats, seed):
    np.random.seed(seed)
    coincidence_update(x, d, lr, bl, um, mapping, nominal, w_max, gp, prm_p, st_p, gn, prm_n,
                       st_n, kind, lut_up, lut_dn, ecoef, stats)


def apply_outer(syn: DeviceSynapses, x: np.ndarray, d: np.ndarray, lr: float,
                rng: np.random.Generator | None = None, bl: int = 10,
                update_management: bool = True) -> tuple[np.ndarray, UpdateStats]:
    """Stochastic pulse-coincidence update of dW = lr x d^T on ``syn`` (in place), synapse
    (i, j) at flat index i * len(d) + j. Returns the weights now represented and the stats."""
    rng = rng if rng is not None else np.random.default_rng(0)
    x = np.ascontiguousarray(x, dtype=float).ravel()
    d = np.ascontiguousarray(d, dtype=float).ravel()
    if x.size * d.size != syn.n:
        raise BiolearnError(f"{x.size} x {d.size} outer product for {syn.n} synapses",
                            "in apply_outer", "pass x (rows) and d (columns) of the array")
    if not 1 <= bl <= MAX_BL:
        raise BiolearnError(f"pulse-train length BL = {bl}", "in apply_outer",
                            f"use 1 <= BL <= {MAX_BL}")
    gn, prm_n, st_n = syn.neg_arrays()
    stats = np.zeros(5)
    _outer_seeded(x, d, float(lr), int(bl), bool(update_management), syn.mapping_code,
                  syn.pos.nominal, syn.w_max, syn.pos.g, syn.pos.prm, syn.pos.stuck, gn, prm_n,
                  st_n, syn.pos.kind, syn.pos.lut_up, syn.pos.lut_dn,
                  energy_coefficients(syn.pos.params), stats, int(rng.integers(2**31 - 1)))
    return syn.weights(), UpdateStats.from_array(stats)


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
