"""Conductance-device models for electronic synapses (RRAM, PCM, ...), vectorised over many devices.

One device holds a conductance ``g`` in ``[g_min, g_max]`` (siemens). Programming pulses move it
along a *pulse response*: ``n > 0`` potentiating (LTP) pulses or ``n < 0`` depressing (LTD)
pulses. The device's position on a curve is its *pulse-number equivalent* ``x`` in ``[0, P]``
(``P`` = number of levels of that branch); the curve is inverted at the current conductance
before every write, so switching between LTP and LTD conserves conductance (Chen, Peng & Yu,
IEEE TCAD 37:3067, 2018, "NeuroSim: a circuit-level macro model", Sec. III; MLP+NeuroSim v3 does
the same).

Pulse responses (``kind``):

* ``linear``     g(x) = g_min + (g_max - g_min) x / P.
* ``exp``        NeuroSim's exponential model (TCAD 2018, Eq. 1-3):
                 g(x) = B (1 - exp(-x/A)) + g_min,  B = (g_max - g_min) / (1 - exp(-P/A)).
                 LTP uses A_LTP > 0 (concave); LTD uses A_LTD < 0 (NeuroSim's signed convention),
                 i.e. the paper's G_LTD(P) = -B(1 - e^{(P-P_max)/|A|}) + G_max on the same
                 x axis. A is derived from the quoted nonlinearity label NL by :func:`nl_to_a`.
* ``softbounds`` each pulse moves a fraction 1/P of the distance to the bound it approaches
                 (aihwkit ``SoftBoundsDevice``): up g_max - g' = (g_max - g)(1 - 1/P)^n,
                 down g' - g_min = (g - g_min)(1 - 1/P)^|n|.
* ``lut``        measured curves: normalised conductance vs pulse number for LTP (rising) and for
                 LTD (falling from g_max), linearly interpolated (NeuroSim ``MeasuredDevice``).
                 Load them with :func:`load_lut_csv`.

Non-idealities (all per device, drawn once from a seeded ``numpy.random.Generator``):

* cycle-to-cycle write noise: g' += N(0, sigma_c2c (g_max - g_min)) sqrt(|n|) after a write of n
  pulses, then clip to [g_min, g_max] (NeuroSim ``RealDevice::Write``). One difference: we
  evaluate the curve at x + n clipped to [0, P] and add the noise to that, where NeuroSim
  continues the exponential (or linear) curve past the branch end, adds the noise and clips only
  g. They differ only on writes that would overshoot a bound, by how far the continued curve
  lies beyond it: one level per excess pulse on a linear device, 0.65 / 0.31 / 0.03 levels for
  the first excess pulse on an exp branch with |NL| 1 / 2.4 / 4.88 (the curve is flat there).
  Such a write leaves our device at bound + noise clipped (inside the range half of the time,
  mean distance from the bound 0.40 sigma_c2c (g_max - g_min) sqrt(|n|)), NeuroSim's nearer
  the bound by that overshoot. Why: the pulse response is defined on [0, P] only (a measured
  ``lut`` curve cannot be continued, and NeuroSim's ``MeasuredDevice`` clips x too), and a
  saturated device keeps its write-to-write variability;
* device-to-device variation: NL label + N(0, sigma_d2d_nl) (NeuroSim ``sigmaDtoD``), level count
  (i.e. step size) x (1 + N(0, sigma_d2d_step)), g_min and g_max x (1 + N(0, sigma_d2d_range)).
  One difference: a perturbed label that crosses zero is reflected back to the branch's side
  (|NL| with the nominal sign), where NeuroSim's ``getParamA`` takes the sign of the perturbed
  label, so its curve flips curvature (an LTP branch with NL 1 and sigma 2 is convex on 31 % of
  NeuroSim's devices, on none of ours). Why: we vary how nonlinear a branch is, not its shape;
  the price is a folded-normal spread whose mean |NL| exceeds the nominal label when sigma is
  comparable to it. Both clamp |NL| at 9, the end of NeuroSim's table (below its first entry,
  0.01, NeuroSim uses 0.01 and we continue towards the linear curve);
* read noise g_read = g (1 + N(0, sigma_read)) (NeuroSim ``RealDevice::Read``);
* stuck-at faults (stuck at g_min or g_max, writes ignored);
* power-law drift g(t) = g0 (t/t0)^-nu, nu ~ N(nu, sigma_nu) per device (PCM; Ielmini et al.,
  IEEE TED 54:308, 2007; aihwkit ``PCMLikeNoiseModel``).

Kernels are ``@numba.njit(cache=True)`` functions over flat arrays; per-device parameters sit in
one ``prm`` matrix (columns named by the ``C_*`` constants) so other kernels (crossbar reads,
update schemes, the MLP trainer) can call :func:`write_device` directly. Randomness inside kernels
comes from numba's generator, seeded from the caller's ``Generator`` at every call.
"""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numba
import numpy as np

