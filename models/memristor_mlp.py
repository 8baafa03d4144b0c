"""Online backprop on memristive crossbars: the NeuroSim 400-100-10 MLP on MNIST.

Network and protocol of MLP+NeuroSim v3 (Chen, Peng & Yu, IEEE TCAD 37:3067, 2018, Sec. V;
``Train.cpp``/``Param.cpp``): 20x20 center-cropped MNIST (or full 28x28 with ``crop: 28``),
inputs binarised at 0.5 (1-bit DAC), a sigmoid hidden layer of 100 units and a sigmoid output
layer of 10 trained with squared error and batch-1 SGD (learning rates 0.4 and 0.2), weights in
[-1, 1] initialised uniformly on {-1, -2/3, ..., 1}, ``images_per_epoch`` images drawn at random
(with replacement) per epoch (NeuroSim: 8000 per epoch, 125 epochs). In hardware mode every step
goes through the crossbar model (:mod:`biolearn.hardware.crossbar`):

* forward: input DAC -> analog column sums through the device conductances -> 8-bit ADC per
  column (full scale = all rows at the weight bound) -> x ``preact_scale`` -> sigmoid. NeuroSim's
  ``DigitsToAlgorithm`` maps the full-scale current (weight span 2 per row) to ``rows``, so its
  hardware preactivation is sum(x w) / 2 (``preact_scale = 0.5``). The hidden activations go to
  the second array through a ``hidden_bits`` DAC (NeuroSim: 1 bit, threshold 0.5);
* backward: the output deltas are read through the transposed second array (the conductances
  themselves, with read noise, no ADC) as NeuroSim uses the weights read back from the array;
* update: dW = -lr * delta * input (analog hidden activations, DAC-quantised inputs) is handed
  synapse by synapse to an update scheme (:func:`biolearn.hardware.update.update_synapse`), which
  writes pulses to the devices; changes below the zero-pulse bound are skipped.

The software-BP baseline runs the same function (same ``preact_scale``) with float weights
(clipped to [-1, 1]), the same binary inputs, analog hidden activations and no ADC.

One config sweeps device preset x update scheme (x device-to-device NL variation) and writes
``results_table.md`` / ``.csv``, the metrics table, the devices' conductance response curves
(``device_curves.png``) and accuracy per device and scheme (``accuracy_by_device.png``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np

from biolearn.config import Invalid, param, wrap_error
from biolearn.errors import BiolearnError
from biolearn.hardware.crossbar import mvm_kernel, mvm_t_kernel
from biolearn.hardware.update import coincidence_update, no_pulse_bound, update_synapse
from biolearn.registry import register

_DEF_DEVICES = ["ideal", "target", "ag_si", "alox_hfo2", "taox_tio2", "pcmo"]


@dataclass
class MemristorMLPParams:
    crop: int = param(20, "center crop size: 20 -> 400 inputs (NeuroSim), 28 -> 784 inputs",
                      min=8, max=28)
    n_hidden: int = param(100, "hidden units (NeuroSim: 100)", min=1)
    epochs: int = param(10, "epochs (NeuroSim: 125)", min=1)
    images_per_epoch: int = param(8000, "random training images per epoch (NeuroSim: 8000)",
                                  min=1)
    lr1: float = param(0.4, "learning rate input->hidden (NeuroSim alpha1)", min=0.0)
    lr2: float = param(0.2, "learning rate hidden->output (NeuroSim alpha2)", min=0.0)
    w_max: float = param(1.0, "weight bound; weights live in [-w_max, w_max]", min=1e-6)
    devices: list[str] = param(factory=lambda: list(_DEF_DEVICES),
                               help="device presets or names defined in custom_devices")
    custom_devices: dict[str, dict] = param(factory=dict, help="user devices: name -> "
                                            "{base: PRESET, key: value} (see docs/hardware.md)")
    schemes: list[str] = param(factory=lambda: ["bidirectional:offset",
                                                "bidirectional:differential",
                                                "unidirectional:differential"],
                               help="update scheme:mapping pairs (ideal, bidirectional, "
                                    "unidirectional, coincidence; offset or differential)")
    coincidence_bl: int = param(10, "coincidence scheme: stochastic pulse-train length BL "
                                "(Gokmen & Vlasov 2016: 10)", min=1, max=64)
    update_management: bool = param(True, "coincidence scheme: balance row and column pulse "
                                     "probabilities (Gokmen, Onen & Haensch 2017)")
    d2d_nl: list[float] = param(factory=lambda: [0.0], help="device-to-device sigma of the "
                                "NL label (NeuroSim sigmaDtoD); one run per value", min=0.0)
    software_baseline: bool = param(True, "also train the float software-BP network")
    dac_bits: int = param(1, "input DAC bits (NeuroSim: 1, black/white)", min=0, max=16)
    hidden_bits: int = param(1, "hidden->output DAC bits (NeuroSim: 1); 0 = analog", min=0,
                             max=16)
    adc_bits: int = param(8, "ADC bits per column partial sum (NeuroSim: 8); 0 = ideal", min=0,
                          max=24)
    adc_range: float = param(1.0, "ADC full scale as a fraction of rows*x_max*w_max", min=1e-3,
                             max=1.0)
    tile_rows: int = param(0, "rows per array tile (0 = one tile per layer)", min=0)
    read_noise: float | None = param(None, "override every device's relative read noise sigma")
    preact_scale: float = param(0.5, "ADC code -> sigmoid input factor: NeuroSim maps the "
                                "full-scale column current (weight span 2 w_max per row) to rows "
                                "x w_max, so the hardware preactivation is sum(x w) / 2; the "
                                "software baseline uses the same factor (1.0 = NeuroSim's "
                                "algorithm-only mode)", min=1e-6)
    readout: str = param("mid_reference", "column readout: mid_reference (MLP+NeuroSim v3: "
                         "a mid-range reference column cancels G_min) or gmax_reference "
                         "(v1/v2, used for TCAD 2018 Table I: sum 2 I - n_active I(G_max), so the "
                         "forward weight is 2 G/G_max - 1 = w (1 - 1/on_off) + 1/on_off)",
                         choices=["mid_reference", "gmax_reference"])
    init_write: str = param("exact", "initial weight write: exact, or neurosim (MLP+NeuroSim v3 "
                            "WeightToConductance omits +G_min: w0 -> w0 - 2 w_max/(on_off - 1), "
                            "clipped)", choices=["exact", "neurosim"])
    eval_every: int = param(0, "evaluate on the test set every N epochs (0 = only at the end)",
                            min=0)

    def validate(self) -> None:
        """Schemes and devices are checked here, not when their run starts."""
        from biolearn.hardware.synapses import MAPPINGS
        from biolearn.hardware.update import scheme_code

        for k, s in enumerate(self.schemes):
            scheme, mapping = _parse_scheme(s)
            try:
                if mapping not in MAPPINGS:
                    raise BiolearnError(f"unknown mapping '{mapping}'", None,
                                        "use " + " or ".join(MAPPINGS))
                scheme_code(scheme, mapping, outer=True)
            except BiolearnError as e:
                raise wrap_error(e, f"schemes[{k}]") from None
        for k, name in enumerate(self.devices):
            try:
                _resolve_device(name, self, 0.0)
            except BiolearnError as e:
                raise wrap_error(e, f"devices[{k}]") from None
        if not self.software_baseline and not (self.devices and self.schemes
                                                and self.d2d_nl):
            raise Invalid("nothing to run: {0}, {1} or {2} is empty and {3} is false",
                          "devices", "schemes", "d2d_nl", "software_baseline",
                          fix="list a device, a scheme and a d2d_nl value, or "
                              "software_baseline: true")


# ------------------------------------------------------------------------------------------
# kernels
# ------------------------------------------------------------------------------------------

@numba.njit(cache=True)
def _sigmoid(v: float) -> float:
    return 1.0 / (1.0 + np.exp(-v))


@numba.njit(cache=True)
def _train_software(X, y, order, W1, W2, lr1, lr2, w_max, scale):
    n_in, n_hid = W1.shape
    n_out = W2.shape[1]
    a1 = np.empty(n_hid)
    a2 = np.empty(n_out)
    s1 = np.empty(n_hid)
    s2 = np.empty(n_out)
    for t in range(order.size):
        k = order[t]
        x = X[k]
        for j in range(n_hid):
            acc = 0.0
            for i in range(n_in):
                if x[i] != 0.0:
                    acc += x[i] * W1[i, j]
            a1[j] = _sigmoid(scale * acc)
        for j in range(n_out):
            acc = 0.0
            for i in range(n_hid):
                acc += a1[i] * W2[i, j]
            a2[j] = _sigmoid(scale * acc)
            tgt = 1.0 if y[k] == j else 0.0
            s2[j] = -2.0 * a2[j] * (1.0 - a2[j]) * (tgt - a2[j])
        for i in range(n_hid):
            acc = 0.0
            for j in range(n_out):
                acc += W2[i, j] * s2[j]
            s1[i] = a1[i] * (1.0 - a1[i]) * acc
        for i in range(n_hid):
            for j in range(n_out):
                W2[i, j] = min(max(W2[i, j] - lr2 * s2[j] * a1[i], -w_max), w_max)
        for i in range(n_in):
            if x[i] != 0.0:
                for j in range(n_hid):
                    W1[i, j] = min(max(W1[i, j] - lr1 * s1[j] * x[i], -w_max), w_max)


@numba.njit(cache=True)
def _predict_software(X, W1, W2, scale):
    n = X.shape[0]
    pred = np.empty(n, dtype=np.int64)
    for k in range(n):
        h = 1.0 / (1.0 + np.exp(-scale * (X[k] @ W1)))
        pred[k] = np.argmax(h @ W2)
    return pred



@numba.njit(cache=True)
def _dac(v: float, bits: int) -> float:
    """Unsigned DAC on [0, 1]: nearest of 2^bits codes (as the crossbar's input DAC)."""
    levels = 2.0 ** bits - 1.0
    return np.floor(min(max(v, 0.0), 1.0) * levels + 0.5) / levels


@numba.njit(cache=True)
def _forward_hw(x, n_in, n_hid, n_out, g1p, p1p, g1n, p1n, g2p, p2p, g2n, p2n, mapping, nom,
                w_max, noisy, dac_bits, hidden_bits, tile_rows, adc_bits, adc_range, scale, leak,
                h, a1, o, a2):
    """Forward read through both arrays; ``scale`` = ADC-code -> preactivation factor; ``leak``
    = 1/on_off with a G_max reference column (forward weight w (1 - leak) + leak w_max), 0 with
    a mid-range reference."""
    mvm_kernel(x, n_in, n_hid, g1p, p1p, g1n, p1n, mapping, nom, w_max, noisy, dac_bits,
               1.0, tile_rows, adc_bits, adc_range, h)
    b1 = 0.0
    if leak > 0.0:  # G_max reference: every active row adds w_max / on_off
        for i in range(n_in):
            b1 += x[i] if dac_bits == 0 else _dac(x[i], dac_bits)
    for j in range(n_hid):
        a1[j] = 1.0 / (1.0 + np.exp(-scale * ((1.0 - leak) * h[j] + leak * w_max * b1)))
    mvm_kernel(a1, n_hid, n_out, g2p, p2p, g2n, p2n, mapping, nom, w_max, noisy,
               hidden_bits, 1.0, tile_rows, adc_bits, adc_range, o)
    b2 = 0.0
    if leak > 0.0:
        for i in range(n_hid):
            b2 += a1[i] if hidden_bits == 0 else _dac(a1[i], hidden_bits)
    for j in range(n_out):
        a2[j] = 1.0 / (1.0 + np.exp(-scale * ((1.0 - leak) * o[j] + leak * w_max * b2)))


@numba.njit(cache=True)
def _train_hw(X, y, order, n_hid, n_out, g1p, p1p, s1p, g1n, p1n, s1n, g2p, p2p, s2p, g2n, p2n,
              s2n, mapping, nom, w_max, kind, lut_up, lut_dn, ecoef, scheme, lr1, lr2, noisy,
              dac_bits, hidden_bits, tile_rows, adc_bits, adc_range, scale, leak, bl, um, stats,
              seed):
    """Batch-1 SGD through the arrays (MLP+NeuroSim ``Train``): forward read, deltas with the
    weights read back from the second array, then dW = -lr * delta * input handed synapse by
    synapse to the update scheme (rows with a zero input receive no pulse), or, for the
    coincidence scheme (code 3), as the outer product (input, -delta) to the array."""
    np.random.seed(seed)
    n_in = X.shape[1]
    h = np.empty(n_hid)
    a1 = np.empty(n_hid)
    o = np.empty(n_out)
    a2 = np.empty(n_out)
    s2 = np.empty(n_out)
    e1 = np.empty(n_hid)
    xq = np.empty(n_in)
    levels = 2.0 ** dac_bits - 1.0
    thr = no_pulse_bound(scheme, nom, w_max)
    for t in range(order.size):
        k = order[t]
        x = X[k]
        _forward_hw(x, n_in, n_hid, n_out, g1p, p1p, g1n, p1n, g2p, p2p, g2n, p2n, mapping, nom,
                    w_max, noisy, dac_bits, hidden_bits, tile_rows, adc_bits, adc_range, scale,
                    leak, h, a1, o, a2)
        for j in range(n_out):
            tgt = 1.0 if y[k] == j else 0.0
            s2[j] = -2.0 * a2[j] * (1.0 - a2[j]) * (tgt - a2[j])
        mvm_t_kernel(s2, n_hid, n_out, g2p, p2p, g2n, p2n, mapping, nom, w_max, noisy, e1)
        for i in range(n_hid):
            e1[i] *= a1[i] * (1.0 - a1[i])
        for i in range(n_in):  # the input the array saw (DAC-quantised)
            xi = x[i]
            if dac_bits > 0:
                xi = np.floor(min(max(xi, 0.0), 1.0) * levels + 0.5) / levels
            xq[i] = xi
        if scheme == 3:  # stochastic pulse coincidence: one parallel outer-product update
            coincidence_update(a1, -s2, lr2, bl, um, mapping, nom, w_max, g2p, p2p, s2p, g2n,
                               p2n, s2n, kind, lut_up, lut_dn, ecoef, stats)
            coincidence_update(xq, -e1, lr1, bl, um, mapping, nom, w_max, g1p, p1p, s1p, g1n,
                               p1n, s1n, kind, lut_up, lut_dn, ecoef, stats)
            continue
        xmax = np.max(np.abs(xq))
        # a change below ``thr`` is quantised to zero pulses: skip those synapses (and whole
        # columns whose largest change is below it) without touching the devices
        for j in range(n_out):
            if abs(lr2 * s2[j]) < thr:
                continue
            for i in range(n_hid):
                update_synapse(i * n_out + j, -lr2 * s2[j] * a1[i], scheme, mapping, nom, w_max,
                               g2p, p2p, s2p, g2n, p2n, s2n, kind, lut_up, lut_dn, ecoef, stats)
        for j in range(n_hid):
            if abs(lr1 * e1[j]) * xmax < thr:
                continue
            for i in range(n_in):
                if xq[i] != 0.0:
                    update_synapse(i * n_hid + j, -lr1 * e1[j] * xq[i], scheme, mapping, nom,
                                   w_max, g1p, p1p, s1p, g1n, p1n, s1n, kind, lut_up, lut_dn,
                                   ecoef, stats)


@numba.njit(cache=True)
def _predict_hw(X, n_hid, n_out, g1p, p1p, g1n, p1n, g2p, p2p, g2n, p2n, mapping, nom, w_max,
                noisy, dac_bits, hidden_bits, tile_rows, adc_bits, adc_range, scale, leak, seed):
    np.random.seed(seed)
    n = X.shape[0]
    n_in = X.shape[1]
    pred = np.empty(n, dtype=np.int64)
    h = np.empty(n_hid)
    a1 = np.empty(n_hid)
    o = np.empty(n_out)
    a2 = np.empty(n_out)
    for k in range(n):
        _forward_hw(X[k], n_in, n_hid, n_out, g1p, p1p, g1n, p1n, g2p, p2p, g2n, p2n, mapping,
                    nom, w_max, noisy, dac_bits, hidden_bits, tile_rows, adc_bits, adc_range,
                    scale, leak, h, a1, o, a2)
        pred[k] = np.argmax(a2)
    return pred


def _kernels() -> tuple:
    return _train_hw, _predict_hw


# ------------------------------------------------------------------------------------------
# Python front
# ------------------------------------------------------------------------------------------

@dataclass
class HardwareMLP:
    """Two crossbars (input->hidden, hidden->output) and the peripheral settings."""

    l1: Any
    l2: Any
    scheme: str
    n_in: int
    n_hid: int
    n_out: int
    p: MemristorMLPParams

    @property
    def noisy(self) -> bool:
        """True if any device has read noise (else reads skip the per-device parameters)."""
        from biolearn.hardware.devices import C_READ

        arrs = [self.l1.syn.pos, self.l1.syn.neg, self.l2.syn.pos, self.l2.syn.neg]
        return any(bool(np.any(a.prm[:, C_READ] > 0)) for a in arrs if a is not None)

    def _dev_args(self) -> tuple:
        s1, s2 = self.l1.syn, self.l2.syn
        g1n, p1n, st1n = s1.neg_arrays()
        g2n, p2n, st2n = s2.neg_arrays()
        return (s1.pos.g, s1.pos.prm, s1.pos.stuck, g1n, p1n, st1n, s2.pos.g, s2.pos.prm,
                s2.pos.stuck, g2n, p2n, st2n)

    def _periph(self) -> tuple:
        p = self.p
        leak = 0.0
        if p.readout == "gmax_reference":
            nom = self.l1.syn.pos.nominal
            leak = nom[0] / nom[1]
        return (p.dac_bits, p.hidden_bits, p.tile_rows if p.tile_rows > 0 else 1 << 30,
                p.adc_bits, p.adc_range, p.preact_scale, leak)

    def train(self, X: np.ndarray, y: np.ndarray, order: np.ndarray, seed: int) -> np.ndarray:
        from biolearn.hardware.devices import energy_coefficients
        from biolearn.hardware.update import scheme_code

        train, _ = _kernels()
        s1 = self.l1.syn
        stats = np.zeros(5)
        (g1p, p1p, s1p, g1n, p1n, s1n, g2p, p2p, s2p, g2n, p2n, s2n) = self._dev_args()
        train(X, y, order, self.n_hid, self.n_out, g1p, p1p, s1p, g1n, p1n, s1n, g2p, p2p, s2p,
              g2n, p2n, s2n, s1.mapping_code, s1.pos.nominal, s1.w_max, s1.pos.kind,
              s1.pos.lut_up, s1.pos.lut_dn, energy_coefficients(s1.pos.params),
              scheme_code(self.scheme, s1.mapping, outer=True), self.p.lr1, self.p.lr2,
              self.noisy, *self._periph(), self.p.coincidence_bl, self.p.update_management,
              stats, seed)
        return stats

    def predict(self, X: np.ndarray, seed: int) -> np.ndarray:
        _, predict = _kernels()
        s1 = self.l1.syn
        (g1p, p1p, _, g1n, p1n, _, g2p, p2p, _, g2n, p2n, _) = self._dev_args()
        return predict(X, self.n_hid, self.n_out, g1p, p1p, g1n, p1n, g2p, p2p, g2n, p2n,
                       s1.mapping_code, s1.pos.nominal, s1.w_max, self.noisy, *self._periph(),
                       seed)


def init_weights(n_in: int, n_out: int, rng: np.random.Generator, w_max: float) -> np.ndarray:
    """NeuroSim initial weights: uniform on {-1, -2/3, ..., 1} x w_max (``WeightInitialize``)."""
    return rng.integers(-3, 4, size=(n_in, n_out)) / 3.0 * w_max


def neurosim_initial_write(w: np.ndarray, on_off: float, w_max: float) -> np.ndarray:
    """Weights MLP+NeuroSim v3 actually writes at start (``Mapping.cpp: WeightToConductance``
    -> ``Array::WriteCell`` with ``regular=false``): G = (w + w_max)/(2 w_max) (G_max - G_min)
    without the + G_min offset, clipped to [G_min, G_max]; read back with the offset mapping this
    is w - 2 w_max / (on_off - 1), clipped to [-w_max, w_max] (on/off 2: every weight -> -w_max).
    """
    return np.clip(w - 2.0 * w_max / (on_off - 1.0), -w_max, w_max)


def preprocess(images: np.ndarray, crop: int) -> np.ndarray:
    """uint8 [N, 28, 28] -> float [N, crop*crop] in [0, 1] (center crop)."""
    from biolearn.data import crop as crop_fn

    x = crop_fn(images, crop) if crop < 28 else images
    return np.ascontiguousarray(x.reshape(len(x), -1), dtype=np.float64) / 255.0


def build_hardware_mlp(device: Any, scheme: str, mapping: str, p: MemristorMLPParams,
                       n_in: int, n_out: int, rng: np.random.Generator) -> HardwareMLP:
    """Two crossbars on ``device`` holding NeuroSim's initial weights."""
    from biolearn.hardware.crossbar import Crossbar, CrossbarConfig
    from biolearn.hardware.devices import DeviceParams
    from biolearn.hardware.presets import device_from_dict
    from biolearn.hardware.update import scheme_code

    scheme_code(scheme, mapping, outer=True)
    cfg = CrossbarConfig(mapping=mapping, w_max=p.w_max, read_noise=True)
    w1 = init_weights(n_in, p.n_hidden, rng, p.w_max)
    w2 = init_weights(p.n_hidden, n_out, rng, p.w_max)
    if p.init_write == "neurosim":
        dev = device if isinstance(device, DeviceParams) else device_from_dict(device)
        w1, w2 = (neurosim_initial_write(w, dev.on_off, p.w_max) for w in (w1, w2))
    l1 = Crossbar(n_in, p.n_hidden, device, rng, cfg, w_init=w1)
    l2 = Crossbar(p.n_hidden, n_out, device, rng, cfg, w_init=w2)
    return HardwareMLP(l1, l2, scheme, n_in, p.n_hidden, n_out, p)


def _resolve_device(name: str, p: MemristorMLPParams, d2d: float):
    from biolearn.hardware.presets import device_from_dict

    spec: Any = p.custom_devices.get(name, name)
    dev = device_from_dict(spec)
    if isinstance(spec, dict):
        dev.name = name
    if d2d > 0:
        dev.sigma_d2d_nl = d2d
    if p.read_noise is not None:
        dev.sigma_read = p.read_noise
    return dev


def _parse_scheme(s: str) -> tuple[str, str]:
    scheme, _, mapping = s.partition(":")
    if not mapping:
        mapping = "differential" if scheme == "unidirectional" else "offset"
    return scheme, mapping


def train_hardware(dev: Any, scheme: str, mapping: str, p: MemristorMLPParams, data: tuple,
                   rng: np.random.Generator, progress: Any = None) -> dict:
    """Train one device/scheme network; returns accuracy, pulses, energy and the curve."""
    xtr, ytr, xte, yte = data
    net = build_hardware_mlp(dev, scheme, mapping, p, xtr.shape[1], 10, rng)
    stats = np.zeros(5)
    curve = []
    t0 = time.perf_counter()
    for ep in range(p.epochs):
        order = rng.integers(0, len(xtr), size=p.images_per_epoch)
        stats += net.train(xtr, ytr, order, int(rng.integers(2**31 - 1)))
        if progress is not None:
            progress.update(p.images_per_epoch)
        if p.eval_every and (ep + 1) % p.eval_every == 0 and ep + 1 < p.epochs:
            pred = net.predict(xte, int(rng.integers(2**31 - 1)))
            curve.append(float(np.mean(pred == yte)))
    pred = net.predict(xte, int(rng.integers(2**31 - 1)))
    acc = float(np.mean(pred == yte))
    curve.append(acc)
    return {"test_accuracy": acc, "curve": curve, "ltp_pulses": float(stats[0]),
            "ltd_pulses": float(stats[1]), "pulses": float(stats[0] + stats[1]),
            "energy_j": float(stats[2]), "refreshes": float(stats[3]),
            "refresh_pulses": float(stats[4]), "train_s": time.perf_counter() - t0}


def train_software(p: MemristorMLPParams, data: tuple, rng: np.random.Generator,
                   progress: Any = None) -> dict:
    """Float software-BP baseline with the same inputs, initial weights and learning rates."""
    xtr, ytr, xte, yte = data
    levels = 2.0 ** p.dac_bits - 1.0
    q = (lambda a: np.floor(a * levels + 0.5) / levels) if p.dac_bits > 0 else (lambda a: a)
    xtr_q, xte_q = q(xtr), q(xte)
    W1 = init_weights(xtr.shape[1], p.n_hidden, rng, p.w_max)
    W2 = init_weights(p.n_hidden, 10, rng, p.w_max)
    curve = []
    t0 = time.perf_counter()
    for ep in range(p.epochs):
        order = rng.integers(0, len(xtr), size=p.images_per_epoch)
        _train_software(xtr_q, ytr, order, W1, W2, p.lr1, p.lr2, p.w_max, p.preact_scale)
        if progress is not None:
            progress.update(p.images_per_epoch)
        if p.eval_every and (ep + 1) % p.eval_every == 0 and ep + 1 < p.epochs:
            curve.append(float(np.mean(_predict_software(xte_q, W1, W2, p.preact_scale) == yte)))
    acc = float(np.mean(_predict_software(xte_q, W1, W2, p.preact_scale) == yte))
    curve.append(acc)
    return {"test_accuracy": acc, "curve": curve, "pulses": 0.0, "energy_j": 0.0,
            "train_s": time.perf_counter() - t0}


def _plots(ctx: Any, rows: list[dict], devices: dict, p: MemristorMLPParams) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from biolearn.hardware.devices import pulse_response

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for name, dev in devices.items():
        r = pulse_response(dev, rng=np.random.default_rng(0))[0]
        xs = np.arange(r.size) / dev.levels_ltp
        ax.plot(xs, (r - dev.g_min) / (dev.g_max - dev.g_min), label=name, lw=1.2)
    ax.set_xlabel("pulse number / levels (LTP, then LTD)")
    ax.set_ylabel("(G - G_min) / (G_max - G_min)")
    ax.set_title("Conductance response (one device, with C2C noise)")
    ax.legend(fontsize=8)
    ctx.save_figure(fig, "device_curves")

    keys = sorted({(r["scheme"], r["mapping"]) for r in rows if r["device"] != "software"})
    devs = [d for d in devices]
    sw = [r for r in rows if r["device"] == "software"]
    fig, ax = plt.subplots(figsize=(7.5, 4))
    width = 0.8 / max(1, len(keys))
    for k, key in enumerate(keys):
        vals = []
        for d in devs:
            acc = [r["test_accuracy"] for r in rows if r["device"] == d
                   and (r["scheme"], r["mapping"]) == key and r["d2d_nl"] == p.d2d_nl[0]]
            vals.append(100 * acc[0] if acc else np.nan)
        ax.bar(np.arange(len(devs)) + (k - (len(keys) - 1) / 2) * width, vals, width,
               label=f"{key[0]} ({key[1]})")
    if sw:
        ax.axhline(100 * sw[0]["test_accuracy"], color="k", ls="--", lw=1, label="software BP")
    ax.set_xticks(np.arange(len(devs)), devs, rotation=20)
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8)
    ctx.save_figure(fig, "accuracy_by_device")

    if len(p.d2d_nl) > 1:
        fig, ax = plt.subplots(figsize=(6, 4))
        for d in devs:
            for key in keys:
                pts = sorted((r["d2d_nl"], r["test_accuracy"]) for r in rows if r["device"] == d
                             and (r["scheme"], r["mapping"]) == key)
                if pts:
                    ax.plot([a for a, _ in pts], [100 * b for _, b in pts], marker="o",
                            label=f"{d} {key[0]}/{key[1]}")
        if sw:
            ax.axhline(100 * sw[0]["test_accuracy"], color="k", ls="--", lw=1,
                       label="software BP")
        ax.set_xlabel("device-to-device sigma of NL label")
        ax.set_ylabel("test accuracy (%)")
        ax.legend(fontsize=6)
        ctx.save_figure(fig, "accuracy_vs_variation")


