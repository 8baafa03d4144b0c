"""Small CNN on MNIST whose first convolution runs through the 4f correlator model.

Hardware-aware training: conv1 is :class:`biolearn.hardware.optical_torch.OpticalConv2d` with the
configured SLM bit depth, mask modulation, pseudo-negativity and camera noise in the forward pass
(straight-through gradients for quantisation and noise); the rest (ReLU, 2x2 max-pool, a digital
3x3 conv with 16 channels, pool, linear read-out) is electronic. The same network with a digital
conv1 (``torch.nn.functional.conv2d``, same initialisation and data order) is the baseline.
After training, both networks are evaluated with conv1 on the optics at every ``eval_bits``
(input and mask SLM bits) and the optical one at every camera photon count in
``noise_electrons``; copies of the optical network are then fine-tuned at each
``finetune_bits``. The latency/energy model (:mod:`biolearn.hardware.optical_cost`) reports what
conv1 costs for ``cost_batch`` images, against a GPU estimate and a measured CPU convolution.

Figures: ``accuracy_vs_bits.png``, ``accuracy_vs_noise.png``, ``optical_planes.png`` (input field,
Fourier-plane field, mask amplitude and phase of a trained kernel, ideal and quantised PSF, camera
output and its difference from the digital correlation).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from biolearn.config import Invalid, param
from biolearn.errors import BiolearnError, require_torch
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
    epochs: int = param(2, "training epochs of the digital and the 8-bit optical network",
                        min=1)
    batch_size: int = param(64, "minibatch size", min=1)
    lr: float = param(2e-3, "Adam learning rate", min=0.0)
    threads: int = param(1, "torch CPU threads", min=1, max=64)
    optics: OpticsParams = param(factory=OpticsParams, help="optical hardware of conv1")
    eval_bits: list[int] = param(factory=lambda: [8, 7, 6, 5, 4, 3, 2, 1],
                                 help="evaluate the trained networks with the SLMs at these bits",
                                 min=0, max=16)
    noise_electrons: list[float] = param(
        factory=lambda: [10.0, 100.0, 1000.0, 10000.0, 100000.0],
        help="evaluate at these camera full-scale photoelectron counts (shot noise)", min=1.0)
    finetune_bits: list[int] = param(factory=lambda: [4, 2, 1],
                                     help="hardware-aware fine-tuning of the optical network at "
                                          "these SLM bits (from its trained weights)",
                                     min=0, max=16)
    finetune_epochs: int = param(1, "epochs of each fine-tuning run", min=1)
    digital_baseline: bool = param(True, "also train the all-digital network")
    cost_batch: int = param(1000, "images per batch in the latency/energy model", min=1)

    def validate(self) -> None:
        if self.kernel_size % 2 == 0:
            raise Invalid(f"{{0}} = {self.kernel_size} is even", "kernel_size",
                          fix="use an odd kernel size ('same' padding)")


def _optics(p: OpticsParams, bits: int, electrons: float | None | str = "config") -> Any:
    """:class:`Optics` of ``p`` at ``bits`` (0 = continuous); ``electrons`` overrides the camera
    full scale (None = ideal camera: no shot/read noise, no ADC)."""
    from biolearn.hardware.optical_torch import Optics

    b = bits or None
    if electrons is None:
        cam = dict(full_scale_electrons=None, read_noise_e=0.0, adc_bits=None)
    else:
        fs = p.full_scale_electrons if electrons == "config" else float(electrons)
        cam = dict(full_scale_electrons=fs, read_noise_e=p.read_noise_e, adc_bits=p.adc_bits)
    return Optics(input_bits=b, mask_bits=b, mask_modulation=p.mask_modulation,
                  detection=p.detection, negative=p.negative, fill_factor=p.fill_factor, **cam)


def build_cnn(channels: int, k: int, optics: Any) -> Any:
    """conv1 (optical or digital) → ReLU → pool → conv 3x3 (16) → ReLU → pool → linear(10)."""
    import torch

    from biolearn.hardware.optical_torch import OpticalConv2d

    nn = torch.nn
    return nn.Sequential(OpticalConv2d(1, channels, k, "same", optics=optics), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Conv2d(channels, 16, 3, padding=1), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16 * 7 * 7, 10))


def train(model: Any, xtr: Any, ytr: Any, epochs: int, bs: int, lr: float, seed: int,
          bar: Any = None) -> None:
    """Adam on cross-entropy, reshuffled each epoch (hardware noise on in the forward pass)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    n = len(xtr)
    model.train()
    for _ in range(epochs):
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