from biolearn.errors import BiolearnError

KINDS = {"linear": 0, "exp": 1, "softbounds": 2, "lut": 3}

# columns of the per-device parameter matrix ``prm``
C_GMIN, C_GMAX, C_AUP, C_ADN, C_PUP, C_PDN, C_C2C, C_READ, C_NU = range(9)
N_PRM = 9

#: NeuroSim's NL label is the maximum deviation of the normalised LTP curve from the straight line,
#: max_x [g(x) - x] (x, g in [0, 1]), divided by this constant. Fitted to the 900-entry normalised-A
#: table of MLP+NeuroSim v3 (``formula.cpp: getParamA``, NL = 0.01 ... 9): it reproduces every entry
#: to < 0.03 %. Equivalently A/P -> 1/(8 K_NL NL) for small NL (table: 126.269 at NL = 0.01).
K_NL = 0.098995
NL_TABLE_MAX = 9.0  # largest |NL| of MLP+NeuroSim's NL -> A table (0.01 ... 9)


def _max_deviation(a: np.ndarray) -> np.ndarray:
    """max_x [(1 - e^{-x/a}) / (1 - e^{-1/a}) - x] on x in [0, 1], closed form (a = A / P > 0)."""
    a = np.asarray(a, dtype=float)
    c = -np.expm1(-1.0 / a)
    x_star = -a * np.log(a * c)  # where the slope of the normalised curve equals 1
    return (1.0 - a * c) / c - x_star


_A_GRID = np.geomspace(1e-3, 1e6, 4000)
_NL_GRID = _max_deviation(_A_GRID) / K_NL  # decreasing in a


def nl_to_a(nl: float | np.ndarray, n_levels: float | np.ndarray = 1.0) -> np.ndarray:
    """NeuroSim nonlinearity label -> signed A in pulses (A = a(|NL|) * P, sign of NL; NL 0 -> inf).

    Derived, not tabulated: a(|NL|) solves max_x[g(x) - x] = K_NL |NL| for the normalised curve of
    Chen, Peng & Yu (TCAD 2018, Eq. 1). Positive labels are LTP-like, negative LTD-like, as in
    MLP+NeuroSim (``paramALTD = getParamA(NL_LTD) * maxNumLevelLTD`` with NL_LTD < 0).
    """
    nl = np.asarray(nl, dtype=float)
    mag = np.abs(nl)
    if np.any(mag > _NL_GRID[0]):
        raise BiolearnError(f"nonlinearity label {float(mag.max()):.3g} is too large",
                            "in device parameters", f"use |NL| <= {_NL_GRID[0]:.0f}")
    with np.errstate(divide="ignore"):
        # interpolate log(a) against NL (increasing order required by np.interp)
        la = np.interp(mag, _NL_GRID[::-1], np.log(_A_GRID[::-1]))
        a = np.where(mag < 1e-9, np.inf, np.exp(la))
    return np.sign(nl + (nl == 0)) * a * np.asarray(n_levels, dtype=float)


