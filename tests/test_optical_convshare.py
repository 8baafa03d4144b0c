"""ConvShareViT-style model: the ideal optical network computes the digital network's function,
and the latency model counts the shared-convolution frames as the frame formulas say."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from toy_training import fit_toy_batch  # noqa: E402

from biolearn.hardware.optical_cost import OpticalHardware, optical_cost  # noqa: E402
from biolearn.hardware.optical_torch import Optics  # noqa: E402
from biolearn.models.convshare_vit import (  # noqa: E402
    ConvShareViTParams,
    build_vit,
    shared_conv_works,
)

torch.set_num_threads(1)


def test_ideal_optics_equal_digital_twin():
    p = ConvShareViTParams(dim=8, depth=1, heads=2)
    torch.manual_seed(0)
    digital = build_vit(p, None).double()
    torch.manual_seed(0)
    optical = build_vit(p, Optics(detection="amplitude", input_negative="split")).double()
    optical.load_state_dict(digital.state_dict())
    x = torch.rand(3, 1, 28, 28, dtype=torch.float64)
    with torch.no_grad():
        yd, yo, yn = digital(x), optical(x), None
    assert yd.shape == (3, 10)
    assert float((yd - yo).abs().max()) < 1e-8 * float(yd.abs().max())
    noisy = build_vit(p, Optics(input_bits=2, mask_bits=2, input_negative="split")).double()
    noisy.load_state_dict(digital.state_dict())
    with torch.no_grad():
        yn = noisy(x)
    assert float((yn - yd).abs().max()) > 1e-4  # 2-bit optics change the output


def test_shared_conv_frames_by_hand():
    p = ConvShareViTParams()  # dim 32, 2 blocks, mlp_ratio 2, k = 3, 7x7 tokens
    works = shared_conv_works(p, 1000)
    assert len(works) == 8 and all(w.shared and w.sign_passes == 4 for w in works)
    hw = OpticalHardware()
    cap = (768 // 9) * (1024 // 9)  # 9x9 tiles on the 1024x768 DMD (camera is larger)
    expected = [4 * 3 * math.ceil(32000 / cap), 4 * 1 * math.ceil(32000 / cap),
                4 * 2 * math.ceil(32000 / cap), 4 * 1 * math.ceil(64000 / cap)] * 2
    got = [optical_cost(w, hw) for w in works]
    assert [c["frames"] for c in got] == expected
    assert all(c["tile_capacity"] == cap for c in got)


@pytest.mark.slow
def test_optical_vit_learns_a_toy_batch():
    """With noisy 4-bit optics in every shared convolution the model memorises a toy batch."""
    p = ConvShareViTParams(dim=8, depth=1, heads=2)
    torch.manual_seed(0)
    o = Optics(input_bits=4, mask_bits=4, full_scale_electrons=1e4, read_noise_e=2.0,
               adc_bits=12, input_negative="split")
    model = build_vit(p, o)
    losses = fit_toy_batch(model, data_seed=1, lr=1e-2, steps=60)
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < 0.5 * losses[0]
