"""ConvShareViT-style vision transformer on MNIST with its projections on a simulated 4f system.

ConvShareViT (Ibadulla, Chen & Reyes-Aldasoro 2025, arXiv:2504.11517) replaces the linear layers
of a ViT's multi-head self-attention (Q/K/V and output projections) and of its MLPs by depthwise
convolutions whose kernel is *shared across input channels*, so that one Fourier-plane mask serves
every channel image of a frame. This recipe builds a small model of that kind:

* patch embedding (electronic): 4x4 patches → a ``dim × 7 × 7`` token map, plus a learned
  position embedding;
* each block: LayerNorm → one shared convolution with 3 kernels (Q, K, V; each applied to every
  channel) → multi-head softmax attention over the 49 tokens (electronic) → shared convolution
  (output projection) → residual; LayerNorm → shared convolution with ``mlp_ratio`` kernels →
  GELU → shared convolution with 1 kernel, summed over the ``mlp_ratio`` maps of each channel →
  residual;
* LayerNorm, mean over tokens, linear read-out (electronic).

Every shared convolution is :class:`biolearn.hardware.optical_torch.OpticalConv2d` with
``shared=True`` and "same" padding (the token map keeps its size); with ``optics`` it runs
through the 4f model (SLM bits, complex mask, pseudo-negative kernels, signed inputs as two frames,
camera noise), trained with the hardware in the loop; the digital twin uses
``torch.nn.functional.conv2d`` with the same initialisation and data order. Channels are mixed
only by the attention (sum over a head's channels in ``QKᵀ``), the patch embedding and the
read-out: the price of one shared kernel per projection.

The latency model (:mod:`biolearn.hardware.optical_cost`) counts frames for every shared
convolution of one inference batch and compares them with a roofline GPU estimate and a measured
CPU convolution of the same work; ``cost_report.txt`` lists every assumption.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from biolearn.config import Invalid, param
from biolearn.errors import BiolearnError, require_torch
from biolearn.models.optical_cnn import (
    OpticsParams,
    _load_tensors,
    _optics,
    train_digital_and_optical,
)
from biolearn.registry import register


@dataclass
class ConvShareViTParams:
    patch: int = param(4, "patch size (28 must be divisible by it)", min=1, max=28)
    dim: int = param(32, "token embedding channels", min=1)
    depth: int = param(2, "transformer blocks", min=1)
    heads: int = param(4, "attention heads (dim must be divisible by it)", min=1)
    mlp_ratio: int = param(2, "shared MLP kernels per channel (expansion)", min=1)
    kernel_size: int = param(3, "shared convolution kernel size (odd)", min=1, max=7)
    epochs: int = param(3, "training epochs", min=1)
    batch_size: int = param(64, "minibatch size", min=1)
    lr: float = param(2e-3, "Adam learning rate", min=0.0)
    threads: int = param(1, "torch CPU threads", min=1, max=64)
    optics: OpticsParams = param(factory=OpticsParams,
                                 help="optical hardware of every shared convolution")
    digital_baseline: bool = param(True, "also train the same model with digital convolutions")
    cost_batch: int = param(1000, "images per inference batch in the latency model", min=1)

    def validate(self) -> None:
        if 28 % self.patch:
            raise Invalid(f"{{0}} = {self.patch} does not divide the 28-pixel image side",
                          "patch", fix="use 1, 2, 4, 7, 14 or 28")
        if self.dim % self.heads:
            raise Invalid(f"{{0}} = {self.dim} is not divisible by {{1}} = {self.heads}", "dim",
                          "heads", fix="choose heads dividing dim")
        if self.kernel_size % 2 == 0:
            raise Invalid(f"{{0}} = {self.kernel_size} is even", "kernel_size",
                          fix="use an odd kernel size ('same' padding)")


def build_vit(p: ConvShareViTParams, optics: Any) -> Any:
    """The ConvShareViT-style network (module docstring); ``optics=None`` = digital twin."""
    import torch

    from biolearn.hardware.optical_torch import OpticalConv2d

    nn = torch.nn
    k, d, r = p.kernel_size, p.dim, p.mlp_ratio
    grid = 28 // p.patch

    def shared(c_in: int, c_out: int) -> Any:
        return OpticalConv2d(c_in, c_out, k, "same", shared=True, optics=optics)

    class ChannelNorm(nn.Module):
        """LayerNorm over the channels of each token of a ``[B, C, H, W]`` map."""

        def __init__(self, c: int):
            super().__init__()
            self.ln = nn.LayerNorm(c)

        def forward(self, x: Any) -> Any:
            return self.ln(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.n1, self.n2 = ChannelNorm(d), ChannelNorm(d)
            self.qkv, self.proj = shared(d, 3), shared(d, 1)
            self.fc1, self.fc2 = shared(d, r), shared(d * r, 1)

        def forward(self, x: Any) -> Any:
            b, c, hh, ww = x.shape
            n, h = hh * ww, p.heads
            qkv = self.qkv(self.n1(x)).reshape(b, c, 3, n)  # channels ordered (in, kernel)
            q, kk, v = (qkv[:, :, j].reshape(b, h, c // h, n) for j in range(3))
            att = torch.softmax(q.transpose(-2, -1) @ kk / math.sqrt(c // h), dim=-1)  # [b,h,n,n]
            o = (v @ att.transpose(-2, -1)).reshape(b, c, hh, ww)
            x = x + self.proj(o)
            m = nn.functional.gelu(self.fc1(self.n2(x)))  # [b, c*r, hh, ww]
            return x + self.fc2(m).reshape(b, c, r, hh, ww).sum(2)

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Conv2d(1, d, p.patch, stride=p.patch)
            self.pos = nn.Parameter(0.02 * torch.randn(1, d, grid, grid))
            self.blocks = nn.Sequential(*[Block() for _ in range(p.depth)])
            self.norm = ChannelNorm(d)
            self.head = nn.Linear(d, 10)

        def forward(self, x: Any) -> Any:
            z = self.norm(self.blocks(self.embed(x) + self.pos))
            return self.head(z.mean(dim=(-2, -1)))

    return Net()


def shared_conv_works(p: ConvShareViTParams, batch: int) -> list[Any]:
    """:class:`ConvWork` of every shared convolution of one inference batch.

    Passes per layer: 2 for pseudo-negative kernels × 2 for signed inputs (``relu(x)`` and
    ``relu(-x)`` frames), as :func:`biolearn.hardware.optical_torch.fourf_conv2d` runs them.
    """
    from biolearn.hardware.optical_cost import ConvWork

    g, d, r, k = 28 // p.patch, p.dim, p.mlp_ratio, p.kernel_size
    passes = (2 if p.optics.negative == "pseudo" else 1) * 2
    per_block = [(d, 3), (d, 1), (d, r), (d * r, 1)]  # qkv, proj, fc1, fc2
    return [ConvWork(batch=batch, c_in=ci, c_out=co, h=g, w=g, k=k, padding="same",
                     shared=True, sign_passes=passes)
            for _ in range(p.depth) for ci, co in per_block]


def latency_report(p: ConvShareViTParams, digital_model: Any | None) -> tuple[dict, str]:
    """Optical latency of all shared convolutions vs GPU estimate and measured CPU, + text."""
    import torch

    from biolearn.hardware.optical_cost import (
        SOURCES,
        DigitalHardware,
        OpticalHardware,
        gpu_cost,
        measure_cpu,
        optical_cost,
    )

    hw, gpu = OpticalHardware(), DigitalHardware()
    works = shared_conv_works(p, p.cost_batch)
    opt = [optical_cost(w, hw) for w in works]
    gp = [gpu_cost(w, gpu) for w in works]
    cpu = [measure_cpu(w, repeats=3, threads=p.threads) for w in works]
    t_opt = sum(c["latency_s"] for c in opt)
    t_fr = sum(c["t_frames_s"] + c["t_masks_s"] for c in opt)
    t_el = sum(c["t_electronic_s"] for c in opt)
    t_gpu = sum(c["latency_s"] for c in gp)
    t_cpu = sum(c["latency_s"] for c in cpu)
    # all device rates scaled by s: t(s) = t_fr / s + t_el; break-even with the GPU estimate
    s_even = t_fr / (t_gpu - t_el) if t_gpu > t_el else math.inf
    res: dict[str, Any] = {
        "layers": len(works), "frames": sum(c["frames"] for c in opt),
        "mask_changes": sum(c["mask_changes"] for c in opt),
        "optical_latency_s": t_opt, "optical_frames_and_masks_s": t_fr,
        "optical_electronic_s": t_el, "gpu_estimate_latency_s": t_gpu,
        "cpu_measured_latency_s": t_cpu, "speedup_vs_gpu": t_gpu / t_opt,
        "speedup_vs_cpu": t_cpu / t_opt,
        "rate_factor_to_match_gpu": s_even if math.isfinite(s_even) else None,
        "optical_energy_j": sum(c["energy_j"] for c in opt),
        "gpu_energy_j": sum(c["energy_j"] for c in gp)}
    if digital_model is not None:  # the whole digital network (attention included) on this CPU
        x = torch.rand(p.cost_batch, 1, 28, 28)
        with torch.no_grad():
            digital_model(x[:8])
            t0 = time.perf_counter()
            digital_model(x)
            res["cpu_full_model_latency_s"] = time.perf_counter() - t0
    lines = [f"ConvShareViT-style model, inference batch {p.cost_batch}: {len(works)} shared "
             f"convolutions ({p.depth} blocks x qkv/proj/fc1/fc2), token map "
             f"{28 // p.patch}x{28 // p.patch}, dim {p.dim}, k={p.kernel_size}, "
             f"{works[0].sign_passes} passes each (pseudo-negative kernels x signed inputs)",
             f"optical: {res['frames']} frames, {res['mask_changes']} mask changes, "
             f"{t_opt * 1e3:.4g} ms ({t_fr * 1e3:.4g} ms frames+masks, {t_el * 1e3:.3g} ms "
             f"electronics), {res['optical_energy_j']:.3g} J",
             f"GPU estimate ({gpu.gpu_name}, roofline, {len(works)} launches): "
             f"{t_gpu * 1e6:.4g} us -> optical speed-up {res['speedup_vs_gpu']:.3g}x",
             f"CPU measured (torch conv2d, same convolutions, {p.threads} thread(s)): "
             f"{t_cpu * 1e3:.4g} ms -> optical speed-up {res['speedup_vs_cpu']:.3g}x",
             (f"device rates (SLM, mask SLM, camera) must all rise {s_even:.3g}x to match the "
              "GPU estimate" if math.isfinite(s_even) else
              f"no device frame rate can match the GPU estimate: the electronic post-processing "
              f"alone ({t_el * 1e3:.3g} ms at the assumed host rate) is slower")]
    if "cpu_full_model_latency_s" in res:
        lines.append("whole digital model (attention, norms, read-out included) on this CPU: "
                     f"{res['cpu_full_model_latency_s'] * 1e3:.4g} ms (not in the optical "
                     "figure: attention and norms stay electronic)")
    lines.append("per layer (optical frames, latency ms | GPU us | CPU ms):")
    for w, o, g, c in zip(works, opt, gp, cpu, strict=True):
        lines.append(f"  {w.c_in:>3}->{w.c_out} shared: {o['frames']:>4} frames "
                     f"{o['latency_s'] * 1e3:8.4g} | {g['latency_s'] * 1e6:7.4g} | "
                     f"{c['latency_s'] * 1e3:7.4g}")
    lines.append("assumptions:")
    from dataclasses import asdict
    for key, v in {**asdict(hw), **asdict(gpu)}.items():
        lines.append(f"  {key} = {v}  [{SOURCES.get(key, '')}]")
    lines.append("  tile = (7 + k - 1)^2 pixels per channel image at unit magnification; one "
                 "mask per (kernel, sign pass) shared by all channel images of the batch")
    return res, "\n".join(lines)


@register("convshare_vit", ConvShareViTParams)
def run(cfg: Any, ctx: Any) -> dict:
    """Train the ConvShareViT-style model with 4f shared convolutions and its digital twin."""
    torch = require_torch()
    from dataclasses import replace

    p: ConvShareViTParams = cfg.params
    if 28 % p.patch:
        raise BiolearnError(f"patch={p.patch} does not divide 28", "params.patch",
                            "use 1, 2, 4, 7, 14 or 28")
    if p.dim % p.heads:
        raise BiolearnError(f"dim={p.dim} not divisible by heads={p.heads}", "params.heads",
                            "choose heads dividing dim")
    if p.kernel_size % 2 == 0:
        raise BiolearnError(f"kernel_size={p.kernel_size} is even", "params.kernel_size",
                            "use an odd kernel size ('same' padding)")
    torch.set_num_threads(p.threads)
    xtr_t, ytr_t, xte_t, yte_t = _load_tensors(cfg, ctx)
    optics = replace(_optics(p.optics, p.optics.bits), input_negative="split")

    metrics: dict[str, Any] = {"n_train": len(xtr_t), "n_test": len(xte_t)}
    seconds: dict[str, float] = {}
    bar = ctx.progress((1 + p.digital_baseline) * p.epochs * len(xtr_t), "convshare_vit")
    nets = train_digital_and_optical(ctx, p, lambda o: build_vit(p, o), optics,
                                     (xtr_t, ytr_t, xte_t, yte_t), cfg.seed, bar, metrics,
                                     seconds)
    bar.close()
    metrics["parameters"] = sum(int(t.numel()) for t in nets["optical"].parameters())
    metrics["seconds"] = seconds
    cost, text = latency_report(p, nets.get("digital"))
    ctx.path("cost_report.txt").write_text(text + "\n", encoding="utf-8")
    if not ctx.quiet:
        print(text)
    metrics["latency"] = cost
    return metrics
