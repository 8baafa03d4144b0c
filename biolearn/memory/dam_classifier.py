"""Krotov & Hopfield 2016 dense-associative-memory classifier, trained through PyTorch.

Memories ξ^μ (K of them) live on N visible units (pixels in [−1, 1]) and Nc label units. With
the label units clamped to −1 except unit α at +1 (state ``vv_α``) or all at −1 (state ``uu``),
the output of one update step of the label unit α is (Krotov & Hopfield 2016, Eq. 9)::

    c_α = tanh[ β Σ_μ F(ξ^μ · vv_α) − F(ξ^μ · uu) ],   F(x) = max(x, 0)ⁿ,   β = 1/Tⁿ,

so ``β F(x) = (max(x, 0)/T)ⁿ``, which is how it is computed here (β itself underflows for n = 20).
Loss Σ_α (c_α − t_α)^{2m} (Eq. 14), momentum p (Eq. 13), learning rate ε₀·fᵉᵖᵒᶜʰ (Eq. 12), each
memory's update divided by its largest component so that the largest change equals ε, memories
clipped to [−1, 1], initial memories N(−0.3, 0.3): the choices of the authors' public notebook.

The gradient is written out analytically (it is a closed form; autograd through β = T⁻ⁿ would
underflow). With A_{bα} = (t − c)^{2m−1}(1 − c²) and P = (relu(·)/T)^{n−1}::

    −∂L/∂ξ^μ ∝ Σ_{b,α} A_{bα} [P(ξ^μ·vv_{bα}) vv_{bα} − P(ξ^μ·uu_b) uu_b].

It is rescaled by (T/T₀)^{n−1} so that its size matches the authors' unnormalised gradient up to a
constant while the temperature is annealed (this matters only through the momentum term).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from biolearn.errors import BiolearnError, require_torch


@dataclass
class KHSchedule:
    """Hyper-parameters of Krotov & Hopfield 2016 (Sec. 4, Appendix A).

    Defaults are the authors' public notebook (K = 100, T = 540 constant, 300 epochs); the paper's
    MNIST numbers (≈ 1.4–1.6 % error) used K = 2000 memories and 3000 epochs, T in 500–700 at
    large n.
    """

    K: int = 100              # memories
    n: int = 20               # power of the rectified polynomial F
    m: int = 30               # power of the loss Σ(c − t)^{2m}
    eps0: float = 0.04        # initial learning rate (Eq. 12)
    eps_decay: float = 0.998  # ε ← ε·f each epoch
    momentum: float = 0.6     # p of Eq. 13
    T_start: float = 540.0    # temperature at epoch 0 (β = 1/Tⁿ)
    T_end: float = 540.0      # temperature after the ramp
    T_ramp_epochs: int = 0    # epochs of the linear temperature ramp (0 = constant T_end)
    epochs: int = 300
    batch: int = 1000
    init_mean: float = -0.3
    init_std: float = 0.3
    prec: float = 1e-30       # floor of the per-memory normaliser
    dtype: str = "float64"
    history: list = field(default_factory=list)

    def temperature(self, epoch: int) -> float:
        if self.T_ramp_epochs <= 0 or epoch >= self.T_ramp_epochs:
            return self.T_end
        return self.T_start + (self.T_end - self.T_start) * epoch / self.T_ramp_epochs


def pixels_to_pm1(x: np.ndarray) -> np.ndarray:
    """uint8 images → flat float vectors 2x/255 − 1 in [−1, 1] (Krotov & Hopfield 2016, Sec. 4)."""
    x = np.asarray(x)
    return (2.0 * x.reshape(len(x), -1).astype(np.float64) / 255.0 - 1.0)


def _powi(x: Any, e: int) -> Any:
    """x**e for an integer e ≥ 1 by repeated squaring (⌈log₂e⌉ + popcount(e) − 1 products).

    On CPU this is 3–4× faster than ``torch.pow`` with a scalar exponent for e ≈ 20.
    """
    if e < 1:
        raise ValueError("exponent must be ≥ 1")
    out = None
    base = x
    while True:
        if e & 1:
            out = base if out is None else out * base
        e >>= 1
        if not e:
            return out
        base = base * base


def _pre(torch: Any, W: Any, v: Any, n_cls: int) -> tuple[Any, Any]:
    """Overlaps ξ^μ·uu (B, K) and ξ^μ·vv_α (B, Nc, K) without tiling the batch Nc times."""
    N = W.shape[1] - n_cls
    base = v @ W[:, :N].T - W[:, N:].sum(dim=1)            # all labels at −1
    return base, base[:, None, :] + 2.0 * W[:, N:].T[None, :, :]


def _scores(torch: Any, W: Any, v: Any, n: int, T: float, n_cls: int
            ) -> tuple[Any, Any, Any, Any, Any]:
    """β Σ_μ [F(ξ^μ·vv_α) − F(ξ^μ·uu)] (B, Nc) with the factors P = (relu(·)/T)^{n−1}."""
    base, up = _pre(torch, W, v, n_cls)
    r_up = up.clamp_(min=0.0).div_(T)                       # in place: up is a fresh tensor
    r0 = base.clamp_(min=0.0).div_(T)
    if n == 1:
        P_up, P0 = torch.ones_like(r_up), torch.ones_like(r0)
    else:
        P_up, P0 = _powi(r_up, n - 1), _powi(r0, n - 1)
    B, C, K = r_up.shape
    # Σ_μ P r over μ as batched dot products (no (B, Nc, K) temporary)
    s_up = torch.bmm(P_up.reshape(B * C, 1, K), r_up.reshape(B * C, K, 1)).reshape(B, C)
    s0 = (P0 * r0).sum(-1)
    return s_up - s0[:, None], P_up, P0, r_up, r0


def kh_outputs(W: Any, v: Any, n: int, T: float, n_cls: int = 10) -> Any:
    """c_α (B, Nc) of Eq. 9 for visible states v (B, N); W is (K, N + Nc). Torch tensors."""
    torch = require_torch()
    return torch.tanh(_scores(torch, W, v, n, T, n_cls)[0])


def kh_ascent_direction(W: Any, v: Any, t: Any, n: int, m: int, T: float,
                        n_cls: int = 10) -> tuple[Any, Any]:
    """(−∂L/∂W up to a positive factor, outputs c) for a batch; t is ±1 targets (B, Nc)."""
    torch = require_torch()
    s, P_up, P0, _, _ = _scores(torch, W, v, n, T, n_cls)
    c = torch.tanh(s)
    A = (t - c).pow(2 * m - 1) * (1.0 - c) * (1.0 + c)     # (B, Nc)
    # D_bμ = Σ_α A_bα (P_up − P0)_bαμ
    D = torch.bmm(A[:, None, :], P_up).squeeze(1) - A.sum(1, keepdim=True) * P0   # (B, K)
    g_vis = D.T @ v                                         # (K, N)
    # Σ_b A_bα P_up,bαμ: the diagonal α-blocks of Aᵀ · P_up viewed as (B, Nc·K)
    B, C, K = P_up.shape
    AP = (A.T @ P_up.reshape(B, C * K)).reshape(C, C, K)
    idx = torch.arange(C)
    g_lab = 2.0 * AP[idx, idx].T - D.sum(0)[:, None]        # (K, Nc)
    return torch.cat([g_vis, g_lab], dim=1), c


def train_kh(x_train: np.ndarray, y_train: np.ndarray, sched: KHSchedule, seed: int = 0,
             x_test: np.ndarray | None = None, y_test: np.ndarray | None = None,
             eval_every: int = 10, n_cls: int = 10, threads: int | None = None,
             on_epoch: Callable[[int, dict], None] | None = None) -> tuple[np.ndarray, dict]:
    """Train the DAM classifier; x are float (S, N) in [−1, 1], y integer labels.

    Returns (memories W (K, N + Nc) as NumPy, info dict with train/test error history and time).
    """
    torch = require_torch()
    if threads:
        torch.set_num_threads(int(threads))
    if sched.dtype not in ("float32", "float64"):
        raise BiolearnError(f"unknown dtype '{sched.dtype}'", "params.dtype",
                            "use float32 or float64")
    dt = getattr(torch, sched.dtype)
    gen = torch.Generator().manual_seed(int(seed))
    X = torch.as_tensor(np.asarray(x_train), dtype=dt)
    Y = torch.as_tensor(np.asarray(y_train).astype(np.int64))
    S, N = X.shape
    if S < sched.batch:
        raise BiolearnError(f"batch {sched.batch} larger than the training set ({S})",
                            "params.batch", "lower params.batch or raise data.n_train")
    Tm = -torch.ones((S, n_cls), dtype=dt)
    Tm[torch.arange(S), Y] = 1.0
    W = sched.init_mean + sched.init_std * torch.randn((sched.K, N + n_cls), generator=gen,
                                                       dtype=dt)
    V = torch.zeros_like(W)
    info: dict = {"train_error": [], "test_error": [], "epochs_evaluated": []}
    t0 = time.perf_counter()
    # (t − c)^{2m−1} and P^{n−1} reach the subnormal range; flushing them to 0 keeps CPU speed
    torch.set_flush_denormal(True)
    try:
        _train_loop(torch, X, Y, Tm, W, V, S, sched, gen, x_test, y_test, eval_every, n_cls,
                    info, on_epoch)
    finally:
        torch.set_flush_denormal(False)
    info["train_time_s"] = time.perf_counter() - t0
    info["final_temperature"] = sched.temperature(sched.epochs - 1)
    return W.cpu().numpy(), info


def _train_loop(torch, X, Y, Tm, W, V, S, sched, gen, x_test, y_test, eval_every, n_cls, info,
                on_epoch) -> None:
    with torch.no_grad():
        for ep in range(sched.epochs):
            eps = sched.eps0 * sched.eps_decay ** ep
            T = sched.temperature(ep)
            rescale = (T / sched.T_start) ** (sched.n - 1)
            perm = torch.randperm(S, generator=gen)
            wrong = 0
            for k in range(S // sched.batch):
                idx = perm[k * sched.batch:(k + 1) * sched.batch]
                G, c = kh_ascent_direction(W, X[idx], Tm[idx], sched.n, sched.m, T, n_cls)
                V.mul_(sched.momentum).add_(G, alpha=rescale)
                nc = V.abs().amax(dim=1, keepdim=True).clamp_min(sched.prec)
                W.add_(eps * V / nc).clamp_(-1.0, 1.0)
                wrong += int((c.argmax(1) != Y[idx]).sum())
            info["train_error"].append(wrong / ((S // sched.batch) * sched.batch))
            last = ep == sched.epochs - 1
            if x_test is not None and (last or (eval_every and (ep + 1) % eval_every == 0)):
                err = 1.0 - float(np.mean(predict_kh(W, x_test, sched.n, T, n_cls) == y_test))
                info["test_error"].append(err)
                info["epochs_evaluated"].append(ep + 1)
            if on_epoch is not None:
                on_epoch(ep, info)


def predict_kh(W: Any, x: np.ndarray, n: int, T: float, n_cls: int = 10,
               chunk: int = 5000) -> np.ndarray:
    """Class = argmax_α c_α (Eq. 9) for float inputs x (S, N); W NumPy or torch."""
    torch = require_torch()
    Wt = torch.as_tensor(W)
    out = []
    with torch.no_grad():
        for s in range(0, len(x), chunk):
            v = torch.as_tensor(np.asarray(x[s:s + chunk]), dtype=Wt.dtype)
            # argmax of tanh(s_α) = argmax of s_α; use the pre-activation to avoid saturation ties
            sc = _scores(torch, Wt, v, n, T, n_cls)[0]
            out.append(sc.argmax(1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)
