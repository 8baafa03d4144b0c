"""Torch twin of the 4f correlator: equals torch conv2d when ideal, matches the NumPy model when
quantised, differentiable, and its camera noise has the configured statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from toy_training import fit_toy_batch  # noqa: E402

from biolearn.errors import BiolearnError  # noqa: E402
from biolearn.hardware.optical import SLM, FourF, four_f  # noqa: E402
from biolearn.hardware.optical_torch import (  # noqa: E402
    OpticalConv2d,
    Optics,
    _camera,
    fourf_conv2d,
)

torch.set_num_threads(1)
F = torch.nn.functional


def _rel(a, b):
    return float(((a - b).abs().max() / b.abs().max()).detach())


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.parametrize("optics", [
    Optics(detection="field"),
    Optics(detection="amplitude", negative="pseudo"),
    Optics(detection="amplitude", negative="bias"),
    Optics(detection="amplitude", negative="pseudo", channel_sum="electronic"),
    Optics(detection="field", channel_sum="electronic"),
], ids=["field", "pseudo", "bias", "pseudo-electronic", "field-electronic"])
@pytest.mark.parametrize("k", [3, 4, 5])
def test_ideal_optical_conv_equals_torch_conv2d(padding, optics, k):
    g = torch.Generator().manual_seed(k)
    x = torch.rand(2, 3, 13, 13, generator=g, dtype=torch.float64)
    w = torch.randn(4, 3, k, k, generator=g, dtype=torch.float64)
    assert _rel(fourf_conv2d(x, w, padding, optics), F.conv2d(x, w, padding=padding)) < 1e-6


@pytest.mark.parametrize("bits", [1, 2, 3])
@pytest.mark.parametrize("mod", ["complex", "phase", "amplitude"])
def test_quantised_twin_matches_numpy_model(bits, mod):
    """The torch layer (real FFT pair) equals the complex-field NumPy model, whose camera field
    stays real for a real input and a quantised mask (the Hermitian property the layer uses)."""
    g = torch.Generator().manual_seed(1)
    x = torch.rand(1, 1, 15, 15, generator=g, dtype=torch.float64)
    x = x / x.max()  # the torch layer scales each sample to its maximum
    w = torch.randn(1, 1, 5, 5, generator=g, dtype=torch.float64)
    o = Optics(detection="field", negative="none", input_bits=bits, mask_bits=bits,
               mask_modulation=mod)
    yt = fourf_conv2d(x, w, "same", o)[0, 0].numpy()
    sys = FourF(input_slm=SLM("amplitude", bits=bits), mask_slm=SLM(mod, bits=bits))
    yn = four_f(x[0, 0].numpy(), w[0, 0].numpy(), sys, mode="same", convention="correlation")
    assert np.abs(yn.imag).max() < 1e-12 * np.abs(yn).max()
    assert np.abs(yt - yn.real).max() < 1e-10 * np.abs(yn).max()
    assert np.abs(yt - F.conv2d(x, w, padding="same")[0, 0].numpy()).max() > 1e-3


@pytest.mark.parametrize("padding", ["same", "valid"])
def test_signed_inputs_split_into_two_frames(padding):
    g = torch.Generator().manual_seed(7)
    x = torch.randn(2, 3, 11, 11, generator=g, dtype=torch.float64)
    w = torch.randn(4, 3, 3, 3, generator=g, dtype=torch.float64)
    o = Optics(detection="amplitude", input_negative="split")
    assert _rel(fourf_conv2d(x, w, padding, o), F.conv2d(x, w, padding=padding)) < 1e-6
    with pytest.raises(BiolearnError):
        fourf_conv2d(x, w, padding, Optics(detection="field"))


def test_digital_shared_layer_is_the_per_channel_convolution():
    g = torch.Generator().manual_seed(8)
    x = torch.randn(2, 5, 7, 7, generator=g, dtype=torch.float64)
    layer = OpticalConv2d(5, 3, 3, "same", shared=True, bias=False).double()
    ref = F.conv2d(x.reshape(10, 1, 7, 7), layer.weight, padding="same").reshape(2, 15, 7, 7)
    assert _rel(layer(x), ref) < 1e-12


def test_camera_noise_on_a_crop_uses_the_frame_full_scale():
    """Auto-exposure is set by the whole frame: a crop with i_fs = 4 x its mean level sees the
    shot noise of N_fs/4 electrons (variance = mean)."""
    n_fs = 1000.0
    o = Optics(full_scale_electrons=n_fs)
    inten = torch.full((1, 200, 200), 0.25, dtype=torch.float64)
    gen = torch.Generator().manual_seed(9)
    e = (_camera(inten, o, gen, torch.tensor([[[1.0]]], dtype=torch.float64)) * n_fs).flatten()
    mu = 0.25 * n_fs
    n = e.numel()
    assert abs(float(e.mean()) - mu) < 5 * math.sqrt(mu / n)
    assert abs(float(e.var()) - mu) < 5 * mu * math.sqrt(2 / n)


@pytest.mark.parametrize("optics", [Optics(detection="field"), Optics(detection="amplitude"),
                                    Optics(detection="amplitude", negative="bias",
                                           channel_sum="electronic")],
                         ids=["field", "pseudo", "bias-electronic"])
def test_gradients_match_finite_differences(optics):
    g = torch.Generator().manual_seed(2)
    x = (torch.rand(1, 2, 6, 6, generator=g, dtype=torch.float64) + 0.2).requires_grad_()
    w = torch.randn(2, 2, 3, 3, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: fourf_conv2d(a, b, "same", optics), (x, w))


def test_shared_mode_is_depthwise_with_one_kernel_bank():
    g = torch.Generator().manual_seed(3)
    x = torch.rand(2, 3, 10, 10, generator=g, dtype=torch.float64)
    layer = OpticalConv2d(3, 2, 3, "valid", shared=True, bias=False,
                          optics=Optics(detection="amplitude")).double()
    ref = F.conv2d(x, layer.weight.repeat(3, 1, 1, 1), groups=3)  # channels (in, out)
    assert _rel(layer(x), ref) < 1e-6
    assert layer(x).shape == (2, 6, 8, 8)


def test_camera_noise_mean_and_variance():
    n_fs, read = 400.0, 2.0
    o = Optics(full_scale_electrons=n_fs, read_noise_e=read)
    inten = torch.full((1, 300, 300), 0.25, dtype=torch.float64)
    inten[0, 0, 0] = 1.0  # auto-exposure: full scale = this pixel
    gen = torch.Generator().manual_seed(4)
    e = (_camera(inten, o, gen) * n_fs)[0].flatten()[1:]
    mu, var = 0.25 * n_fs, 0.25 * n_fs + read**2
    n = e.numel()
    assert abs(float(e.mean()) - mu) < 5 * math.sqrt(var / n)
    assert abs(float(e.var()) - var) < 5 * var * math.sqrt(2 / n)


def test_quantisation_bits_reduce_error_and_errors():
    g = torch.Generator().manual_seed(5)
    x = torch.rand(4, 1, 16, 16, generator=g)
    w = torch.randn(3, 1, 5, 5, generator=g)
    ref = F.conv2d(x, w, padding="same")
    errs = [float((fourf_conv2d(x, w, "same", Optics(input_bits=b, mask_bits=b)) - ref)
                  .pow(2).mean().sqrt()) for b in (2, 4, 6, 8)]
    assert errs[0] > errs[1] > errs[2] > errs[3]
    with pytest.raises(BiolearnError):
        Optics(detection="amplitude", negative="none")
    with pytest.raises(BiolearnError):
        fourf_conv2d(x - 0.5, w, "same", Optics())


@pytest.mark.slow
def test_optical_cnn_trains_on_a_toy_batch():
    """The recipe's network learns (loss falls) with noisy 4-bit optics in the loop."""
    from biolearn.models.optical_cnn import build_cnn

    torch.manual_seed(0)
    o = Optics(input_bits=4, mask_bits=4, full_scale_electrons=1e4, read_noise_e=2.0,
               adc_bits=12)
    model = build_cnn(4, 5, o)
    losses = fit_toy_batch(model, data_seed=6, lr=3e-3, steps=25)
    assert model[0].weight.grad is not None and torch.isfinite(model[0].weight.grad).all()
    assert losses[-1] < 0.5 * losses[0]


def test_noisy_camera_gradient_is_that_of_the_noiseless_amplitude():
    """Straight-through camera: the backward pass of a noisy, digitised exposure equals the
    gradient of the ideal layer (no 1/sqrt(I) blow-up where noise clips the intensity to 0)."""
    g = torch.Generator().manual_seed(10)
    x = torch.rand(2, 1, 12, 12, generator=g, dtype=torch.float64)
    w = torch.randn(3, 1, 5, 5, generator=g, dtype=torch.float64)
    grads = []
    for o in (Optics(), Optics(full_scale_electrons=100.0, read_noise_e=3.0, adc_bits=8)):
        wr = w.clone().requires_grad_()
        fourf_conv2d(x, wr, "same", o, generator=g).sum().backward()
        grads.append(wr.grad)
    assert torch.allclose(grads[0], grads[1], rtol=1e-9, atol=1e-12)