def _table(rows: list[dict]) -> str:
    from biolearn.hardware.presets import NEUROSIM_ACCURACY

    head = ("| device | scheme | mapping | D2D NL σ | accuracy % | NeuroSim % | pulses | "
            "refreshes | energy proxy (J) |\n|---|---|---|---|---|---|---|---|---|\n")
    lines = []
    for r in rows:
        ref = NEUROSIM_ACCURACY.get(r["device"])
        lines.append(f"| {r['device']} | {r['scheme']} | {r['mapping']} | {r['d2d_nl']:g} | "
                     f"{100 * r['test_accuracy']:.2f} | {'' if ref is None else ref} | "
                     f"{r.get('pulses', 0):.3g} | {r.get('refreshes', 0):.3g} | "
                     f"{r.get('energy_j', 0):.3g} |")
    return head + "\n".join(lines) + "\n"


@register("memristor_mlp", MemristorMLPParams)
def run(cfg: Any, ctx: Any) -> dict:
    """NeuroSim 400-100-10 MLP trained online on device crossbars; device x scheme sweep."""
    from biolearn.data import load_mnist

    p: MemristorMLPParams = cfg.params
    if cfg.data.dataset == "none":
        raise BiolearnError("memristor_mlp needs MNIST", "at 'data.dataset'",
                            "set data.dataset: mnist or fashion_mnist")
    xtr, ytr, xte, yte = load_mnist(cfg.data.root or ctx.data_root, dataset=cfg.data.dataset,
                                    n_train=cfg.data.n_train, n_test=cfg.data.n_test,
                                    quiet=ctx.quiet)
    data = (preprocess(xtr, p.crop), ytr.astype(np.int64), preprocess(xte, p.crop),
            yte.astype(np.int64))
    combos = [_parse_scheme(s) for s in p.schemes]
    devices = {name: _resolve_device(name, p, 0.0) for name in p.devices}
    n_runs = len(devices) * len(combos) * len(p.d2d_nl) + int(p.software_baseline)
    rows: list[dict] = []
    bar = ctx.progress(n_runs * p.epochs * p.images_per_epoch, "memristor MLP")
    if p.software_baseline:
        res = train_software(p, data, np.random.default_rng([cfg.seed, 0]), bar)
        rows.append({"device": "software", "scheme": "float", "mapping": "-", "d2d_nl": 0.0,
                     **res})
    for di, name in enumerate(devices):
        for si, (scheme, mapping) in enumerate(combos):
            for vi, d2d in enumerate(p.d2d_nl):
                dev = _resolve_device(name, p, d2d)
                rng = np.random.default_rng([cfg.seed, 1 + di, si, vi])
                res = train_hardware(dev, scheme, mapping, p, data, rng, bar)
                rows.append({"device": name, "scheme": scheme, "mapping": mapping,
                             "d2d_nl": d2d, **res})
    bar.close()
    table = _table(rows)
    ctx.path("results_table.md").write_text(table)
    import csv

    with open(ctx.path("results_table.csv"), "w", newline="") as fh:
        keys = ["device", "scheme", "mapping", "d2d_nl", "test_accuracy", "pulses",
                "ltp_pulses", "ltd_pulses", "refreshes", "refresh_pulses", "energy_j", "train_s"]
        w = csv.DictWriter(fh, keys, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    _plots(ctx, rows, devices, p)
    hw = [r for r in rows if r["device"] != "software"]
    metrics: dict[str, Any] = {
        "test_accuracy": hw[0]["test_accuracy"] if hw else rows[0]["test_accuracy"],
        "table": rows,
    }
    if p.software_baseline:
        metrics["software_test_accuracy"] = rows[0]["test_accuracy"]
    for r in hw:
        metrics[f"acc/{r['device']}/{r['scheme']}:{r['mapping']}/d2d{r['d2d_nl']:g}"] = \
            r["test_accuracy"]
    # unidirectional vs bidirectional margin per device (same differential mapping, first d2d)
    for name in devices:
        acc = {(r["scheme"], r["mapping"]): r["test_accuracy"] for r in hw
               if r["device"] == name and r["d2d_nl"] == p.d2d_nl[0]}
        if ("unidirectional", "differential") in acc and ("bidirectional", "differential") in acc:
            metrics[f"uni_minus_bi/{name}"] = (acc[("unidirectional", "differential")]
                                               - acc[("bidirectional", "differential")])
    if not ctx.quiet:
        print(table)
    return metrics
