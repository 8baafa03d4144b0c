"""Latency, throughput and energy of a convolution layer on a 4f system vs digital hardware.

A 4f correlator computes one whole-frame convolution per exposure; its speed is set by how fast
the input SLM, the Fourier-plane (mask) SLM and the camera refresh, by how many frames a layer
needs (tiling capacity, sign passes, channel handling) and by the electronic post-processing of
the camera frames. This module counts frames and converts them to seconds and joules, next to a
roofline estimate for a stated GPU and a *measured* digital convolution on this CPU.

Every constant below names its source; values marked ``ASSUMED`` are order-of-magnitude guesses
without a datasheet behind them and should be overridden for a real system. Frame counting:

* tile = ``(H + k - 1) × (W + k - 1)`` pixels (zero padding against wrap-around);
  ``capacity`` = tiles fitting on both the input SLM and the camera (unit magnification).
* ``shared`` (ConvShareViT): each of ``C_out`` masks processes all ``B·C_in`` channel images,
  frames = ``P · C_out · ceil(B C_in / capacity)``.
* ``electronic`` channel sum: one mask per (out, in) pair, frames = ``P · C_out · C_in ·
  ceil(B / capacity)``.
* ``optical`` channel sum: the ``C_in`` tiles of one sample are summed coherently; cross terms need
  ``2 C_in - 1`` tile slots per sample, frames = ``P · C_out · ceil(B / floor(capacity /
  (2 C_in - 1)))``.
* ``P`` = 2 with pseudo-negativity, 1 otherwise. Masks change ``P · C_out (· C_in)`` times per
  batch; frame period = ``max(1/slm_rate, 1/camera_fps)``.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Any

from biolearn.errors import BiolearnError, require_torch

SOURCES: dict[str, str] = {
    "slm_rate_hz": "TI DLP7000 DMD: >1900 Hz 8-bit grey pattern rate (>32552 Hz binary) "
                   "(TI datasheet DLPS026, quoted on TI E2E thread 'DLP actual pattern rate')",
    "slm_pixels": "TI DLP7000: 1024 x 768 micromirrors (XGA) (same datasheet)",
    "mask_rate_hz": "LCoS phase SLMs run at the video rate of their drivers, ~60 Hz (Oton et al. "
                    "2009, Appl. Opt., 'Dynamic calibration for improving the speed of a "
                    "parallel-aligned LCoS display')",
    "camera_fps": "Hamamatsu ORCA-Flash4.0 V2 sCMOS: 100 fps at 2048 x 2048 over Camera Link "
                  "(vendor specification, independently measured in a public camera test)",
    "camera_pixels": "Hamamatsu ORCA-Flash4.0 V2: 2048 x 2048 pixels (vendor specification)",
    "electronic_ops_per_s": "ASSUMED: 1e10 simple ops/s for sqrt/subtract/accumulate on a host "
                            "CPU core with SIMD",
    "electronic_j_per_op": "ASSUMED: 100 pJ per host-CPU operation",
    "slm_power_w": "ASSUMED: 5 W for a DMD with its controller board",
    "mask_power_w": "ASSUMED: 5 W for an LCoS panel with its driver",
    "camera_power_w": "ASSUMED: 15 W for an sCMOS camera head (cooling excluded)",
    "laser_power_w": "ASSUMED: 1 W electrical for a 532 nm DPSS module at tens of mW optical",
    "gpu_name": "NVIDIA A100 SXM4 40 GB",
    "gpu_flops": "NVIDIA A100 datasheet: 19.5 TFLOPS FP32 (non-tensor)",
    "gpu_bandwidth": "NVIDIA A100 40 GB datasheet: 1555 GB/s HBM2",
    "gpu_power_w": "NVIDIA A100 SXM4 datasheet: 400 W maximum (TDP, an upper bound)",
    "gpu_efficiency": "ASSUMED: 50 % of peak FLOPs/bandwidth reached by a cuDNN convolution",
    "gpu_launch_s": "ASSUMED: 5 microseconds kernel-launch overhead per layer",
}


@dataclass(frozen=True)
class OpticalHardware:
    """Device figures (see :data:`SOURCES` for where each default comes from)."""

    slm_rate_hz: float = 1900.0
    slm_pixels: tuple[int, int] = (768, 1024)
    mask_rate_hz: float = 60.0
    camera_fps: float = 100.0
    camera_pixels: tuple[int, int] = (2048, 2048)
    electronic_ops_per_s: float = 1e10
    electronic_j_per_op: float = 100e-12
    slm_power_w: float = 5.0
    mask_power_w: float = 5.0
    camera_power_w: float = 15.0
    laser_power_w: float = 1.0


@dataclass(frozen=True)
class DigitalHardware:
    """Roofline figures of the GPU the optical system is compared with."""

    gpu_name: str = "NVIDIA A100 SXM4 40 GB"
    gpu_flops: float = 19.5e12
    gpu_bandwidth: float = 1555e9
    gpu_power_w: float = 400.0
    gpu_efficiency: float = 0.5
    gpu_launch_s: float = 5e-6


@dataclass(frozen=True)
class ConvWork:
    """A convolution layer's work: ``batch`` images of ``c_in × h × w``, ``c_out`` kernels k×k."""

    batch: int
    c_in: int
    c_out: int
    h: int
    w: int
    k: int
    padding: str = "same"
    shared: bool = False
    channel_sum: str = "electronic"
    sign_passes: int = 2

    @property
    def out_hw(self) -> tuple[int, int]:
        if self.padding == "same":
            return self.h, self.w
        return self.h - self.k + 1, self.w - self.k + 1

    @property
    def flops(self) -> float:
        """Multiply-adds × 2 of the digital convolution (shared: no sum over input channels)."""
        ho, wo = self.out_hw
        return 2.0 * self.batch * self.c_in * self.c_out * ho * wo * self.k**2

    @property
    def bytes(self) -> float:
        ho, wo = self.out_hw
        n_out = self.batch * self.c_out * (self.c_in if self.shared else 1) * ho * wo
        n_w = self.c_out * (1 if self.shared else self.c_in) * self.k**2
        return 4.0 * (self.batch * self.c_in * self.h * self.w + n_out + n_w)