def evaluate(model: Any, xte: Any, yte: Any, seed: int = 0, bs: int = 500) -> float:
    """Test accuracy; the camera noise stays on (seeded, so repeatable)."""
    import torch

    torch.manual_seed(seed)
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(xte), bs):
            correct += int((model(xte[i:i + bs]).argmax(1) == yte[i:i + bs]).sum())
    return correct / len(xte)


def train_eval(model: Any, xtr: Any, ytr: Any, xte: Any, yte: Any, epochs: int, bs: int,
               lr: float, seed: int, bar: Any = None) -> float:
    """:func:`train` then :func:`evaluate`; returns the test accuracy."""
    train(model, xtr, ytr, epochs, bs, lr, seed, bar)
    return evaluate(model, xte, yte, seed)


def _load(cfg: Any, ctx: Any) -> tuple:
    from biolearn.data import load_for_run

    return load_for_run(cfg, ctx)


def _load_tensors(cfg: Any, ctx: Any) -> tuple:
    """The run's data as torch tensors: images float32 [N, 1, 28, 28] in [0, 1], labels long."""
    torch = require_torch()
    xtr, ytr, xte, yte = _load(cfg, ctx)
    img = lambda a: torch.tensor(a, dtype=torch.float32).unsqueeze(1) / 255.0  # noqa: E731
    lab = lambda a: torch.tensor(a, dtype=torch.long)  # noqa: E731
    return img(xtr), lab(ytr), img(xte), lab(yte)


def _plane_figure(ctx: Any, kernel: np.ndarray, image: np.ndarray, p: OpticsParams) -> None:
    """Input field, Fourier field, mask (amplitude, phase), realised PSF and camera output."""
    import matplotlib.pyplot as plt
    from scipy.signal import correlate2d

    from biolearn.hardware.optical import SLM, Camera, FourF, four_f

    sys = FourF(input_slm=SLM("amplitude", bits=p.bits or None),
                mask_slm=SLM(p.mask_modulation, bits=p.bits or None),
                camera=Camera(full_scale_electrons=p.full_scale_electrons,
                              read_noise_e=p.read_noise_e, adc_bits=p.adc_bits))
    rng = np.random.default_rng(0)
    kpos = np.maximum(kernel, 0)
    pos, planes = four_f(image, kpos, sys, detection="amplitude", mode="same",
                         convention="correlation", rng=rng, return_planes=True)
    neg = four_f(image, np.maximum(-kernel, 0), sys, detection="amplitude", mode="same",
                 convention="correlation", rng=rng)
    # point-spread function: the response to one bright input pixel (field read-out), i.e. the
    # kernel the quantised mask actually realises
    k = kernel.shape[0]
    delta = np.zeros((2 * k + 1, 2 * k + 1))
    delta[k, k] = 1.0
    ideal = FourF(input_slm=SLM("amplitude"), mask_slm=SLM(p.mask_modulation))
    psf_q = four_f(delta, kpos, sys, detection="field", mode="same", convention="correlation")
    psf_i = four_f(delta, kpos, ideal, detection="field", mode="same", convention="correlation")
    digital = correlate2d(image, kernel, mode="same")
    camera = pos - neg
    fig, ax = plt.subplots(2, 4, figsize=(15, 7))
    panels = [(np.abs(planes["input"]), "input plane |E| (SLM, padded)"),
              (np.log10(np.abs(planes["fourier"]) + 1e-12), "Fourier plane log10|E|"),
              (np.abs(planes["mask"]), "mask |t| (relu(k) pass)"),
              (np.angle(planes["mask"]), "mask phase (rad)"),
              (psf_i.real, "ideal PSF (relu(k), flipped)"),
              (psf_q.real, f"PSF with {p.bits}-bit mask"),
              (camera, "camera: sqrt(I+) - sqrt(I-)"),
              (camera - digital, "camera - digital correlation")]
    for a, (img, title) in zip(ax.ravel(), panels, strict=True):
        im = a.imshow(img, cmap="twilight" if "phase" in title else "viridis")
        a.set_title(title, fontsize=9)
        a.axis("off")
        fig.colorbar(im, ax=a, fraction=0.046)
    rel = float(np.abs(camera - digital).max() / np.abs(digital).max())
    fig.suptitle(f"4f pass of trained kernel 0 on a test digit: grid {planes['grid']}, pitch "
                 f"{planes['pitch'] * 1e6:.2f} um, Fourier pitch "
                 f"{planes['fourier_pitch'] * 1e6:.2f} um; max |camera - digital| / max = "
                 f"{rel:.3g}")
    ctx.save_figure(fig, "optical_planes")


