"""Frame counting and roofline arithmetic of the optical cost model, by hand."""

from __future__ import annotations

import math

import pytest

from biolearn.errors import BiolearnError
from biolearn.hardware.optical_cost import (
    SOURCES,
    ConvWork,
    DigitalHardware,
    OpticalHardware,
    compare,
    format_report,
    gpu_cost,
    optical_cost,
)


def test_frame_counts_by_hand():
    hw = OpticalHardware(slm_pixels=(100, 100), camera_pixels=(64, 200), slm_rate_hz=1000.0,
                         camera_fps=500.0, mask_rate_hz=50.0, electronic_ops_per_s=1e30)
    # 28x28 image, k=5 -> 32x32 tiles; rows min(100, 64)//32 = 2, cols 100//32 = 3 -> 6 tiles
    w = ConvWork(batch=20, c_in=3, c_out=4, h=28, w=28, k=5)
    c = optical_cost(w, hw)
    assert c["tile_capacity"] == 6
    assert c["frames"] == 2 * 4 * 3 * math.ceil(20 / 6)  # electronic channel sum
    assert c["mask_changes"] == 2 * 4 * 3
    assert c["frame_period_s"] == pytest.approx(1 / 500)
    assert c["latency_s"] == pytest.approx(c["frames"] / 500 + c["mask_changes"] / 50)
    shared = optical_cost(ConvWork(20, 3, 4, 28, 28, 5, shared=True), hw)
    assert shared["frames"] == 2 * 4 * math.ceil(60 / 6)
    coherent = optical_cost(ConvWork(20, 3, 4, 28, 28, 5, channel_sum="optical",
                                     sign_passes=1), hw)
    assert coherent["frames"] == 4 * math.ceil(20 / (6 // 5))
    with pytest.raises(BiolearnError):
        optical_cost(ConvWork(1, 4, 1, 28, 28, 5, channel_sum="optical"), hw)


def test_gpu_roofline_and_report():
    gpu = DigitalHardware(gpu_flops=1e12, gpu_bandwidth=1e15, gpu_efficiency=1.0,
                          gpu_launch_s=0.0)
    w = ConvWork(batch=10, c_in=2, c_out=3, h=8, w=8, k=3, padding="valid")
    flops = 2 * 10 * 2 * 3 * 6 * 6 * 9
    g = gpu_cost(w, gpu)
    assert g["flops"] == flops and g["bound"] == "compute"
    assert g["latency_s"] == pytest.approx(flops / 1e12)
    res = compare(w, gpu=gpu, measure=False)
    assert res["speedup_vs_gpu"] == pytest.approx(g["latency_s"] / res["optical"]["latency_s"])
    text = format_report(res)
    for key in ("slm_rate_hz", "camera_fps", "gpu_flops"):
        assert key in text and SOURCES[key] in text
    assert all(k in SOURCES for k in res["assumptions"])
