"""Small CNN on MNIST whose first convolution runs through the 4f correlator model.

Hardware-aware training: conv1 is :class:`biolearn.hardware.optical_torch.OpticalConv2d` with the
configured SLM bit depths, mask modulation, pseudo-negativity and camera noise in the forward pass
(straight-through gradients for quantisation and noise); the rest (ReLU, 2x2 max-pool, a digital
3x3 conv with 16 channels, pool, linear read-out) is electronic. The same network with a digital
conv1 (``torch.nn.functional.conv2d``, same initialisation and data order) is the baseline, and
``bits_sweep`` retrains the optical network at each SLM bit depth (input and mask) to trace the
accuracy curve down to 1 bit. The latency/energy model (:mod:`biolearn.hardware.optical_cost`)
reports what conv1 costs on the optical system for the test set, against a GPU estimate and a
measured convolution on this CPU.

Figures: ``accuracy_vs_bits.png``, ``optical_planes.png`` (input field, Fourier-plane field and
mask of a trained kernel, camera output vs digital output).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from biolearn.config import param
from biolearn.errors import BiolearnError
from biolearn.registry import register


@dataclass
class OpticsParams:
    """Hardware of the optical conv1 (see :class:`biolearn.hardware.optical_torch.Optics`)."""

    bits: int = param(8, "input and mask SLM bit depth of the headline optical run", min=0,
                      max=16)
    mask_modulation: str = param("complex", "Fourier-mask modulation",
                                 choices=["complex", "phase", "amplitude"])
    detection: str = param("amplitude", "camera amplitude sqrt|E|^2 or ideal field read-out",
                           choices=["amplitude", "field"])
    negative: str = param("pseudo", "signed kernels: two passes (pseudo) or offset+correction",
                          choices=["pseudo", "bias", "none"])
    full_scale_electrons: float | None = param(10000.0, "photoelectrons at a frame's brightest "
                                               "pixel (shot noise); null = noiseless", min=1.0)
    read_noise_e: float = param(2.0, "camera read noise, e- RMS (sCMOS: 1-2 e-)", min=0.0)
    adc_bits: int | None = param(12, "camera ADC bits; null = none", min=1, max=24)
    fill_factor: float = param(1.0, "SLM area fill factor", min=0.01, max=1.0)


@dataclass
class OpticalCNNParams:
    channels: int = param(8, "conv1 (optical) output channels", min=1)
    kernel_size: int = param(5, "conv1 kernel size (odd)", min=1, max=15)
    epochs: int = param(3, "training epochs", min=1)
    batch_size: int = param(64, "minibatch size", min=1)
    lr: float = param(2e-3, "Adam learning rate", min=0.0)
    threads: int = param(2, "torch CPU threads", min=1, max=64)
    optics: OpticsParams = param(factory=OpticsParams, help="optical hardware of conv1")
    bits_sweep: list[int] = param(factory=lambda: [4, 2, 1],
                                  help="extra optical runs at these SLM bit depths")
    digital_baseline: bool = param(True, "also train the all-digital network")
    cost_batch: int = param(1000, "images per batch in the latency/energy model", min=1)


def _optics(p: OpticsParams, bits: int) -> Any:
    from biolearn.hardware.optical_torch import Optics

    b = bits or None
    return Optics(input_bits=b, mask_bits=b, mask_modulation=p.mask_modulation,
                  detection=p.detection, negative=p.negative,
                  full_scale_electrons=p.full_scale_electrons, read_noise_e=p.read_noise_e,
                  adc_bits=p.adc_bits, fill_factor=p.fill_factor)


def build_cnn(channels: int, k: int, optics: Any) -> Any:
    """conv1 (optical or digital) → ReLU → pool → conv 3x3 (16) → ReLU → pool → linear(10)."""
    import torch

    from biolearn.hardware.optical_torch import OpticalConv2d

    nn = torch.nn
    return nn.Sequential(OpticalConv2d(1, channels, k, "same", optics=optics), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Conv2d(channels, 16, 3, padding=1), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16 * 7 * 7, 10))


def train_eval(model: Any, xtr: Any, ytr: Any, xte: Any, yte: Any, epochs: int, bs: int,
               lr: float, seed: int, bar: Any = None) -> float:
    """Adam on cross-entropy; returns test accuracy (noise stays on at test time)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    n = len(xtr)
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(n, generator=g)
        for i in range(0, n, bs):
            idx = perm[i:i + bs]
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(xtr[idx]), ytr[idx])
            loss.backward()
            opt.step()
            if bar is not None:
                bar.update(len(idx))
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(xte), 500):
            correct += int((model(xte[i:i + 500]).argmax(1) == yte[i:i + 500]).sum())
    return correct / len(xte)


def _load(cfg: Any, ctx: Any) -> tuple:
    from biolearn.data import load_mnist

    d = cfg.data
    if d.dataset == "none":
        raise BiolearnError("this recipe needs a dataset", "data.dataset", "use mnist")
    root = d.root if d.root is not None else getattr(ctx, "data_root", None)
    return load_mnist(root, d.dataset, d.n_train, d.n_test, quiet=ctx.quiet)