def _curve_figures(ctx: Any, metrics: dict, p: OpticalCNNParams) -> None:
    import matplotlib.pyplot as plt

    def finish(fig: Any, ax: Any, xlabel: str, name: str) -> None:
        if "acc_digital" in metrics:
            ax.axhline(metrics["acc_digital"], color="k", ls=":", label="digital conv1")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("test accuracy")
        ax.legend(fontsize=8)
        fig.tight_layout()
        ctx.save_figure(fig, name)

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    bits = sorted(p.eval_bits)
    ax.plot(bits, [metrics["bits_sweep"]["optical_trained"][str(b)] for b in bits], "o-",
            label=f"trained with {p.optics.bits}-bit optics")
    if "digital_trained" in metrics["bits_sweep"]:
        ax.plot(bits, [metrics["bits_sweep"]["digital_trained"][str(b)] for b in bits], "s--",
                label="digital weights on optics")
    if metrics.get("finetuned"):
        fb = sorted(int(b) for b in metrics["finetuned"])
        ax.plot(fb, [metrics["finetuned"][str(b)] for b in fb], "^", ms=9,
                label="fine-tuned at that bit depth")
    finish(fig, ax, "SLM bits (input and mask)", "accuracy_vs_bits")

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    ne = sorted(p.noise_electrons)
    ax.semilogx(ne, [metrics["noise_sweep"][f"{e:g}"] for e in ne], "o-",
                label=f"{p.optics.bits}-bit optics, read noise {p.optics.read_noise_e:g} e-")
    ax.axhline(metrics["noise_sweep"]["ideal_camera"], color="C2", ls="--",
               label="noiseless camera")
    finish(fig, ax, "photoelectrons at full scale (shot-noise SNR = sqrt)", "accuracy_vs_noise")


def train_digital_and_optical(ctx: Any, p: Any, build: Callable[[Any], Any], optics: Any,
                              data: tuple, seed: int, bar: Any, metrics: dict,
                              seconds: dict) -> dict:
    """Train ``build(None)`` (if ``p.digital_baseline``) and ``build(optics)`` from the same
    initial weights; fill ``acc_*``, ``test_accuracy[_digital]``, the digital − optical gap and
    ``seconds['train_*']``. Returns the trained models by name."""
    torch = require_torch()
    xtr, ytr, xte, yte = data
    nets = {}
    for name in (["digital"] if p.digital_baseline else []) + ["optical"]:
        torch.manual_seed(seed)  # same initial weights for both
        model = build(None if name == "digital" else optics)
        t0 = time.perf_counter()
        train(model, xtr, ytr, p.epochs, p.batch_size, p.lr, seed, bar)
        seconds[f"train_{name}"] = time.perf_counter() - t0
        metrics[f"acc_{name}"] = evaluate(model, xte, yte, seed)
        nets[name] = model
        ctx.metrics.update(metrics)
    metrics["test_accuracy"] = metrics["acc_optical"]
    if p.digital_baseline:
        metrics["test_accuracy_digital"] = metrics["acc_digital"]
        metrics["gap_digital_minus_optical"] = metrics["acc_digital"] - metrics["acc_optical"]
    return nets