def optical_cost(work: ConvWork, hw: OpticalHardware = OpticalHardware()) -> dict[str, Any]:
    """Frames, mask changes, latency (s), throughput (images/s) and energy (J) of ``work``."""
    th, tw = work.h + work.k - 1, work.w + work.k - 1
    rows = min(hw.slm_pixels[0], hw.camera_pixels[0]) // th
    cols = min(hw.slm_pixels[1], hw.camera_pixels[1]) // tw
    capacity = rows * cols
    if capacity < 1:
        raise BiolearnError(f"a {th}x{tw} tile does not fit the SLM/camera",
                            "optical_cost", "use larger devices or smaller feature maps")
    p = work.sign_passes
    if work.shared:
        frames = p * work.c_out * math.ceil(work.batch * work.c_in / capacity)
        masks = p * work.c_out
    elif work.channel_sum == "optical":
        per_frame = capacity // (2 * work.c_in - 1)
        if per_frame < 1:
            raise BiolearnError(f"{work.c_in} coherently summed channels need "
                                f"{2 * work.c_in - 1} tiles, the plane holds {capacity}",
                                "optical_cost", "use channel_sum: electronic")
        frames = p * work.c_out * math.ceil(work.batch / per_frame)
        masks = p * work.c_out
    else:
        frames = p * work.c_out * work.c_in * math.ceil(work.batch / capacity)
        masks = p * work.c_out * work.c_in
    period = max(1.0 / hw.slm_rate_hz, 1.0 / hw.camera_fps)
    t_frames = frames * period
    t_masks = masks / hw.mask_rate_hz
    ho, wo = work.out_hw
    detected = frames * min(capacity, work.batch * work.c_in) * ho * wo  # pixels read out
    ops = 3.0 * detected  # sqrt, subtract/accumulate, scale per detected pixel
    t_elec = ops / hw.electronic_ops_per_s
    latency = t_frames + t_masks + t_elec
    p_optics = hw.slm_power_w + hw.mask_power_w + hw.camera_power_w + hw.laser_power_w
    energy = (t_frames + t_masks) * p_optics + ops * hw.electronic_j_per_op
    return {"tile_capacity": capacity, "frames": frames, "mask_changes": masks,
            "frame_period_s": period, "t_frames_s": t_frames, "t_masks_s": t_masks,
            "t_electronic_s": t_elec, "latency_s": latency,
            "images_per_s": work.batch / latency, "energy_j": energy,
            "bottleneck": max((("frames", t_frames), ("mask changes", t_masks),
                               ("electronics", t_elec)), key=lambda kv: kv[1])[0]}


