"""Crossbar arrays: matrix-vector products through device conductances.

A ``Crossbar`` stores an (n_in x n_out) weight matrix in :class:`DeviceSynapses` (row-major flat,
index i * n_out + j; rows = inputs on word lines, columns = outputs on bit lines) and reads it like
an analog array (Chen, Peng & Yu, TCAD 2018, Sec. IV):

1. input DAC: each input is quantised to ``dac_bits`` on [0, x_max] (signed inputs: magnitude
   quantised, sign applied by a second read phase). ``dac_bits = 1`` is NeuroSim's black/white
   input with threshold x_max/2.
2. column currents sum x_i * (G_ij - G_ref) (offset mapping; G_ref = mid-range reference column)
   or x_i * (G+_ij - G-_ij) (differential), each conductance read with read noise.
3. tiles: rows are split into tiles of ``tile_rows``; every tile's column partial sum is converted
   by its own ADC of ``adc_bits`` over the full-scale range +-rows_in_tile * x_max * w_max *
   ``adc_range`` (in weight units), then added digitally (NeuroSim digitises partial sums over the
   whole column range in the same way).

Quantiser (DAC and ADC): 2^bits codes evenly spaced on [lo, hi], round to nearest, clip.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from biolearn.errors import BiolearnError

from .devices import C_READ, DeviceParams
from .synapses import DeviceSynapses, make_synapses


@numba.njit(cache=True)
def quantise(v: float, lo: float, hi: float, bits: int) -> float:
    """Nearest of the 2^bits evenly spaced codes on [lo, hi] (clipped). bits <= 0: identity."""
    if bits <= 0:
        return v
    levels = 2.0 ** bits - 1.0
    if v <= lo:
        return lo
    if v >= hi:
        return hi
    return lo + np.floor((v - lo) / (hi - lo) * levels + 0.5) * (hi - lo) / levels


@numba.njit(cache=True, inline="always")
def read_weight(i: int, gp: np.ndarray, prm_p: np.ndarray, gn: np.ndarray, prm_n: np.ndarray,
                mapping: int, nominal: np.ndarray, w_max: float, noisy: bool) -> float:
    """Weight of synapse i as seen by one read (multiplicative read noise per device)."""
    a = gp[i]
    if noisy and prm_p[i, C_READ] > 0.0:
        a *= 1.0 + prm_p[i, C_READ] * np.random.standard_normal()
    d = nominal[1] - nominal[0]
    if mapping == 0:
        return w_max * (2.0 * (a - nominal[0]) / d - 1.0)
    b = gn[i]
    if noisy and prm_n[i, C_READ] > 0.0:
        b *= 1.0 + prm_n[i, C_READ] * np.random.standard_normal()
    return w_max * (a - b) / d


@numba.njit(cache=True)
def mvm_kernel(x: np.ndarray, n_in: int, n_out: int, gp: np.ndarray, prm_p: np.ndarray,
               gn: np.ndarray, prm_n: np.ndarray, mapping: int, nominal: np.ndarray,
               w_max: float, noisy: bool, dac_bits: int, x_max: float, tile_rows: int,
               adc_bits: int, adc_range: float, out: np.ndarray) -> None:
    """out[j] = sum over tiles of ADC(sum_{i in tile} DAC(x_i) w_ij)  (forward read)."""
    for j in range(n_out):
        out[j] = 0.0
    part = np.zeros(n_out)
    # noise-free read: w = c1 * g + c0 (offset) or c1 * (g+ - g-) (differential)
    dg = nominal[1] - nominal[0]
    c1 = (2.0 if mapping == 0 else 1.0) * w_max / dg
    c0 = -w_max - c1 * nominal[0]
    r0 = 0
    while r0 < n_in:
        r1 = min(r0 + tile_rows, n_in)
        for j in range(n_out):
            part[j] = 0.0
        for i in range(r0, r1):
            xi = x[i]
            if dac_bits > 0:
                s = 1.0 if xi >= 0 else -1.0
                xi = s * quantise(abs(xi), 0.0, x_max, dac_bits)
            if xi == 0.0:
                continue
            base = i * n_out
            if noisy:
                for j in range(n_out):
                    part[j] += xi * read_weight(base + j, gp, prm_p, gn, prm_n, mapping,
                                                nominal, w_max, noisy)
            elif mapping == 0:
                for j in range(n_out):
                    part[j] += xi * (c1 * gp[base + j] + c0)
            else:
                for j in range(n_out):
                    part[j] += xi * c1 * (gp[base + j] - gn[base + j])
        fs = (r1 - r0) * x_max * w_max * adc_range
        for j in range(n_out):
            out[j] += quantise(part[j], -fs, fs, adc_bits)
        r0 = r1


@numba.njit(cache=True)
def mvm_t_kernel(d: np.ndarray, n_in: int, n_out: int, gp: np.ndarray, prm_p: np.ndarray,
                 gn: np.ndarray, prm_n: np.ndarray, mapping: int, nominal: np.ndarray,
                 w_max: float, noisy: bool, out: np.ndarray) -> None:
    """out[i] = sum_j w_ij d_j  (transposed read for backpropagation; analog, no ADC)."""
    dg = nominal[1] - nominal[0]
    c1 = (2.0 if mapping == 0 else 1.0) * w_max / dg
    c0 = -w_max - c1 * nominal[0]
    for i in range(n_in):
        acc = 0.0
        base = i * n_out
        if noisy:
            for j in range(n_out):
                if d[j] != 0.0:
                    acc += d[j] * read_weight(base + j, gp, prm_p, gn, prm_n, mapping, nominal,
                                              w_max, noisy)
        elif mapping == 0:
            for j in range(n_out):
                acc += d[j] * (c1 * gp[base + j] + c0)
        else:
            for j in range(n_out):
                acc += d[j] * c1 * (gp[base + j] - gn[base + j])
        out[i] = acc


@numba.njit(cache=True)
def _mvm_seeded(x, n_in, n_out, gp, prm_p, gn, prm_n, mapping, nominal, w_max, noisy, dac_bits,
                x_max, tile_rows, adc_bits, adc_range, out, seed):
    np.random.seed(seed)
    mvm_kernel(x, n_in, n_out, gp, prm_p, gn, prm_n, mapping, nominal, w_max, noisy, dac_bits,
               x_max, tile_rows, adc_bits, adc_range, out)


@numba.njit(cache=True)
def _mvm_t_seeded(d, n_in, n_out, gp, prm_p, gn, prm_n, mapping, nominal, w_max, noisy, out,
                  seed):
    np.random.seed(seed)
    mvm_t_kernel(d, n_in, n_out, gp, prm_p, gn, prm_n, mapping, nominal, w_max, noisy, out)


@dataclass
class CrossbarConfig:
    """Peripheral settings of a crossbar (0 bits = ideal converter)."""

    mapping: str = "offset"
    w_max: float = 1.0
    dac_bits: int = 0
    adc_bits: int = 0
    x_max: float = 1.0
    tile_rows: int = 1 << 30
    adc_range: float = 1.0
    read_noise: bool = True


class Crossbar:
    """An (n_in x n_out) weight matrix on devices, with DAC/ADC and row tiling."""

    def __init__(self, n_in: int, n_out: int, device: DeviceParams | str | dict,
                 rng: np.random.Generator, config: CrossbarConfig | None = None,
                 w_init: np.ndarray | None = None) -> None:
        self.cfg = config or CrossbarConfig()
        if self.cfg.tile_rows < 1:
            raise BiolearnError("tile_rows must be >= 1", "in crossbar settings",
                                "set tile_rows to the array height, e.g. 128")
        self.n_in, self.n_out = int(n_in), int(n_out)
        w0 = None if w_init is None else np.asarray(w_init, dtype=float).reshape(-1)
        self.syn: DeviceSynapses = make_synapses(device, self.n_in * self.n_out, rng,
                                                 self.cfg.mapping, self.cfg.w_max,
                                                 0.0 if w0 is None else w0, exact=True)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_in, self.n_out)

    def weights(self) -> np.ndarray:
        """The represented weight matrix (n_in, n_out), noise-free."""
        return self.syn.weights().reshape(self.shape)

    @property
    def noisy(self) -> bool:
        """Read noise on (config) and present in at least one device."""
        devs = [self.syn.pos] + ([] if self.syn.neg is None else [self.syn.neg])
        return self.cfg.read_noise and any(bool(np.any(d.prm[:, C_READ] > 0)) for d in devs)

    def _args(self) -> tuple:
        gn, prm_n, _ = self.syn.neg_arrays()
        s = self.syn
        return (self.n_in, self.n_out, s.pos.g, s.pos.prm, gn, prm_n, s.mapping_code,
                s.pos.nominal, s.w_max)

    def matvec(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """y = ADC(DAC(x) @ W) through the devices (forward read, one read of every device)."""
        x = np.ascontiguousarray(x, dtype=float).ravel()
        if x.size != self.n_in:
            raise BiolearnError(f"input of length {x.size}", "in Crossbar.matvec",
                                f"pass {self.n_in} inputs")
        out = np.empty(self.n_out)
        c = self.cfg
        _mvm_seeded(x, *self._args(), self.noisy, c.dac_bits, c.x_max, c.tile_rows,
                    c.adc_bits, c.adc_range, out, int(rng.integers(2**31 - 1)))
        return out

    def rmatvec(self, d: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """e = W @ d (transposed read, as used by backpropagation)."""
        d = np.ascontiguousarray(d, dtype=float).ravel()
        if d.size != self.n_out:
            raise BiolearnError(f"error vector of length {d.size}", "in Crossbar.rmatvec",
                                f"pass {self.n_out} values")
        out = np.empty(self.n_in)
        _mvm_t_seeded(d, *self._args(), self.noisy, out, int(rng.integers(2**31 - 1)))
        return out

    def update(self, dw: np.ndarray, scheme: str, rng: np.random.Generator):
        """Apply a desired change dW (n_in, n_out) with an update scheme; returns UpdateStats."""
        from .update import apply_delta

        _, stats = apply_delta(self.syn, np.asarray(dw).reshape(-1), scheme, rng)
        return stats