@register("optical_cnn", OpticalCNNParams)
def run(cfg: Any, ctx: Any) -> dict:
    """CNN on MNIST with conv1 on a simulated 4f correlator vs the same CNN all digital.

    1. train the digital network and the optical one (hardware in the loop at ``optics.bits``);
    2. evaluate both with conv1 on the optics at every ``eval_bits`` and the optical one at every
       camera photon count in ``noise_electrons``;
    3. fine-tune copies of the optical network at each ``finetune_bits``.
    """
    torch = require_torch()
    import copy

    from biolearn.hardware.optical_cost import ConvWork, compare, format_report

    p: OpticalCNNParams = cfg.params
    if p.kernel_size % 2 == 0:
        raise BiolearnError(f"kernel_size={p.kernel_size} is even", "params.kernel_size",
                            "use an odd kernel size ('same' padding)")
    torch.set_num_threads(p.threads)
    xtr_t, ytr_t, xte_t, yte_t = _load_tensors(cfg, ctx)
    n = len(xtr_t)

    metrics: dict[str, Any] = {"n_train": n, "n_test": len(xte_t)}
    timings: dict[str, float] = {}
    total = (p.epochs * (1 + p.digital_baseline) + p.finetune_epochs * len(p.finetune_bits)) * n
    bar = ctx.progress(total, "optical_cnn")
    optics = _optics(p.optics, p.optics.bits)
    nets = train_digital_and_optical(
        ctx, p, lambda o: build_cnn(p.channels, p.kernel_size, o), optics,
        (xtr_t, ytr_t, xte_t, yte_t), cfg.seed, bar, metrics, timings)

    # evaluation sweeps: swap the hardware of conv1, keep the weights
    t0 = time.perf_counter()
    sweep: dict[str, dict[str, float]] = {}
    for name, model in nets.items():
        conv1 = model[0]
        saved = conv1.optics
        key = f"{name}_trained"
        sweep[key] = {}
        for b in p.eval_bits:
            conv1.optics = _optics(p.optics, b)
            sweep[key][str(b)] = evaluate(model, xte_t, yte_t, cfg.seed)
        conv1.optics = saved
    metrics["bits_sweep"] = sweep
    noise: dict[str, float] = {}
    conv1 = nets["optical"][0]
    for e in p.noise_electrons:
        conv1.optics = _optics(p.optics, p.optics.bits, e)
        noise[f"{e:g}"] = evaluate(nets["optical"], xte_t, yte_t, cfg.seed)
    conv1.optics = _optics(p.optics, p.optics.bits, None)
    noise["ideal_camera"] = evaluate(nets["optical"], xte_t, yte_t, cfg.seed)
    conv1.optics = _optics(p.optics, p.optics.bits)
    metrics["noise_sweep"] = noise
    timings["eval_sweeps"] = time.perf_counter() - t0
    ctx.metrics.update(metrics)

    # hardware-aware fine-tuning at low bit depths
    finetuned: dict[str, float] = {}
    for b in p.finetune_bits:
        model = copy.deepcopy(nets["optical"])
        model[0].optics = _optics(p.optics, b)
        t0 = time.perf_counter()
        train(model, xtr_t, ytr_t, p.finetune_epochs, p.batch_size, p.lr / 2, cfg.seed + 1, bar)
        timings[f"finetune_{b}bit"] = time.perf_counter() - t0
        finetuned[str(b)] = evaluate(model, xte_t, yte_t, cfg.seed)
        metrics["finetuned"] = finetuned
        ctx.metrics.update(metrics)
    bar.close()
    metrics["finetuned"] = finetuned
    metrics["seconds"] = timings

    _curve_figures(ctx, metrics, p)
    k = nets["optical"][0].weight.detach().numpy()[0, 0].astype(float)
    _plane_figure(ctx, k, xte_t[0, 0].double().numpy(), p.optics)

    work = ConvWork(batch=p.cost_batch, c_in=1, c_out=p.channels, h=28, w=28, k=p.kernel_size,
                    padding="same", channel_sum="electronic",
                    sign_passes=2 if p.optics.negative == "pseudo" else 1)
    cost = compare(work, threads=p.threads)
    report = format_report(cost)
    ctx.path("cost_report.txt").write_text(report + "\n", encoding="utf-8")
    if not ctx.quiet:
        print(report)
    metrics["conv1_cost"] = {"optical_latency_s": cost["optical"]["latency_s"],
                             "optical_energy_j": cost["optical"]["energy_j"],
                             "gpu_estimate_latency_s": cost["gpu_estimate"]["latency_s"],
                             "cpu_measured_latency_s": cost["cpu_measured"]["latency_s"],
                             "speedup_vs_gpu": cost["speedup_vs_gpu"],
                             "speedup_vs_cpu": cost["speedup_vs_cpu"],
                             "bottleneck": cost["optical"]["bottleneck"]}
    return metrics