def gpu_cost(work: ConvWork, gpu: DigitalHardware = DigitalHardware()) -> dict[str, Any]:
    """Roofline latency and energy of ``work`` on ``gpu`` (an estimate, not a measurement)."""
    t_compute = work.flops / (gpu.gpu_flops * gpu.gpu_efficiency)
    t_memory = work.bytes / (gpu.gpu_bandwidth * gpu.gpu_efficiency)
    latency = max(t_compute, t_memory) + gpu.gpu_launch_s
    return {"gpu": gpu.gpu_name, "flops": work.flops, "bytes": work.bytes,
            "latency_s": latency, "images_per_s": work.batch / latency,
            "energy_j": latency * gpu.gpu_power_w,
            "bound": "compute" if t_compute >= t_memory else "memory"}


def measure_cpu(work: ConvWork, repeats: int = 5, threads: int | None = None) -> dict[str, Any]:
    """Time the same convolution with ``torch.nn.functional.conv2d`` on this CPU (median)."""
    torch = require_torch()
    if threads is not None:
        torch.set_num_threads(threads)
    x = torch.rand(work.batch, work.c_in, work.h, work.w)
    if work.shared:  # one kernel bank on every channel = grouped conv with repeated weights
        wt = torch.randn(work.c_out, 1, work.k, work.k).repeat(work.c_in, 1, 1, 1)
        groups = work.c_in
    else:
        wt = torch.randn(work.c_out, work.c_in, work.k, work.k)
        groups = 1
    times = []
    with torch.no_grad():
        torch.nn.functional.conv2d(x, wt, padding=work.padding, groups=groups)  # warm-up
        for _ in range(repeats):
            t0 = time.perf_counter()
            torch.nn.functional.conv2d(x, wt, padding=work.padding, groups=groups)
            times.append(time.perf_counter() - t0)
    t = sorted(times)[len(times) // 2]
    return {"latency_s": t, "images_per_s": work.batch / t, "gflops_per_s": work.flops / t / 1e9,
            "threads": torch.get_num_threads()}


def compare(work: ConvWork, hw: OpticalHardware = OpticalHardware(),
            gpu: DigitalHardware = DigitalHardware(), measure: bool = True,
            threads: int | None = None) -> dict[str, Any]:
    """Optical vs GPU (estimate) vs this CPU (measured), with every assumption attached."""
    out: dict[str, Any] = {"work": asdict(work), "optical": optical_cost(work, hw),
                           "gpu_estimate": gpu_cost(work, gpu)}
    opt_t = out["optical"]["latency_s"]
    out["speedup_vs_gpu"] = out["gpu_estimate"]["latency_s"] / opt_t
    if measure:
        out["cpu_measured"] = measure_cpu(work, threads=threads)
        out["speedup_vs_cpu"] = out["cpu_measured"]["latency_s"] / opt_t
    out["assumptions"] = {**{k: v for k, v in asdict(hw).items()},
                          **{k: v for k, v in asdict(gpu).items()}}
    out["sources"] = dict(SOURCES)
    return out


def format_report(res: dict[str, Any]) -> str:
    """Human-readable summary with every assumption and its source."""
    w, o, g = res["work"], res["optical"], res["gpu_estimate"]
    lines = [f"layer: batch {w['batch']}, {w['c_in']}->{w['c_out']} channels, "
             f"{w['h']}x{w['w']}, k={w['k']}, padding={w['padding']}, shared={w['shared']}, "
             f"channel_sum={w['channel_sum']}, sign passes={w['sign_passes']}",
             f"optical: {o['frames']} frames, {o['mask_changes']} mask changes, "
             f"latency {o['latency_s'] * 1e3:.3g} ms (bottleneck: {o['bottleneck']}), "
             f"{o['energy_j']:.3g} J",
             f"GPU estimate ({g['gpu']}, {g['bound']}-bound): {g['latency_s'] * 1e6:.3g} us, "
             f"{g['energy_j']:.3g} J; optical speed-up {res['speedup_vs_gpu']:.3g}x"]
    if "cpu_measured" in res:
        c = res["cpu_measured"]
        lines.append(f"CPU measured ({c['threads']} threads): {c['latency_s'] * 1e3:.3g} ms "
                     f"({c['gflops_per_s']:.3g} GFLOP/s); optical speed-up "
                     f"{res['speedup_vs_cpu']:.3g}x")
    lines.append("assumptions:")
    for k, v in res["assumptions"].items():
        lines.append(f"  {k} = {v}  [{SOURCES.get(k, '')}]")
    return "\n".join(lines)