def a_to_nl(a_pulses: float | np.ndarray, n_levels: float | np.ndarray) -> np.ndarray:
    """Inverse of :func:`nl_to_a`: signed A in pulses -> NeuroSim NL label."""
    a = np.asarray(a_pulses, dtype=float) / np.asarray(n_levels, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        nl = np.where(np.isinf(a), 0.0, _max_deviation(np.abs(a)) / K_NL)
    return np.sign(a) * nl


@dataclass
class DeviceParams:
    """Nominal parameters of one device type (a preset or a user YAML/dict).

    Units: conductance in siemens, write voltage in volts, pulse width in seconds, drift t0 in s.
    """

    name: str = "custom"
    kind: str = "exp"
    g_min: float = 3.8462e-8 / 50
    g_max: float = 3.8462e-8
    levels_ltp: int = 64
    levels_ltd: int = 64
    nl_ltp: float = 0.0
    nl_ltd: float = 0.0
    sigma_c2c: float = 0.0
    sigma_d2d_nl: float = 0.0
    sigma_d2d_step: float = 0.0
    sigma_d2d_range: float = 0.0
    sigma_read: float = 0.0
    p_stuck_min: float = 0.0
    p_stuck_max: float = 0.0
    drift_nu: float = 0.0
    drift_sigma_nu: float = 0.0
    drift_t0: float = 1.0
    write_voltage_ltp: float = 3.2
    write_voltage_ltd: float = 2.8
    write_pulse_width: float = 300e-6
    lut_ltp: list[float] | None = None
    lut_ltd: list[float] | None = None
    citation: str = ""
    notes: str = field(default="", repr=False)

    @property
    def on_off(self) -> float:
        return self.g_max / self.g_min

    def to_dict(self) -> dict:
        return asdict(self)


def _lut_arrays(p: DeviceParams) -> tuple[np.ndarray, np.ndarray]:
    """Normalised LUTs as increasing functions of the pulse-number equivalent x = 0..P."""
    if p.kind != "lut":
        return np.zeros(2), np.zeros(2)
    up = np.asarray(p.lut_ltp, dtype=float)
    dn = np.asarray(p.lut_ltd, dtype=float)
    out = []
    for name, arr, rising in (("lut_ltp", up, True), ("lut_ltd", dn, False)):
        if arr.ndim != 1 or arr.size < 2:
            raise BiolearnError(f"{name} needs at least 2 conductance values",
                                f"in device '{p.name}'", "give one conductance per pulse")
        lo, hi = arr.min(), arr.max()
        norm = (arr - lo) / (hi - lo)
        if not rising:
            norm = norm[::-1]  # LTD table falls with depression pulses; x runs the other way
        if np.any(np.diff(norm) < 0):
            raise BiolearnError(f"{name} is not monotonic", f"in device '{p.name}'",
                                "LTP must rise and LTD must fall with the pulse number")
        out.append(norm)
    return out[0], out[1]


def load_lut_csv(path: str | Path) -> tuple[list[float], list[float]]:
    """Read measured LTP/LTD curves from a CSV with columns ``branch,pulse,conductance``.

    ``branch`` is ``ltp`` or ``ltd``; rows of a branch are sorted by ``pulse`` (0, 1, ...); LTP
    conductances rise, LTD conductances fall (pulse 0 of LTD = the starting high state). Returns
    ``(lut_ltp, lut_ltd)`` for :class:`DeviceParams` (``kind="lut"``).
    """
    rows: dict[str, list[tuple[float, float]]] = {"ltp": [], "ltd": []}
    try:
        with open(path, newline="") as fh:
            for rec in csv.DictReader(fh):
                br = rec["branch"].strip().lower()
                if br not in rows:
                    raise BiolearnError(f"unknown branch '{br}'", f"in {path}", "use ltp or ltd")
                rows[br].append((float(rec["pulse"]), float(rec["conductance"])))
    except (OSError, KeyError, ValueError) as e:
        raise BiolearnError(f"cannot read LUT CSV ({e})", f"file {path}",
                            "give a CSV with header branch,pulse,conductance") from e
    return tuple([g for _, g in sorted(rows[b])] for b in ("ltp", "ltd"))  # type: ignore[return-value]


@dataclass
class DeviceArray:
    """State and per-device parameters of ``n`` devices of one type (flat arrays).

    ``g``: conductance (S); ``prm``: (n, N_PRM) per-device parameters (columns ``C_*``);
    ``stuck``: 0 healthy, 1 stuck at g_min, 2 stuck at g_max. ``nominal`` holds the type's nominal
    [g_min, g_max, levels_ltp, levels_ltd] used by peripheral circuits (which do not know each
    device's variation).
    """

    params: DeviceParams
    g: np.ndarray
    prm: np.ndarray
    stuck: np.ndarray
    kind: int
    lut_up: np.ndarray
    lut_dn: np.ndarray
    nominal: np.ndarray

    @property
    def n(self) -> int:
        return self.g.size

    def copy(self) -> DeviceArray:
        return DeviceArray(self.params, self.g.copy(), self.prm.copy(), self.stuck.copy(),
                           self.kind, self.lut_up, self.lut_dn, self.nominal)


def make_devices(params: DeviceParams, n: int, rng: np.random.Generator,
                 g_init: float | np.ndarray | None = None) -> DeviceArray:
    """Draw ``n`` devices (device-to-device variation, faults) and set them to ``g_init``
    (default g_min)."""
    p = params
    if p.kind not in KINDS:
        raise BiolearnError(f"unknown device kind '{p.kind}'", f"in device '{p.name}'",
                            "choose one of: " + ", ".join(KINDS))
    if not (0 < p.g_min < p.g_max):
        raise BiolearnError("need 0 < g_min < g_max", f"in device '{p.name}'",
                            "check g_min, g_max (siemens)")
    prm = np.empty((n, N_PRM))
    rg = np.clip(1.0 + p.sigma_d2d_range * rng.standard_normal((n, 2)), 0.05, None)
    gmin = p.g_min * rg[:, 0]
    gmax = p.g_max * rg[:, 1]
    bad = gmax <= gmin * 1.001
    gmax[bad] = gmin[bad] * 1.001
    lut_up, lut_dn = _lut_arrays(p)
    lv_up, lv_dn = float(p.levels_ltp), float(p.levels_ltd)
    if p.kind == "lut":
        lv_up, lv_dn = float(lut_up.size - 1), float(lut_dn.size - 1)
    step = np.clip(1.0 + p.sigma_d2d_step * rng.standard_normal((n, 2)), 0.05, None)
    p_up = lv_up / step[:, 0]  # larger step -> fewer levels across the range
    p_dn = lv_dn / step[:, 1]
    nl = np.array([p.nl_ltp, p.nl_ltd], dtype=float)
    nl_dev = nl + p.sigma_d2d_nl * rng.standard_normal((n, 2))
    # a label crossing zero would flip the curvature (NeuroSim's getParamA takes the perturbed
    # label's sign); keep each branch on its own side instead (module docstring), and within
    # NeuroSim's NL table (|NL| <= 9, as getParamA clamps): a wide D2D spread around a strongly
    # nonlinear branch (e.g. Ag:a-Si LTD -4.88, sigma 2) would otherwise draw labels outside it
    if p.kind == "exp":
        nl_dev = np.clip(nl_dev, -NL_TABLE_MAX, NL_TABLE_MAX)
        nl_dev[:, 0] = np.where(nl[0] >= 0, np.abs(nl_dev[:, 0]), -np.abs(nl_dev[:, 0]))
        nl_dev[:, 1] = np.where(nl[1] > 0, np.abs(nl_dev[:, 1]), -np.abs(nl_dev[:, 1]))
        if nl[0] == 0 and p.sigma_d2d_nl == 0:
            nl_dev[:, 0] = 0.0
        if nl[1] == 0 and p.sigma_d2d_nl == 0:
            nl_dev[:, 1] = 0.0
        prm[:, C_AUP] = nl_to_a(nl_dev[:, 0], p_up)
        prm[:, C_ADN] = nl_to_a(nl_dev[:, 1], p_dn)
    else:
        prm[:, C_AUP] = np.inf
        prm[:, C_ADN] = np.inf
    prm[:, C_GMIN] = gmin
    prm[:, C_GMAX] = gmax
    prm[:, C_PUP] = p_up
    prm[:, C_PDN] = p_dn
    prm[:, C_C2C] = p.sigma_c2c * (gmax - gmin)
    prm[:, C_READ] = p.sigma_read
    prm[:, C_NU] = np.clip(p.drift_nu + p.drift_sigma_nu * rng.standard_normal(n), 0.0, None)
    u = rng.random(n)
    stuck = np.zeros(n, dtype=np.int8)
    stuck[u < p.p_stuck_min] = 1
    stuck[(u >= p.p_stuck_min) & (u < p.p_stuck_min + p.p_stuck_max)] = 2
    g = np.empty(n)
    g[:] = gmin if g_init is None else g_init
    g = np.clip(g, gmin, gmax)
    g[stuck == 1] = gmin[stuck == 1]
    g[stuck == 2] = gmax[stuck == 2]
    nominal = np.array([p.g_min, p.g_max, lv_up, lv_dn])
    return DeviceArray(p, g, prm, stuck, KINDS[p.kind], lut_up, lut_dn, nominal)


# --------------------------------------------------------------------------------------------
# scalar kernels (callable from any other njit kernel)
# --------------------------------------------------------------------------------------------

@numba.njit(cache=True)
def curve_g(x: float, kind: int, gmin: float, gmax: float, a: float, p: float,
            lut: np.ndarray) -> float:
    """Conductance at pulse-number equivalent ``x`` (clipped to [0, p]) on one branch."""
    if x < 0.0:
        x = 0.0
    elif x > p:
        x = p
    d = gmax - gmin
    if kind == 1 and not np.isinf(a):
        b = d / (1.0 - np.exp(-p / a))
        return b * (1.0 - np.exp(-x / a)) + gmin
    if kind == 3:
        xs = np.arange(lut.size) * (p / (lut.size - 1))
        return gmin + d * np.interp(x, xs, lut)
    if kind == 2:  # soft bounds, LTP branch from g_min
        return gmax - d * (1.0 - 1.0 / p) ** x
    return gmin + d * x / p


@numba.njit(cache=True)
def curve_x(g: float, kind: int, gmin: float, gmax: float, a: float, p: float,
            lut: np.ndarray) -> float:
    """Inverse of :func:`curve_g`: pulse-number equivalent of conductance ``g`` on one branch."""
    d = gmax - gmin
    u = (g - gmin) / d
    if u <= 0.0:
        return 0.0
    if u >= 1.0:
        return p
    if kind == 1 and not np.isinf(a):
        b = d / (1.0 - np.exp(-p / a))
        return -a * np.log(1.0 - (g - gmin) / b)
    if kind == 3:
        xs = np.arange(lut.size) * (p / (lut.size - 1))
        return np.interp(u, lut, xs)
    if kind == 2:  # soft bounds, LTP branch from g_min
        return min(np.log(1.0 - u) / np.log(1.0 - 1.0 / p), p)
    return u * p


@numba.njit(cache=True)
def g_after_pulses(g: float, n: float, kind: int, row: np.ndarray, lut_up: np.ndarray,
                   lut_dn: np.ndarray) -> float:
    """Deterministic conductance after ``n`` pulses (n > 0 LTP, n < 0 LTD); ``row`` = prm[i]."""
    gmin = row[C_GMIN]
    gmax = row[C_GMAX]
    if n == 0.0:
        return g
    if kind == 2:  # soft bounds, closed form of n single-pulse steps
        if n > 0:
            return gmax - (gmax - g) * (1.0 - 1.0 / row[C_PUP]) ** n
        return gmin + (g - gmin) * (1.0 - 1.0 / row[C_PDN]) ** (-n)
    if n > 0:
        a = row[C_AUP]
        p = row[C_PUP]
        lut = lut_up
    else:
        a = row[C_ADN]
        p = row[C_PDN]
        lut = lut_dn
    x = curve_x(g, kind, gmin, gmax, a, p, lut)
    return curve_g(x + n, kind, gmin, gmax, a, p, lut)


@numba.njit(cache=True)
def write_device(g: np.ndarray, prm: np.ndarray, stuck: np.ndarray, i: int, n: float, kind: int,
                 lut_up: np.ndarray, lut_dn: np.ndarray, energy_coef: np.ndarray,
                 stats: np.ndarray) -> None:
    """Apply ``n`` pulses to device ``i`` in place, with C2C noise and clipping.

    stats[0] += LTP pulses, stats[1] += LTD pulses, stats[2] += write-energy proxy
    sum_pulses V^2 * g * t_pulse (energy_coef = [V_ltp^2 t, V_ltd^2 t]).
    Stuck devices receive the pulses (counted) but do not change.
    """
    if n == 0.0:
        return
    g0 = g[i]
    if n > 0:
        stats[0] += n
    else:
        stats[1] -= n
    if stuck[i] != 0:
        stats[2] += abs(n) * g0 * (energy_coef[0] if n > 0 else energy_coef[1])
        return
    g1 = g_after_pulses(g0, n, kind, prm[i], lut_up, lut_dn)
    s = prm[i, C_C2C]
    if s > 0.0:
        g1 += s * np.sqrt(abs(n)) * np.random.standard_normal()
    if g1 < prm[i, C_GMIN]:
        g1 = prm[i, C_GMIN]
    elif g1 > prm[i, C_GMAX]:
        g1 = prm[i, C_GMAX]
    stats[2] += abs(n) * 0.5 * (g0 + g1) * (energy_coef[0] if n > 0 else energy_coef[1])
    g[i] = g1


@numba.njit(cache=True)
def seed_kernel(seed: int) -> None:
    """Seed numba's internal generator (used by every kernel of this package)."""
    np.random.seed(seed)


@numba.njit(cache=True)
def _pulse_kernel(g, prm, stuck, n_pulses, kind, lut_up, lut_dn, energy_coef, stats, seed):
    np.random.seed(seed)
    for i in range(g.size):
        if n_pulses[i] != 0.0:
            write_device(g, prm, stuck, i, n_pulses[i], kind, lut_up, lut_dn, energy_coef, stats)


def energy_coefficients(p: DeviceParams) -> np.ndarray:
    """[V_ltp^2 t_w, V_ltd^2 t_w]: joules per pulse per siemens of the written device."""
    return np.array([p.write_voltage_ltp ** 2, p.write_voltage_ltd ** 2]) * p.write_pulse_width


def apply_pulses(dev: DeviceArray, n_pulses: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Apply signed pulse counts (one per device) in place; returns [ltp, ltd, energy_J]."""
    n_pulses = np.ascontiguousarray(n_pulses, dtype=float).ravel()
    if n_pulses.size != dev.n:
        raise ValueError("one pulse count per device expected")
    stats = np.zeros(3)
    _pulse_kernel(dev.g, dev.prm, dev.stuck, n_pulses, dev.kind, dev.lut_up, dev.lut_dn,
                  energy_coefficients(dev.params), stats, int(rng.integers(2**31 - 1)))
    return stats


def pulse_response(params: DeviceParams, n_up: int | None = None, n_down: int | None = None,
                   n_devices: int = 1, rng: np.random.Generator | None = None) -> np.ndarray:
    """Conductance trace of ``n_up`` single LTP pulses from g_min then ``n_down`` LTD pulses.

    Returns an array (n_devices, 1 + n_up + n_down); with variation set, each row is one device.
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    n_up = params.levels_ltp if n_up is None else n_up
    n_down = params.levels_ltd if n_down is None else n_down
    dev = make_devices(params, n_devices, rng)
    out = np.empty((n_devices, 1 + n_up + n_down))
    out[:, 0] = dev.g
    one = np.ones(n_devices)
    for k in range(n_up):
        apply_pulses(dev, one, rng)
        out[:, 1 + k] = dev.g
    for k in range(n_down):
        apply_pulses(dev, -one, rng)
        out[:, 1 + n_up + k] = dev.g
    return out


def read_conductance(dev: DeviceArray, rng: np.random.Generator | None = None,
                     t: float | None = None) -> np.ndarray:
    """Conductances as read: drift to time ``t`` (s after programming; none if None or <= t0)
    and multiplicative read noise g (1 + N(0, sigma_read))."""
    g = dev.g.copy()
    if t is not None and t > dev.params.drift_t0:
        g *= (t / dev.params.drift_t0) ** (-dev.prm[:, C_NU])
    s = dev.prm[:, C_READ]
    if rng is not None and np.any(s > 0):
        g *= 1.0 + s * rng.standard_normal(g.size)
    return g


def drift(g0: np.ndarray, t: float, t0: float, nu: np.ndarray | float) -> np.ndarray:
    """Power-law conductance drift g(t) = g0 (t / t0)^-nu for t >= t0 (Ielmini et al. 2007)."""
    return np.asarray(g0) * (max(t, t0) / t0) ** (-np.asarray(nu))


def params_from_dict(d: dict[str, Any], base: DeviceParams | None = None) -> DeviceParams:
    """Build :class:`DeviceParams` from a dict, overriding ``base`` (unknown keys are errors).

    ``lut_csv: path`` loads measured curves with :func:`load_lut_csv` and sets ``kind: lut``.
    ``on_off`` may be given instead of ``g_min`` (g_min = g_max / on_off); ``levels`` sets both
    branches.
    """
    known = {f.name for f in fields(DeviceParams)}
    d = dict(d)
    out = asdict(base) if base is not None else {}
    if "lut_csv" in d:
        out["lut_ltp"], out["lut_ltd"] = load_lut_csv(d.pop("lut_csv"))
        out["kind"] = "lut"
    if "levels" in d:
        out["levels_ltp"] = out["levels_ltd"] = int(d.pop("levels"))
    on_off = d.pop("on_off", None)
    for k, v in d.items():
        if k not in known:
            import difflib

            hit = difflib.get_close_matches(k, sorted(known), n=1)
            raise BiolearnError(f"unknown device parameter '{k}'", "in device definition",
                                (f"did you mean '{hit[0]}'? " if hit else "")
                                + "valid keys: " + ", ".join(sorted(known)))
        out[k] = v
    if on_off is not None:
        out["g_min"] = float(out.get("g_max", DeviceParams.g_max)) / float(on_off)
    return DeviceParams(**out)
