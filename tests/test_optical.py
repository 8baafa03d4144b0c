"""4f correlator physics against closed forms and independent convolution code."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.signal import convolve2d, correlate2d

from biolearn.errors import BiolearnError
from biolearn.hardware.optical import (
    SLM,
    Camera,
    FourF,
    angular_spectrum,
    four_f,
    fourier_pitch,
    lens_ft,
    matched_pitch,
    pseudo_negative,
    quantize_unit,
)


def _rel(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.mark.parametrize("mode", ["full", "same", "valid"])
@pytest.mark.parametrize("shape", [(16, 3), (21, 5), (9, 4)])
def test_ideal_complex_mask_equals_linear_convolution(mode, shape):
    n, k = shape
    rng = np.random.default_rng(n * k)
    x, ker = rng.random((n, n)), rng.normal(size=(k, k))
    assert _rel(four_f(x, ker, mode=mode), convolve2d(x, ker, mode=mode)) < 1e-12
    assert _rel(four_f(x, ker, mode=mode, convention="correlation"),
                correlate2d(x, ker, mode=mode)) < 1e-12


def test_intensity_detection_is_squared_convolution():
    rng = np.random.default_rng(1)
    x, ker = rng.random((20, 20)), rng.random((5, 5))
    ref = convolve2d(x, ker)
    assert _rel(four_f(x, ker, detection="intensity"), ref**2) < 1e-12
    assert _rel(four_f(x, ker, detection="amplitude"), ref) < 1e-12


def test_zero_padding_removes_wraparound():
    n, k = 24, 5
    rng = np.random.default_rng(2)
    x, ker = rng.random((n, n)), rng.normal(size=(k, k))
    full = convolve2d(x, ker)  # (n + k - 1)^2
    circ = np.zeros((n, n))  # circular convolution = full result folded modulo n
    for r in range(full.shape[0]):
        for c in range(full.shape[1]):
            circ[r % n, c % n] += full[r, c]
    unpadded = four_f(x, ker, FourF(pad=False)).real
    assert _rel(unpadded, circ) < 1e-12
    assert np.abs(unpadded - full[:n, :n]).max() > 0.1 * np.abs(full).max()  # wrap-around
    assert _rel(four_f(x, ker, FourF(pad=True)).real, full) < 1e-12
    # valid outputs never see the wrap, padded or not
    assert _rel(four_f(x, ker, FourF(pad=False), mode="valid").real,
                convolve2d(x, ker, mode="valid")) < 1e-12
    # a bright pixel in one corner must leave the opposite corner dark ("same" padding)
    spot = np.zeros((n, n))
    spot[0, 0] = 1.0
    box = np.ones((3, 3))
    assert abs(four_f(spot, box, mode="same")[-1, -1]) < 1e-12
    assert abs(four_f(spot, box, FourF(pad=False), mode="same")[-1, -1]) > 0.5


def test_input_quantisation_error_matches_uniform_noise_model():
    """Rounding to Δ = 1/(2^b - 1) adds uniform noise of variance Δ²/12 per pixel; through a
    linear convolution the output error variance is Δ²/12 · Σ k² (valid region)."""
    rng = np.random.default_rng(3)
    x, ker = rng.random((96, 96)), rng.normal(size=(5, 5))
    ideal = convolve2d(x, ker, mode="valid")
    errs = []
    for b in range(3, 9):
        y = four_f(x, ker, FourF(input_slm=SLM("amplitude", bits=b)), mode="valid").real
        rms = float(np.sqrt(np.mean((y - ideal) ** 2)))
        delta = 1.0 / (2**b - 1)
        pred = delta / math.sqrt(12) * math.sqrt(float((ker**2).sum()))
        assert rms == pytest.approx(pred, rel=0.1)
        errs.append(rms)
    ratios = np.array(errs[:-1]) / np.array(errs[1:])  # ≈ (2^(b+1) - 1)/(2^b - 1) ≈ 2
    assert np.all((ratios > 1.75) & (ratios < 2.35))


def test_phase_mask_quantisation_error_closed_form():
    """Phase rounded to steps 2a (a = π/2^b) leaves errors δ ~ U(-a, a); for a unit-modulus mask
    the relative output error energy is E|e^{iδ} - 1|² = 2 - 2 sin(a)/a."""
    rng = np.random.default_rng(4)
    x, ker = rng.random((48, 48)), rng.normal(size=(7, 7))
    # random input phases spread the spectrum (an amplitude image puts most energy at DC,
    # where the mask phase 0/π is exact)
    slm = SLM("phase", phase_range=2 * math.pi)
    ref = four_f(x, ker, FourF(input_slm=slm, mask_slm=SLM("phase", bits=None)))
    for b in range(2, 7):
        y = four_f(x, ker, FourF(input_slm=slm, mask_slm=SLM("phase", bits=b)))
        rel = float(np.sum(np.abs(y - ref) ** 2) / np.sum(np.abs(ref) ** 2))
        a = math.pi / 2**b
        assert rel == pytest.approx(2 - 2 * math.sin(a) / a, rel=0.3)


def test_pseudo_negativity_recovers_signed_convolution():
    rng = np.random.default_rng(5)
    x, ker = rng.random((18, 18)), rng.normal(size=(3, 3))
    ref = convolve2d(x, ker, mode="same")
    assert _rel(pseudo_negative(x, ker, mode="same"), ref) < 1e-10
    one_pass = four_f(x, ker, detection="amplitude", mode="same")  # |x*k| loses the sign
    assert _rel(one_pass, ref) > 0.1


def test_fill_factor_scales_field_by_area_fractions():
    rng = np.random.default_rng(6)
    x, ker = rng.random((12, 12)), rng.normal(size=(3, 3))
    sys = FourF(input_slm=SLM("amplitude", fill_factor=0.8),
                mask_slm=SLM("complex", fill_factor=0.9))
    assert _rel(four_f(x, ker, sys), 0.8 * 0.9 * convolve2d(x, ker)) < 1e-12


def test_mask_resolution_and_defocus():
    rng = np.random.default_rng(7)
    x, ker = rng.random((24, 24)), rng.normal(size=(5, 5))
    ref = convolve2d(x, ker)
    m = 28
    q = fourier_pitch(m, matched_pitch(m))
    assert _rel(four_f(x, ker, FourF(mask_pitch=q)), ref) < 1e-10  # matched mask SLM
    assert _rel(four_f(x, ker, FourF(mask_pitch=2.3 * q)), ref) > 0.05  # coarse mask pixels
    # an afocal 4f images an object moved by +d to a plane moved by -d: the defocus cancels
    d = 200e-6
    assert _rel(four_f(x, ker, FourF(dz_input=d, dz_output=-d)), ref) < 1e-10
    assert _rel(four_f(x, ker, FourF(dz_input=d)), ref) > 0.05


def test_lens_sampling_and_energy():
    m, p = 64, matched_pitch(64)
    assert fourier_pitch(m, p) == pytest.approx(p)  # p = sqrt(λ f / N)
    assert p == pytest.approx(math.sqrt(532e-9 * 10e-3 / 64))
    # a plane wave tilted to spatial frequency fx0 focuses at u = λ f fx0
    k0 = 10
    xs = np.arange(m) * p
    fx0 = k0 / (m * p)
    e = np.exp(2j * np.pi * fx0 * xs)[None, :] * np.ones((m, 1))
    ef, q = lens_ft(e, p)
    r, c = np.unravel_index(np.argmax(np.abs(ef)), ef.shape)
    assert (r, c) == (0, k0)
    assert c * q == pytest.approx(532e-9 * 10e-3 * fx0)
    rng = np.random.default_rng(8)
    e = rng.normal(size=(m, m)) + 1j * rng.normal(size=(m, m))
    ef, q = lens_ft(e, p)
    assert np.sum(np.abs(ef) ** 2) * q**2 == pytest.approx(np.sum(np.abs(e) ** 2) * p**2)


def test_angular_spectrum_gaussian_beam_width():
    """w(z) = w0 sqrt(1 + (z/zR)²), zR = π w0² / λ (Siegman, Lasers, Eq. 17.5)."""
    lam, w0, p, m = 532e-9, 20e-6, 1e-6, 512
    c = (np.arange(m) - m / 2) * p
    xx, yy = np.meshgrid(c, c)
    e0 = np.exp(-(xx**2 + yy**2) / w0**2)
    zr = math.pi * w0**2 / lam
    for z in (0.5 * zr, zr, 2 * zr):
        i = np.abs(angular_spectrum(e0, p, z, lam)) ** 2
        w = 2 * math.sqrt(float((i * xx**2).sum() / i.sum()))
        assert w == pytest.approx(w0 * math.sqrt(1 + (z / zr) ** 2), rel=0.01)
    back = angular_spectrum(angular_spectrum(e0, p, zr, lam), p, -zr, lam)
    assert np.abs(back - e0).max() < 1e-9


def test_camera_noise_statistics():
    n_fs, read = 500.0, 3.0
    cam = Camera(full_scale_electrons=n_fs, read_noise_e=read, full_well_e=math.inf,
                 auto_exposure=False, full_scale_intensity=1.0)
    rng = np.random.default_rng(9)
    level = 0.4
    est = cam.detect(np.full((400, 400), level), rng)
    e = est * n_fs  # electrons
    mu, var = level * n_fs, level * n_fs + read**2
    n = e.size
    assert abs(e.mean() - mu) < 5 * math.sqrt(var / n)
    assert abs(e.var() - var) < 5 * var * math.sqrt(2 / n)
    # ADC alone: error at most half a step of full_well / (2^b - 1)
    adc = Camera(adc_bits=6, auto_exposure=False, full_scale_intensity=1.0)
    vals = rng.random(1000)
    assert np.abs(adc.detect(vals) - vals).max() <= 0.5 / 63 + 1e-12
    assert np.allclose(adc.detect(vals), quantize_unit(vals, 6))


def test_slm_errors_and_encodings():
    with pytest.raises(BiolearnError):
        SLM("hologram")
    with pytest.raises(BiolearnError):
        SLM().encode(np.array([1.5]))
    e = SLM("phase", bits=2, phase_range=math.pi).encode(np.array([0.0, 1 / 3, 1.0]))
    assert np.allclose(np.abs(e), 1)
    assert np.allclose(np.angle(e), [0.0, math.pi / 3, math.pi])
    a = SLM("amplitude", contrast=100.0).encode(np.array([0.0, 1.0]))
    assert np.allclose(a, [0.1, 1.0])
