"""Differentiable torch twin of the 4f correlator and the ``OpticalConv2d`` layer.

Same physics as :mod:`biolearn.hardware.optical` (input SLM with bit depth, contrast and fill
factor; zero padding; quantised amplitude / phase-only / complex Fourier mask; coherent or
square-law detection with Poisson shot noise, read noise, full well and ADC), on batched tensors
``[B, C, H, W]`` so that networks can be trained with the hardware in the loop. Lens 2 is written
as an inverse FFT, which equals the physical forward transform followed by the image inversion and
sign flip that :func:`biolearn.hardware.optical.four_f` undoes (the two agree to float precision).
The input field is real (amplitude SLM) and every realisable mask is Hermitian, so the camera
field is real and the layer uses the real FFT pair (half the work); detection and camera noise are
applied only to the output window, with auto-exposure set by the whole frame.

Non-differentiable steps use straight-through estimators (Bengio, Léonard & Courville 2013,
arXiv:1308.3432): forward is the hardware value, backward the identity for SLM quantisation, and
for the camera (shot and read noise, full well, ADC) the gradient of the noiseless amplitude
``|E|``; the rest (FFTs, mask product) is differentiated exactly.

Conventions follow ``torch.nn.functional.conv2d``: cross-correlation, ``padding`` ``"same"`` (odd
kernels) or ``"valid"``. Signed kernels need ``negative="pseudo"`` (two passes with ``relu(w)`` and
``relu(-w)``, subtracted after the square root of each detected intensity) or ``"bias"`` (one pass
with ``w - min w`` plus the electronic correction ``min w · Σ_window x``) unless the detection is
``"field"``. ``channel_sum="optical"`` sums input channels coherently in one exposure (tiling the
channels in the input plane with matching kernel offsets in the mask); ``"electronic"`` detects
each (output, input) channel pair in its own pass and adds them after detection. ``shared=True``
applies the same ``out_channels`` kernels to every input channel separately (ConvShareViT's
depthwise convolution with weights shared across input channels; Ibadulla, Chen &
Reyes-Aldasoro 2025, arXiv:2504.11517), outputs ``[B, C_in * C_out, H', W']``.

torch is imported lazily; ``OpticalConv2d`` is built on first access.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

from biolearn.errors import BiolearnError, require_torch
from biolearn.hardware.optical import padded_size

_CACHE: dict[str, Any] = {}


@dataclass
class Optics:
    """Hardware settings of an optical convolution (all ideal by default).

    input_bits / mask_bits: SLM levels ``2**bits`` (None = continuous).
    mask_modulation: ``complex`` | ``phase`` | ``amplitude`` (see :class:`optical.SLM`).
    detection: ``field`` (coherent read-out, real part) | ``amplitude`` (camera, square root).
    negative: ``pseudo`` | ``bias`` | ``none`` — how signed kernels are realised.
    channel_sum: ``optical`` (coherent, one exposure per output) | ``electronic`` (per pair).
    full_scale_electrons: photoelectrons at a frame's brightest pixel (auto-exposure); None =
        no shot noise. read_noise_e: RMS read noise (e-). adc_bits: camera ADC (None = off).
    exact_poisson: sample shot noise from the Poisson law (slow on CPU) instead of its Gaussian
        approximation (same mean and variance; accurate above ~20 e-).
    fill_factor / dead_zone: both SLMs' active-area fraction and inter-pixel field.
    contrast: input SLM intensity contrast ratio (inf = perfect black).
    input_negative: ``error`` (inputs must be non-negative: an amplitude SLM shows drive values
        in [0, 1]) | ``split`` (signed inputs as two frames, ``relu(x)`` and ``relu(-x)``,
        subtracted after detection; doubles the passes, like pseudo-negativity for kernels).
    """

    input_bits: int | None = None
    mask_bits: int | None = None
    mask_modulation: str = "complex"
    detection: str = "amplitude"
    negative: str = "pseudo"
    channel_sum: str = "optical"
    full_scale_electrons: float | None = None
    read_noise_e: float = 0.0
    adc_bits: int | None = None
    fill_factor: float = 1.0
    dead_zone: float = 0.0
    contrast: float = math.inf
    exact_poisson: bool = False
    input_negative: str = "error"

    def __post_init__(self) -> None:
        for key, allowed in (("mask_modulation", ("complex", "phase", "amplitude")),
                             ("detection", ("field", "amplitude")),
                             ("negative", ("pseudo", "bias", "none")),
                             ("channel_sum", ("optical", "electronic")),
                             ("input_negative", ("error", "split"))):
            if getattr(self, key) not in allowed:
                raise BiolearnError(f"unknown {key} '{getattr(self, key)}'", f"Optics.{key}",
                                    "use one of " + ", ".join(allowed))
        if self.detection == "amplitude" and self.negative == "none":
            raise BiolearnError("amplitude detection cannot represent negative kernels",
                                "Optics.negative", "use negative: pseudo or bias")

    def to_dict(self) -> dict:
        return asdict(self)




def quantize_ste(x: Any, bits: int | None) -> Any:
    """Clip to [0, 1], round to ``2**bits`` levels; straight-through gradient inside [0, 1]."""
    torch = require_torch()
    x = torch.clamp(x, 0.0, 1.0)
    if not bits:
        return x
    lv = 2 ** int(bits) - 1
    return x + (torch.round(x * lv) / lv - x).detach()


def quantize_phase_ste(phi: Any, bits: int | None) -> Any:
    """Round a phase to steps of ``2π / 2**bits`` with a straight-through gradient."""
    torch = require_torch()
    if not bits:
        return phi
    step = 2 * math.pi / 2 ** int(bits)
    return phi + (torch.round(phi / step) * step - phi).detach()


def _mask(h: Any, o: Optics) -> Any:
    """Realised mask transmission for a target ``h`` with ``|h| ≤ 1``."""
    torch = require_torch()
    if o.mask_modulation == "phase":
        t = torch.polar(torch.ones_like(h.real), quantize_phase_ste(torch.angle(h), o.mask_bits))
    else:
        amp = quantize_ste(torch.abs(h), o.mask_bits)
        if o.mask_modulation == "amplitude":
            t = torch.complex(amp, torch.zeros_like(amp))
        else:
            t = torch.polar(amp, quantize_phase_ste(torch.angle(h), o.mask_bits))
    if o.fill_factor != 1.0:
        t = o.fill_factor * t + (1.0 - o.fill_factor) * o.dead_zone
    return t


def _ideal_camera(o: Optics) -> bool:
    return o.full_scale_electrons is None and not o.adc_bits and o.read_noise_e == 0


def _camera(intensity: Any, o: Optics, generator: Any = None, i_fs: Any = None) -> Any:
    """Shot noise, read noise, full well and ADC on ``intensity`` (auto-exposure per frame).

    In units of the frame's full scale ``u = I / max I`` (``i_fs`` overrides the maximum, e.g.
    the peak of the whole camera frame when only a crop of it is passed): electrons
    ``n = u N_fs`` with shot noise (``exact_poisson``: Poisson sampling; else its Gaussian
    approximation with the same mean and variance, Poisson variance = mean) plus Gaussian read
    noise, clipped at the full well (= ``N_fs``) and digitised by ``adc_bits`` over it.
    """
    torch = require_torch()
    if _ideal_camera(o):
        return intensity
    if i_fs is None:
        i_fs = intensity.detach().amax(dim=(-2, -1), keepdim=True)
    i_fs = i_fs.clamp_min(1e-30)
    u = intensity / i_fs
    n_fs = o.full_scale_electrons if o.full_scale_electrons is not None else 1.0
    with torch.no_grad():
        if o.full_scale_electrons is not None and o.exact_poisson:
            mu = u * n_fs
            noise = (torch.poisson(mu, generator=generator) - mu) / n_fs
            if o.read_noise_e > 0:
                noise += torch.randn(u.shape, generator=generator, dtype=u.dtype) * (
                    o.read_noise_e / n_fs)
        elif o.full_scale_electrons is not None:  # Gaussian, variance (u N_fs + read²) e-²
            sd = (u.clamp_min(0.0) * n_fs + o.read_noise_e**2).sqrt_()
            noise = torch.randn(u.shape, generator=generator, dtype=u.dtype).mul_(sd) / n_fs
        elif o.read_noise_e > 0:  # read noise only, in units of the full scale
            noise = torch.randn(u.shape, generator=generator, dtype=u.dtype) * o.read_noise_e
        else:
            noise = 0.0
        v = (u + noise).clamp_(0.0, 1.0)  # full well = full scale
        if o.adc_bits:
            lv = 2 ** int(o.adc_bits) - 1
            v = v.mul_(lv).round_().div_(lv)
        # straight-through: forward = detected value, backward = identity inside the well
        delta = v - u
    u = u + delta
    return u * i_fs


def _real_spectrum(a: Any, m: int) -> Any:
    """Half spectrum (``rfft2`` on an ``m × m`` grid) of a real field or kernel."""
    return require_torch().fft.rfft2(a, s=(m, m))


def _optical_pass(xf: Any, w: Any, m: int, o: Optics, generator: Any,
                  window: tuple[int, int, int, int]) -> Any:
    """One (or one per channel pair) 4f exposure.

    ``xf``: half spectra of the real input fields ``[B, Ci, M, M/2+1]``; ``w``: non-negative (or
    signed, for field detection) kernels ``[Co, Ci, k, k]``. The input field is real and every
    realised mask is Hermitian (``|H|`` even, quantised phase odd: rounding is symmetric), so the
    camera field is real and the real FFT pair is exact. ``window`` = (row, rows, col, cols) of
    the output crop; detection is applied there, with auto-exposure from the whole frame.
    Returns the detected amplitude/field ``[B, Co, rows, cols]``.
    """
    torch = require_torch()
    h = _real_spectrum(w, m)  # [Co, Ci, M, M/2+1]
    if o.channel_sum == "optical":  # one mask (all input tiles) per output: one normalisation
        gain = h.abs().detach().amax(dim=(1, 2, 3), keepdim=True).clamp_min(1e-30)
    else:
        gain = h.abs().detach().amax(dim=(2, 3), keepdim=True).clamp_min(1e-30)
    t = _mask(h / gain, o)
    if o.channel_sum == "optical":
        prod = xf * t[None, :, 0] if xf.shape[1] == 1 else torch.einsum("bimn,oimn->bomn", xf, t)
        g = gain[:, 0]
    else:
        prod = xf[:, None] * t[None]  # [B, Co, Ci, M, M/2+1]
        g = gain
    e = torch.fft.irfft2(prod, s=(m, m))
    r0, nr, c0, nc = window
    ec = e[..., r0:r0 + nr, c0:c0 + nc]
    if o.detection == "field":
        y = ec * g
    else:
        eps2 = torch.finfo(ec.dtype).eps ** 2
        amp = torch.sqrt(ec * ec + eps2)  # noiseless |E|: gradient E/|E|, bounded by 1
        if not _ideal_camera(o):
            # straight-through for the whole camera in the amplitude domain: forward = detected
            # sqrt(I), backward = d|E| (differentiating sqrt of a noisy intensity that was
            # clipped near 0 gives E / eps: exploding gradients)
            with torch.no_grad():
                i_fs = (e ** 2).amax(dim=(-2, -1), keepdim=True)
                noisy = torch.sqrt(_camera(ec * ec, o, generator, i_fs) + eps2)
            amp = amp + (noisy - amp.detach())
        y = amp * g
    if o.channel_sum == "electronic":
        y = y.sum(dim=2)
    return y


def fourf_conv2d(x: Any, weight: Any, padding: str = "same", optics: Optics | None = None,
                 generator: Any = None) -> Any:
    """Cross-correlate non-negative ``x [B, Ci, H, W]`` with ``weight [Co, Ci, k, k]`` in 4f.

    Each sample is scaled to [0, 1] (its maximum, an electronic DAC gain undone afterwards), shown
    on the input SLM, filtered and detected per :class:`Optics`; ideal optics give
    ``torch.nn.functional.conv2d(x, weight, padding=padding)``.
    """
    torch = require_torch()
    o = optics or Optics()
    if padding not in ("same", "valid"):
        raise BiolearnError(f"unknown padding '{padding}'", "fourf_conv2d(padding=...)",
                            "use 'same' or 'valid'")
    b, ci, nh, nw = x.shape
    co, ci_w, kh, kw = weight.shape
    if ci_w != ci:
        raise BiolearnError(f"weight has {ci_w} input channels, input has {ci}",
                            "fourf_conv2d", "match weight.shape[1] to x.shape[1]")
    if bool((x.detach() < 0).any()):
        if o.input_negative == "split":  # two input frames, subtracted electronically
            y2 = fourf_conv2d(torch.cat([torch.relu(x), torch.relu(-x)]), weight, padding,
                              replace(o, input_negative="error"), generator)
            return y2[:b] - y2[b:]
        raise BiolearnError("negative input to an amplitude-encoded SLM", "fourf_conv2d",
                            "feed non-negative activations (e.g. after ReLU) or set "
                            "Optics(input_negative='split')")
    m = padded_size(max(nh, nw), max(kh, kw))  # same grid as the NumPy model
    scale = x.detach().abs().amax(dim=(1, 2, 3), keepdim=True).clamp_min(1e-30)
    xq = quantize_ste(x / scale, o.input_bits)
    a_min = 0.0 if math.isinf(o.contrast) else 1.0 / math.sqrt(o.contrast)
    e = a_min + (1.0 - a_min) * xq if a_min else xq
    e0 = a_min  # drive 0 (the padding)
    if o.fill_factor != 1.0:
        e = o.fill_factor * e + (1.0 - o.fill_factor) * o.dead_zone
        e0 = o.fill_factor * e0 + (1.0 - o.fill_factor) * o.dead_zone
    plane = e if e0 == 0 else e - e0
    plane = torch.nn.functional.pad(plane, (0, m - nw, 0, m - nh))
    if e0 != 0:
        plane = plane + e0
    xf = _real_spectrum(plane, m)
    wk = torch.flip(weight, dims=(-2, -1))  # correlation = convolution with the flipped kernel
    if padding == "same":  # torch's "same": left pad (k - 1) // 2
        window = (kh // 2, nh, kw // 2, nw)
    else:
        window = (kh - 1, nh - kh + 1, kw - 1, nw - kw + 1)
    offset = None
    if o.negative == "pseudo" and o.detection != "field":  # both passes in one batched call
        y2 = _optical_pass(xf, torch.cat([torch.relu(wk), torch.relu(-wk)]), m, o, generator,
                           window)
        y = y2[:, :co] - y2[:, co:]
    elif o.negative == "bias":
        offset = torch.clamp(wk.amin(dim=(1, 2, 3), keepdim=True), max=0.0)  # [Co,1,1,1]
        y = _optical_pass(xf, wk - offset, m, o, generator, window)
    else:
        y = _optical_pass(xf, wk, m, o, generator, window)
    y = y * scale
    if offset is not None:  # electronic correction: min(w) · (window sum of x over channels)
        box = torch.ones((1, ci, kh, kw), dtype=x.dtype)
        s = torch.nn.functional.conv2d(x, box, padding=padding)
        y = y + offset.view(1, co, 1, 1) * s
    return y


def _build() -> dict[str, Any]:
    if _CACHE:
        return _CACHE
    torch = require_torch()
    nn = torch.nn

    class OpticalConv2d(nn.Module):
        """Convolution layer computed by the 4f model (see the module docstring).

        ``shared=False``: ``weight [out, in, k, k]`` as ``nn.Conv2d``. ``shared=True``: one bank
        of ``out`` kernels ``[out, 1, k, k]`` applied to every input channel (ConvShareViT),
        output channels ordered ``(in, out)``. ``optics=None`` computes the same function with
        ``torch.nn.functional.conv2d`` (the digital baseline with identical parameters).
        """

        def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                     padding: str = "same", *, shared: bool = False, bias: bool = True,
                     optics: Optics | None = None):
            super().__init__()
            self.in_channels, self.out_channels = in_channels, out_channels
            self.kernel_size, self.padding, self.shared = kernel_size, padding, shared
            self.optics = optics
            ci = 1 if shared else in_channels
            self.weight = nn.Parameter(torch.empty(out_channels, ci, kernel_size, kernel_size))
            nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
            n_out = out_channels * (in_channels if shared else 1)
            self.bias = nn.Parameter(torch.zeros(n_out)) if bias else None

        def forward(self, x: Any) -> Any:
            b, ci, h, w = x.shape
            xin = x.reshape(b * ci, 1, h, w) if self.shared else x
            if self.optics is None and self.shared:  # grouped conv: same result, faster
                y = nn.functional.conv2d(x, self.weight.repeat(ci, 1, 1, 1),
                                         padding=self.padding, groups=ci)
            elif self.optics is None:
                y = nn.functional.conv2d(xin, self.weight, padding=self.padding)
            else:
                y = fourf_conv2d(xin, self.weight, self.padding, self.optics)
            if self.shared:
                y = y.reshape(b, ci * self.out_channels, y.shape[-2], y.shape[-1])
            if self.bias is not None:
                y = y + self.bias.view(1, -1, 1, 1)
            return y

        def extra_repr(self) -> str:
            return (f"{self.in_channels}, {self.out_channels}, k={self.kernel_size}, "
                    f"padding={self.padding}, shared={self.shared}, "
                    f"optics={'digital' if self.optics is None else self.optics}")

    _CACHE["OpticalConv2d"] = OpticalConv2d
    return _CACHE


def __getattr__(name: str) -> Any:
    if name == "OpticalConv2d":
        return _build()[name]
    raise AttributeError(name)
