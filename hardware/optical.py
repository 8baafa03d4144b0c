"""Coherent optical 4f correlator on complex fields (NumPy).

A 4f system (Goodman, *Introduction to Fourier Optics*, 3rd ed., Sec. 5.2 and 8.3 "VanderLugt
filter") places an input spatial light modulator (SLM) one focal length before lens 1, a mask SLM in
the back focal plane of lens 1 (the Fourier plane), lens 2 one focal length after it and a camera in
its back focal plane. With field ``E(x)`` in the input plane, lens 1 produces (Goodman Eq. 5-19)

    E_F(u) = 1 / (i λ f) ∫ E(x) exp(-i 2π x·u / (λ f)) dx ,

so the Fourier-plane coordinate is ``u = λ f f_x``. Sampling the input on ``M`` pixels of pitch
``p`` gives Fourier samples at pitch ``λ f / (M p)`` (the DFT ↔ lens correspondence); the input
and mask SLMs share one pitch when ``p = sqrt(λ f / M)``. Lens 2 transforms forward again, so the
camera sees the filtered image inverted (magnification -1) with a global phase -1 (two 1/(iλf)
factors); :func:`four_f` undoes the inversion and the sign so that outputs are reported in input
coordinates. The product of the input spectrum with the mask is a *circular* convolution on the
M-sample grid; zero padding to ``M ≥ N + K - 1`` makes it the linear convolution.

Pieces, each usable alone:

* :class:`SLM` — pixelated modulator: amplitude, phase-only or complex modulation, bit depth,
  area fill factor with the inter-pixel (dead-zone) field, amplitude contrast ratio.
* :func:`lens_ft` — Fraunhofer transform by a lens with physical scaling (energy conserving).
* :func:`kernel_transfer` — the ideal Fourier-plane mask of a kernel, sampled on the Fourier grid
  or on a mask SLM of its own pitch and pixel count (finite resolution and aperture).
* :class:`Camera` — square-law detection, Poisson shot noise, Gaussian read noise, full well,
  ADC bits, auto-exposure.
* :func:`angular_spectrum` — free-space propagation (Goodman Eq. 3-74) for non-ideal spacings.
* :func:`four_f` — the whole chain; output cropped to ``full``, ``same`` or ``valid``.

Conventions: arrays are ``[..., rows, cols]``; lengths in metres; ``convention="convolution"``
matches ``scipy.signal.convolve2d`` and ``"correlation"`` matches ``torch.nn.functional.conv2d``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import fft as sfft

from biolearn.errors import BiolearnError

WAVELENGTH_M = 532e-9
"""Frequency-doubled Nd:YAG line (532 nm), the usual source of 4f demonstrators; a default."""
FOCAL_LENGTH_M = 10e-3
"""Lens focal length of the default system (a design choice; functions take ``focal_length``)."""

MODULATIONS = ("amplitude", "phase", "complex")
DETECTIONS = ("field", "intensity", "amplitude")
MODES = ("full", "same", "valid")
CONVENTIONS = ("convolution", "correlation")


# --------------------------------------------------------------------------------------------
# geometry
# --------------------------------------------------------------------------------------------

def matched_pitch(n: int, wavelength: float = WAVELENGTH_M,
                  focal_length: float = FOCAL_LENGTH_M) -> float:
    """SLM pitch for which input and Fourier planes share one pitch: ``p = sqrt(λ f / n)``."""
    return math.sqrt(wavelength * focal_length / n)


def fourier_pitch(n: int, pitch: float, wavelength: float = WAVELENGTH_M,
                  focal_length: float = FOCAL_LENGTH_M) -> float:
    """Sample spacing in the Fourier plane of an ``n``-sample input of pitch ``pitch``: λf/(n p)."""
    return wavelength * focal_length / (n * pitch)


def padded_size(n: int, k: int, pad: bool = True, fast: bool = True) -> int:
    """Grid size for an ``n``-pixel input and ``k``-pixel kernel.

    ``pad=True``: the smallest (FFT-friendly if ``fast``) size ``≥ n + k - 1`` so the circular
    convolution equals the linear one; ``pad=False``: ``n`` (wrap-around).
    """
    if not pad:
        return n
    m = n + k - 1
    return sfft.next_fast_len(m) if fast else m


# --------------------------------------------------------------------------------------------
# quantisation
# --------------------------------------------------------------------------------------------

def quantize_unit(x: np.ndarray, bits: int | None) -> np.ndarray:
    """Clip to [0, 1] and round to ``2**bits`` equally spaced levels ``k / (2**bits - 1)``.

    ``bits`` None or 0 = continuous. The rounding error of a value spread over many levels is
    uniform with RMS ``Δ / sqrt(12)``, ``Δ = 1 / (2**bits - 1)`` (Widrow & Kollár 2008, Ch. 4).
    """
    x = np.clip(np.asarray(x, dtype=float), 0.0, 1.0)
    if not bits:
        return x
    levels = 2 ** int(bits) - 1
    return np.round(x * levels) / levels


def quantize_phase(phi: np.ndarray, bits: int | None) -> np.ndarray:
    """Wrap a phase to [0, 2π) and round to ``2**bits`` levels of step ``2π / 2**bits``."""
    phi = np.mod(np.asarray(phi, dtype=float), 2 * np.pi)
    if not bits:
        return phi
    step = 2 * np.pi / 2 ** int(bits)
    return np.mod(np.round(phi / step) * step, 2 * np.pi)


# --------------------------------------------------------------------------------------------
# SLM
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SLM:
    """A pixelated spatial light modulator.

    modulation: ``amplitude`` (transmission in [a_min, 1], phase 0), ``phase`` (unit amplitude,
        phase only) or ``complex`` (amplitude and phase, each with ``bits``; e.g. two stacked
        panels or a double-pixel hologram).
    bits: levels ``2**bits`` per quantity (None/0 = continuous). LCoS panels: 8-10 bit; DMD: 1 bit.
    fill_factor: active area / pixel area. In a one-sample-per-pixel model the pixel field is
        ``ff * E_mod + (1 - ff) * dead_zone`` (the pixel average; the higher diffraction orders
        of the pixel grid fall outside the simulated band).
    dead_zone: field passed by the inter-pixel gaps: 0 for a transmissive panel with a black
        matrix, 1 for a reflective LCoS (unmodulated zero order).
    contrast: intensity contrast ratio of an amplitude modulator; the darkest amplitude is
        ``1/sqrt(contrast)`` (inf = perfect black).
    phase_range: phase stroke used to *encode real inputs* in phase mode, x ∈ [0,1] → x·range.
    """

    modulation: str = "amplitude"
    bits: int | None = None
    fill_factor: float = 1.0
    dead_zone: complex = 0.0
    contrast: float = math.inf
    phase_range: float = math.pi

    def __post_init__(self) -> None:
        if self.modulation not in MODULATIONS:
            raise BiolearnError(f"unknown SLM modulation '{self.modulation}'", "SLM.modulation",
                                "use one of " + ", ".join(MODULATIONS))
        if not 0.0 < self.fill_factor <= 1.0:
            raise BiolearnError(f"fill_factor={self.fill_factor} outside (0, 1]",
                                "SLM.fill_factor", "give the active-area fraction, e.g. 0.93")
        if self.bits is not None and not 0 <= self.bits <= 24:
            raise BiolearnError(f"bits={self.bits} outside 0..24", "SLM.bits",
                                "use 1-16 bits or None for continuous")
        if self.contrast < 1:
            raise BiolearnError(f"contrast={self.contrast} < 1", "SLM.contrast",
                                "give the intensity contrast ratio, e.g. 1000")

    @property
    def a_min(self) -> float:
        return 0.0 if math.isinf(self.contrast) else 1.0 / math.sqrt(self.contrast)

    def _pixel(self, e: np.ndarray) -> np.ndarray:
        if self.fill_factor == 1.0:
            return e
        return self.fill_factor * e + (1.0 - self.fill_factor) * self.dead_zone

    def encode(self, x: np.ndarray) -> np.ndarray:
        """Field leaving the SLM for real drive values ``x`` in [0, 1] (the input plane).

        amplitude: ``a_min + (1 - a_min) q(x)``; phase: ``exp(i range q(x))``; complex: as
        amplitude (real non-negative input). ``q`` quantises to ``bits``.
        """
        x = np.asarray(x, dtype=float)
        if x.size and (x.min() < -1e-12 or x.max() > 1 + 1e-12):
            raise BiolearnError(f"SLM drive values span [{x.min():.3g}, {x.max():.3g}]",
                                "SLM.encode", "scale the input to [0, 1] first")
        q = quantize_unit(x, self.bits)
        if self.modulation == "phase":
            e = np.exp(1j * self.phase_range * q)
        else:
            e = (self.a_min + (1.0 - self.a_min) * q).astype(complex)
        return self._pixel(e)

    def display(self, h: np.ndarray) -> np.ndarray:
        """Field transmission realised for a complex target ``h`` with ``|h| ≤ 1`` (a mask).

        amplitude: ``|h|`` quantised, phase dropped; phase: ``exp(i angle h)`` with quantised
        phase, amplitude dropped (phase-only filter, Horner & Gianino 1984, Appl. Opt. 23:812);
        complex: amplitude and phase each quantised.
        """
        h = np.asarray(h, dtype=complex)
        amp = np.abs(h)
        if self.modulation == "phase":
            e = np.exp(1j * quantize_phase(np.angle(h), self.bits))
        else:
            a = self.a_min + (1.0 - self.a_min) * quantize_unit(amp, self.bits)
            if self.modulation == "amplitude":
                e = a.astype(complex)
            else:
                e = a * np.exp(1j * quantize_phase(np.angle(h), self.bits))
        return self._pixel(e)


# --------------------------------------------------------------------------------------------
# propagation
# --------------------------------------------------------------------------------------------

def lens_ft(e: np.ndarray, pitch: float, wavelength: float = WAVELENGTH_M,
            focal_length: float = FOCAL_LENGTH_M) -> tuple[np.ndarray, float]:
    """Field in the back focal plane of a lens for a field ``e`` in its front focal plane.

    Goodman Eq. 5-19 sampled: ``E_F[k] = p² / (i λ f) · DFT(E)[k]`` at ``u_k = λ f k / (M p)``
    (unshifted FFT order: the optical axis is index 0). Returns ``(E_F, fourier_pitch)``; the
    scaling conserves power, ``Σ|E|² p² = Σ|E_F|² q²``.
    """
    m0, m1 = e.shape[-2:]
    if m0 != m1:
        raise BiolearnError(f"lens_ft needs a square field, got {m0}x{m1}", "lens_ft",
                            "pad the field to a square grid")
    q = fourier_pitch(m0, pitch, wavelength, focal_length)
    return sfft.fft2(e) * (pitch * pitch / (1j * wavelength * focal_length)), q


def angular_spectrum(e: np.ndarray, pitch: float, z: float,
                     wavelength: float = WAVELENGTH_M) -> np.ndarray:
    """Propagate a sampled field by ``z`` metres in free space (angular-spectrum method).

    Transfer function ``H = exp(i 2π z sqrt(1/λ² - f_x² - f_y²))`` for propagating waves, 0 for
    evanescent ones (Goodman Eq. 3-74). The grid is periodic: pad the field so it does not reach
    the border over the distance ``z``.
    """
    if z == 0:
        return np.asarray(e, dtype=complex)
    m0, m1 = e.shape[-2:]
    fy = sfft.fftfreq(m0, d=pitch)[:, None]
    fx = sfft.fftfreq(m1, d=pitch)[None, :]
    arg = 1.0 / wavelength**2 - fx**2 - fy**2
    kz = 2 * np.pi * np.sqrt(np.maximum(arg, 0.0))
    h = np.where(arg > 0, np.exp(1j * kz * z), 0.0)
    return sfft.ifft2(sfft.fft2(e) * h)


def kernel_transfer(kernel: np.ndarray, m: int, pitch: float, *,
                    wavelength: float = WAVELENGTH_M, focal_length: float = FOCAL_LENGTH_M,
                    mask_pitch: float | None = None,
                    mask_pixels: int | None = None) -> np.ndarray:
    """Ideal Fourier-plane transmission of a convolution kernel on an ``m × m`` grid.

    ``H(f) = Σ_ab k[a, b] exp(-i 2π (f_y a + f_x b) p)`` (the kernel's DTFT; its element [0, 0]
    sits on the optical axis). On the matched grid (``mask_pitch`` None) it is the DFT of the
    zero-padded kernel. With a mask SLM of pitch ``mask_pitch`` the Fourier sample at ``u`` sees
    the mask pixel ``j = round(u / mask_pitch)`` showing ``H`` at that pixel's centre (finite mask
    resolution); with ``mask_pixels`` the samples beyond the panel's half-width are blocked.
    Returned in unshifted FFT order.
    """
    kernel = np.asarray(kernel)
    kh, kw = kernel.shape[-2:]
    fx = sfft.fftfreq(m, d=pitch)  # cycles per metre
    if mask_pitch is not None:
        u = wavelength * focal_length * fx
        j = np.round(u / mask_pitch)
        fx_eff = j * mask_pitch / (wavelength * focal_length)
    else:
        j = None
        fx_eff = fx
    ey = np.exp(-2j * np.pi * np.outer(fx_eff, np.arange(kh)) * pitch)  # [m, kh]
    ex = np.exp(-2j * np.pi * np.outer(fx_eff, np.arange(kw)) * pitch)  # [m, kw]
    h = np.einsum("ya,...ab,xb->...yx", ey, kernel, ex)
    if mask_pixels is not None:
        jj = j if j is not None else np.round(
            wavelength * focal_length * fx / fourier_pitch(m, pitch, wavelength, focal_length))
        inside = (jj >= -(mask_pixels // 2)) & (jj < mask_pixels - mask_pixels // 2)
        h = h * (inside[:, None] & inside[None, :])
    return h


# --------------------------------------------------------------------------------------------
# camera
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Camera:
    """Square-law detector: Poisson shot noise, Gaussian read noise, full well, ADC.

    full_scale_electrons: mean photoelectrons of a pixel at the full-scale intensity (exposure ×
        quantum efficiency); None = noiseless photon count.
    read_noise_e: RMS read noise in electrons (sCMOS: 1-2 e-).
    full_well_e: saturation in electrons (None = ``full_scale_electrons``; inf = never).
    adc_bits: converter bits over ``[0, full_well_e]`` (None/0 = no ADC).
    auto_exposure: full scale = brightest pixel of the frame; else ``full_scale_intensity``.
    """

    full_scale_electrons: float | None = None
    read_noise_e: float = 0.0
    full_well_e: float | None = None
    adc_bits: int | None = None
    auto_exposure: bool = True
    full_scale_intensity: float = 1.0

    @property
    def ideal(self) -> bool:
        return self.full_scale_electrons is None and not self.adc_bits and self.read_noise_e == 0

    def detect(self, intensity: np.ndarray, rng: np.random.Generator | None = None
               ) -> np.ndarray:
        """Estimated intensity (input units) of one exposure of ``intensity``."""
        intensity = np.asarray(intensity, dtype=float)
        if self.ideal:
            return intensity
        rng = rng if rng is not None else np.random.default_rng()
        i_fs = float(intensity.max()) if self.auto_exposure else self.full_scale_intensity
        if i_fs <= 0:
            return np.zeros_like(intensity)
        n_fs = self.full_scale_electrons if self.full_scale_electrons is not None else 1.0
        mu = intensity / i_fs * n_fs
        e = rng.poisson(mu).astype(float) if self.full_scale_electrons is not None else mu
        if self.read_noise_e > 0:
            e = e + rng.normal(0.0, self.read_noise_e, size=e.shape)
        well = self.full_well_e if self.full_well_e is not None else n_fs
        e = np.clip(e, 0.0, well)
        if self.adc_bits:
            lv = 2 ** int(self.adc_bits) - 1
            e = np.round(e / well * lv) * (well / lv)
        return e / n_fs * i_fs


# --------------------------------------------------------------------------------------------
# the 4f chain
# --------------------------------------------------------------------------------------------

def _flip(a: np.ndarray) -> np.ndarray:
    """``a[-n mod M]`` on the last two axes: undoes the 4f image inversion."""
    return np.roll(a[..., ::-1, ::-1], (1, 1), axis=(-2, -1))


def crop(full: np.ndarray, n: tuple[int, int], k: tuple[int, int], mode: str,
         convention: str = "convolution") -> np.ndarray:
    """Cut a ``full`` result (size n+k-1) to ``full``/``same``/``valid``.

    ``same`` starts at ``(k - 1) // 2`` for convolutions (``scipy.signal.convolve2d``) and at
    ``k // 2`` for correlations (``scipy.signal.correlate2d`` and ``torch.nn.functional.conv2d``
    with ``padding="same"``); the two differ only for even kernels.
    """
    (nh, nw), (kh, kw) = n, k
    if mode == "full":
        return full[..., : nh + kh - 1, : nw + kw - 1]
    if mode == "same":
        if convention == "correlation":
            r0, c0 = kh // 2, kw // 2
        else:
            r0, c0 = (kh - 1) // 2, (kw - 1) // 2
        return full[..., r0:r0 + nh, c0:c0 + nw]
    if mode == "valid":
        return full[..., kh - 1:nh, kw - 1:nw]
    raise BiolearnError(f"unknown mode '{mode}'", "four_f(mode=...)",
                        "use one of " + ", ".join(MODES))


@dataclass(frozen=True)
class FourF:
    """A 4f correlator: geometry, two SLMs, a camera and alignment errors.

    pitch: input SLM pitch (None = matched to the padded grid, ``sqrt(λ f / M)``).
    mask_pitch / mask_pixels: the Fourier-plane SLM (None = matched pitch, unlimited panel).
    pad: zero-pad to ``N + K - 1`` (False: an ``N``-sample grid, circular wrap-around; "full"
        then returns the ``N × N`` circular result).
    dz_input / dz_output: extra distance (m) between input SLM and lens 1 / lens 2 and camera;
        propagated with :func:`angular_spectrum` (defocus).
    """

    wavelength: float = WAVELENGTH_M
    focal_length: float = FOCAL_LENGTH_M
    pitch: float | None = None
    input_slm: SLM = SLM("amplitude")
    mask_slm: SLM = SLM("complex")
    camera: Camera = Camera()
    mask_pitch: float | None = None
    mask_pixels: int | None = None
    pad: bool = True
    dz_input: float = 0.0
    dz_output: float = 0.0


def four_f(x: np.ndarray, kernel: np.ndarray, system: FourF = FourF(), *,
           detection: str = "field", mode: str = "full", convention: str = "convolution",
           rng: np.random.Generator | None = None, return_planes: bool = False
           ) -> np.ndarray | tuple[np.ndarray, dict]:
    """Convolve images ``x`` (``[..., N, N]``, drive values in [0, 1]) with ``kernel`` optically.

    Chain: input SLM encoding → (defocus) → lens 1 → mask SLM showing ``H / max|H|`` → lens 2 →
    (defocus) → un-invert → detection → electronic gain ``max|H|`` (``max|H|²`` for intensity).

    detection: ``field`` (coherent/holographic read-out of the complex field, no camera noise),
    ``intensity`` (camera ``|E|²`` with its noise and ADC), ``amplitude`` (square root of the
    detected intensity: equals the convolution when input and kernel are non-negative).
    ``return_planes`` also returns the input, Fourier-plane and mask fields (for figures).
    """
    if detection not in DETECTIONS:
        raise BiolearnError(f"unknown detection '{detection}'", "four_f(detection=...)",
                            "use one of " + ", ".join(DETECTIONS))
    if convention not in CONVENTIONS:
        raise BiolearnError(f"unknown convention '{convention}'", "four_f(convention=...)",
                            "use one of " + ", ".join(CONVENTIONS))
    x = np.asarray(x, dtype=float)
    kernel = np.asarray(kernel)
    nh, nw = x.shape[-2:]
    kh, kw = kernel.shape[-2:]
    if convention == "correlation":
        kernel = kernel[..., ::-1, ::-1]
    m = padded_size(max(nh, nw), max(kh, kw), system.pad)
    p = system.pitch if system.pitch is not None else matched_pitch(
        m, system.wavelength, system.focal_length)
    lam, f = system.wavelength, system.focal_length

    plane = np.zeros(x.shape[:-2] + (m, m))
    plane[..., :nh, :nw] = x
    e_in = system.input_slm.encode(plane)  # the padding shows the SLM's "0" state
    e = angular_spectrum(e_in, p, system.dz_input, lam)
    e_f, q = lens_ft(e, p, lam, f)

    h = kernel_transfer(kernel, m, p, wavelength=lam, focal_length=f,
                        mask_pitch=system.mask_pitch, mask_pixels=system.mask_pixels)
    gain = float(np.abs(h).max()) or 1.0
    t = system.mask_slm.display(h / gain)
    e_out, _ = lens_ft(e_f * t, q, lam, f)
    e_out = angular_spectrum(e_out, p, system.dz_output, lam)
    e_out = -_flip(e_out)

    if detection == "field":
        out = e_out * gain
    else:
        intensity = system.camera.detect(np.abs(e_out) ** 2, rng)
        out = intensity * gain**2 if detection == "intensity" else np.sqrt(intensity) * gain
    if system.pad or mode == "valid":  # valid outputs never wrap, even without padding
        out = crop(out, (nh, nw), (kh, kw), mode, convention)
    elif mode == "same":  # the circular result, aligned as "same" (edges show the wrap)
        r0, c0 = (kh // 2, kw // 2) if convention == "correlation" else ((kh - 1) // 2,
                                                                        (kw - 1) // 2)
        out = np.roll(out, (-r0, -c0), axis=(-2, -1))
    if return_planes:
        return out, {"input": e_in, "fourier": sfft.fftshift(e_f, axes=(-2, -1)),
                     "mask": sfft.fftshift(t, axes=(-2, -1)), "pitch": p, "fourier_pitch": q,
                     "grid": m, "gain": gain}
    return out


def pseudo_negative(x: np.ndarray, kernel: np.ndarray, system: FourF = FourF(), *,
                    mode: str = "full", convention: str = "convolution",
                    rng: np.random.Generator | None = None) -> np.ndarray:
    """Signed convolution of a non-negative input by two intensity passes.

    ``y = sqrt(I[x ∗ relu(k)]) - sqrt(I[x ∗ relu(-k)])``: each pass has a non-negative input
    and kernel, so its field is real and non-negative and the camera amplitude equals the
    convolution (pseudo-negativity, e.g. Chang et al. 2018 Sci. Rep. 8:12324).
    """
    kernel = np.asarray(kernel, dtype=float)
    kw = dict(detection="amplitude", mode=mode, convention=convention, rng=rng)
    return (four_f(x, np.maximum(kernel, 0), system, **kw)
            - four_f(x, np.maximum(-kernel, 0), system, **kw))