def _plane_figure(ctx: Any, kernel: np.ndarray, image: np.ndarray, p: OpticsParams) -> None:
    import matplotlib.pyplot as plt
    from scipy.signal import correlate2d

    from biolearn.hardware.optical import SLM, Camera, FourF, four_f

    sys = FourF(input_slm=SLM("amplitude", bits=p.bits or None),
                mask_slm=SLM(p.mask_modulation, bits=p.bits or None),
                camera=Camera(full_scale_electrons=p.full_scale_electrons,
                              read_noise_e=p.read_noise_e, adc_bits=p.adc_bits))
    rng = np.random.default_rng(0)
    pos, planes = four_f(image, np.maximum(kernel, 0), sys, detection="amplitude", mode="same",
                         convention="correlation", rng=rng, return_planes=True)
    neg = four_f(image, np.maximum(-kernel, 0), sys, detection="amplitude", mode="same",
                 convention="correlation", rng=rng)
    fig, ax = plt.subplots(1, 6, figsize=(18, 3.2))
    panels = [(np.abs(planes["input"]), "input |E| (SLM)"),
              (np.log10(np.abs(planes["fourier"]) + 1e-12), "Fourier plane log10|E|"),
              (np.abs(planes["mask"]), "mask |t| (relu(k) pass)"),
              (np.angle(planes["mask"]), "mask phase"),
              (pos - neg, "camera: sqrt(I+) - sqrt(I-)"),
              (correlate2d(image, kernel, mode="same"), "digital correlation")]
    for a, (img, title) in zip(ax, panels, strict=True):
        im = a.imshow(img, cmap="twilight" if "phase" in title else "viridis")
        a.set_title(title, fontsize=9)
        a.axis("off")
        fig.colorbar(im, ax=a, fraction=0.046)
    fig.suptitle(f"4f pass, grid {planes['grid']}, pitch {planes['pitch'] * 1e6:.2f} um, "
                 f"Fourier pitch {planes['fourier_pitch'] * 1e6:.2f} um")
    ctx.save_figure(fig, "optical_planes")


@register("optical_cnn", OpticalCNNParams)
def run(cfg: Any, ctx: Any) -> dict:
    """CNN on MNIST with conv1 on a simulated 4f correlator vs the same CNN all digital."""
    try:
        import torch
    except ImportError as e:
        from biolearn.errors import missing_extra
        raise missing_extra("torch", "torch") from e
    from biolearn.hardware.optical_cost import ConvWork, compare, format_report

    p: OpticalCNNParams = cfg.params
    if p.kernel_size % 2 == 0:
        raise BiolearnError(f"kernel_size={p.kernel_size} is even", "params.kernel_size",
                            "use an odd kernel size ('same' padding)")
    torch.set_num_threads(p.threads)
    xtr, ytr, xte, yte = _load(cfg, ctx)
    to_t = lambda a: torch.tensor(a, dtype=torch.float32).unsqueeze(1) / 255.0  # noqa: E731
    xtr_t, xte_t = to_t(xtr), to_t(xte)
    ytr_t, yte_t = torch.tensor(ytr, dtype=torch.long), torch.tensor(yte, dtype=torch.long)

    runs: list[tuple[str, int | None]] = []
    if p.digital_baseline:
        runs.append(("digital", None))
    runs.append((f"optical_{p.optics.bits}bit", p.optics.bits))
    runs += [(f"optical_{b}bit", b) for b in p.bits_sweep if b != p.optics.bits]
    metrics: dict[str, Any] = {}
    timings: dict[str, float] = {}
    headline_model = None
    bar = ctx.progress(len(runs) * p.epochs * len(xtr), "optical_cnn")
    for name, bits in runs:
        torch.manual_seed(cfg.seed)  # same initial weights and noise stream for every variant
        optics = None if bits is None else _optics(p.optics, bits)
        model = build_cnn(p.channels, p.kernel_size, optics)
        t0 = time.perf_counter()
        acc = train_eval(model, xtr_t, ytr_t, xte_t, yte_t, p.epochs, p.batch_size, p.lr,
                         cfg.seed, bar)
        timings[name] = time.perf_counter() - t0
        metrics[f"acc_{name}"] = acc
        ctx.metrics.update(metrics)
        if bits == p.optics.bits and bits is not None:
            headline_model = model
    bar.close()
    head = metrics[f"acc_optical_{p.optics.bits}bit"]
    metrics["test_accuracy"] = head
    if p.digital_baseline:
        metrics["test_accuracy_digital"] = metrics["acc_digital"]
        metrics["gap_digital_minus_optical"] = metrics["acc_digital"] - head
    metrics["train_seconds"] = timings

    # accuracy vs bits figure
    import matplotlib.pyplot as plt

    pts = sorted((b, metrics[f"acc_optical_{b}bit"]) for _, b in runs if b is not None)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot([b for b, _ in pts], [a for _, a in pts], "o-", label="optical conv1 (4f model)")
    if p.digital_baseline:
        ax.axhline(metrics["acc_digital"], color="k", ls="--", label="digital conv1")
    ax.set_xlabel("SLM bits (input and mask)")
    ax.set_ylabel("test accuracy")
    ax.legend()
    ctx.save_figure(fig, "accuracy_vs_bits")
    if headline_model is not None:
        k = headline_model[0].weight.detach().numpy()[0, 0].astype(float)
        _plane_figure(ctx, k, xte[0].astype(float) / 255.0, p.optics)

    work = ConvWork(batch=p.cost_batch, c_in=1, c_out=p.channels, h=28, w=28, k=p.kernel_size,
                    padding="same", channel_sum="electronic",
                    sign_passes=2 if p.optics.negative == "pseudo" else 1)
    cost = compare(work, threads=p.threads)
    ctx.path("cost_report.txt").write_text(format_report(cost) + "\n", encoding="utf-8")
    metrics["conv1_cost"] = {"optical_latency_s": cost["optical"]["latency_s"],
                             "optical_energy_j": cost["optical"]["energy_j"],
                             "gpu_estimate_latency_s": cost["gpu_estimate"]["latency_s"],
                             "cpu_measured_latency_s": cost["cpu_measured"]["latency_s"],
                             "speedup_vs_gpu": cost["speedup_vs_gpu"],
                             "speedup_vs_cpu": cost["speedup_vs_cpu"],
                             "bottleneck": cost["optical"]["bottleneck"]}
    return metrics

