"""Continual learning side by side: CLASSP, EWC, metaplastic binarized networks, active dendrites
and plain fine-tuning, in plain PyTorch, on the same task sequence with the same budget.

Methods (each class below cites its paper and equations):

* :class:`CLASSP` — an optimiser (Ludwig 2024, arXiv:2405.09637): per-weight learning rate that
  decays with the accumulated size (or number) of that weight's past updates, and no update of a
  weight whose squared loss gradient is below a threshold.
* :class:`EWC` — elastic weight consolidation (Kirkpatrick et al. 2017, PNAS 114:3521): a diagonal
  Fisher matrix per past task and the penalty ``λ/2 Σ_t Σ_i F_t,i (θ_i − θ*_t,i)²``.
* :class:`BinaryMLP` + :class:`MetaAdam` — binarized network whose hidden weights are
  metaplastic (Laborieux et al. 2021, Nat Commun 12:2549): updates that move a hidden weight toward
  zero are scaled by ``1 − tanh²(m·W_h)``.
* :class:`~biolearn.memory.active_dendrites_net.ActiveDendritesNet` (Iyer et al. 2022) and the
  dense :class:`~biolearn.memory.active_dendrites_net.MLP` (fine-tuning, the forgetting baseline)
  are reused from :mod:`biolearn.memory.active_dendrites_net`.

Protocol (:func:`train_sequence`): tasks are learned one after another without replay; after each
task every task seen so far is tested, filling the accuracy matrix ``A[i, j]`` (accuracy on task
``j`` after training task ``i``). Scenarios (van de Ven & Tolias 2019, arXiv:1904.07734):

* ``domain`` — one shared output over all classes, no task label at test (permuted MNIST);
* ``task`` — the task label is known at test: the logits are restricted to the task's classes
  (masked logits: a multi-head output sharing one layer), in training and at test;
* ``class`` — no task label; logits of every class seen so far compete, in training and at test.

Metrics (Chaudhry et al. 2018, ECCV, "Riemannian walk"): average accuracy ``Ā = mean_j A[T−1, j]``
and average forgetting ``F̄ = mean_{j<T−1} (max_{l∈[j, T−2]} A[l, j] − A[T−1, j])``.

torch is imported lazily; the torch classes are built on first access.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from biolearn.errors import BiolearnError, require_torch

__all__ = [
    "METHODS",
    "SCENARIOS",
    "ContinualTask",
    "SequenceResult",
    "average_accuracy",
    "average_forgetting",
    "fisher_diagonal",
    "split_tasks",
    "permuted_tasks",
    "build_learner",
    "train_sequence",
]  # plus the lazily built torch classes: CLASSP, MetaAdam, BinaryLinear, BinaryMLP, EWC, Learner

METHODS = ("mlp", "ewc", "classp", "metaplastic_bnn", "active_dendrites")
SCENARIOS = ("domain", "task", "class")
FISHER_MODES = ("expected", "labels", "predicted")
NORMS = ("batch", "batch_fixed", "sample", "batch_per_task")
CONTEXTS = ("prototype", "onehot")
_CACHE: dict[str, Any] = {}


# ----------------------------------------------------------------------------- metrics
def average_accuracy(acc: np.ndarray) -> float:
    """``Ā = mean_j A[T−1, j]``: mean accuracy over all tasks after the last one."""
    return float(np.mean(np.asarray(acc)[-1]))


def forgetting_per_task(acc: np.ndarray) -> np.ndarray:
    """``f_j = max_{l ∈ [j, T−2]} A[l, j] − A[T−1, j]`` for ``j < T−1`` (Chaudhry et al. 2018)."""
    a = np.asarray(acc, dtype=float)
    t = len(a)
    return np.array([np.max(a[j:t - 1, j]) - a[t - 1, j] for j in range(t - 1)])


def average_forgetting(acc: np.ndarray) -> float:
    """Mean of :func:`forgetting_per_task` over all tasks but the last (0 for a single task)."""
    f = forgetting_per_task(acc)
    return float(np.mean(f)) if len(f) else 0.0


# ----------------------------------------------------------------------------- tasks
@dataclass
class ContinualTask:
    """One task: float32 inputs ``[N, D]``, int64 labels, and the classes it contains."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: tuple[int, ...]


def permuted_tasks(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
                   y_test: np.ndarray, perms: Sequence[np.ndarray],
                   n_classes: int = 10) -> list[ContinualTask]:
    """Permuted MNIST: the same images and labels under each fixed pixel permutation."""
    ytr, yte = y_train.astype(np.int64), y_test.astype(np.int64)
    cls = tuple(range(n_classes))
    return [ContinualTask(np.ascontiguousarray(x_train[:, p]), ytr,
                          np.ascontiguousarray(x_test[:, p]), yte, cls) for p in perms]


def split_tasks(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
                groups: Sequence[Sequence[int]]) -> list[ContinualTask]:
    """Split MNIST: task ``t`` holds the images of the classes ``groups[t]`` (labels kept)."""
    ytr, yte = y_train.astype(np.int64), y_test.astype(np.int64)
    out = []
    for g in groups:
        g = tuple(int(c) for c in g)
        missing = [c for c in g if not (ytr == c).any() or not (yte == c).any()]
        if missing:
            raise BiolearnError(f"no training or test images of class(es) {missing}",
                                "split_tasks", "use more images (data.n_train / data.n_test)")
        mtr, mte = np.isin(ytr, g), np.isin(yte, g)
        out.append(ContinualTask(np.ascontiguousarray(x_train[mtr]), ytr[mtr],
                                 np.ascontiguousarray(x_test[mte]), yte[mte], g))
    return out


def _active(scenario: str, tasks: Sequence[ContinualTask], trained: int, task: int
            ) -> tuple[int, ...] | None:
    """Classes whose logits compete for ``task`` after training tasks ``0..trained``."""
    if scenario == "domain":
        return None
    if scenario == "task":
        return tuple(sorted(tasks[task].classes))
    return tuple(sorted({c for t in tasks[:trained + 1] for c in t.classes}))


# ----------------------------------------------------------------------------- Fisher
def fisher_diagonal(model: Any, x: Any, y: Any, mode: str = "expected",
                    active: Sequence[int] | None = None, chunk: int = 64,
                    context: Any = None, exact_linear: bool = True) -> dict[str, Any]:
    """Diagonal Fisher information of ``model`` on inputs ``x`` (labels ``y``), per parameter.

    ``F_i = (1/N) Σ_n E_c[(∂ log p(c | x_n, θ) / ∂θ_i)²]`` with ``p`` the softmax over the
    logits of the ``active`` classes (all when None). ``mode`` picks the class distribution:

    * ``expected`` — the model's own predictive distribution, summed exactly over the classes:
      ``Σ_c p(c|x_n) (∂ log p(c|x_n))²`` (the Fisher information proper);
    * ``labels`` — the data labels ``y_n`` (the "empirical Fisher");
    * ``predicted`` — the model's most probable class ``argmax_c p(c|x_n)``.

    When every trainable parameter belongs to an ``nn.Linear`` layer, the per-sample squared
    gradients are summed without forming them: for a layer with input ``a_n`` and output gradient
    ``δ_n,c`` the weight's per-sample gradient is ``δ_n,c a_nᵀ``, so
    ``Σ_n Σ_c w_n,c (δ_n,c a_nᵀ)² = Σ_n (Σ_c w_n,c δ_n,c²) (a_n²)ᵀ`` — one batched backward pass
    per class (``exact_linear=True``). Otherwise per-sample gradients come from
    ``torch.func.vmap``; the model must not mix samples of a batch (no BatchNorm in training
    mode). Returns ``{name: tensor}`` over the parameters that require gradients.
    """
    torch = require_torch()
    from torch.func import functional_call, grad, vmap

    if mode not in FISHER_MODES:
        raise BiolearnError(f"unknown Fisher mode '{mode}'", "fisher_diagonal",
                            f"use one of {list(FISHER_MODES)}")
    if exact_linear and _all_linear(torch, model):
        return _fisher_linear(torch, model, x, y, mode, active, chunk, context)
    was_training = model.training
    model.eval()
    params = {k: v.detach() for k, v in model.named_parameters() if v.requires_grad}
    buffers = dict(model.named_buffers())
    act = None if active is None else torch.as_tensor(list(active), dtype=torch.long)
    labels = _label_index(torch, y, active) if mode == "labels" else None

    def log_probs(pr: dict, xi: Any) -> Any:
        args = (xi[None],) if context is None else (xi[None], context)
        out = functional_call(model, (pr, buffers), args)[0]
        if act is not None:
            out = out[act]
        return torch.log_softmax(out, dim=-1)

    def nll(pr: dict, xi: Any, ci: Any) -> Any:
        lp = log_probs(pr, xi)
        return -(lp * (torch.arange(lp.shape[-1]) == ci)).sum()

    per_sample = vmap(grad(nll), in_dims=(None, 0, 0))
    fisher = {k: torch.zeros_like(v) for k, v in params.items()}
    n = len(x)
    for s in range(0, n, chunk):
        xb = x[s:s + chunk]
        with torch.no_grad():
            lp = vmap(log_probs, in_dims=(None, 0))(params, xb)
        if mode == "expected":
            probs = lp.exp()
            for c in range(lp.shape[1]):
                g = per_sample(params, xb, torch.full((len(xb),), c, dtype=torch.long))
                w = probs[:, c]
                for k in fisher:
                    fisher[k] += torch.einsum("b,b...->...", w, g[k] ** 2)
        else:
            c = labels[s:s + chunk] if labels is not None else lp.argmax(1)
            g = per_sample(params, xb, c)
            for k in fisher:
                fisher[k] += (g[k] ** 2).sum(0)
    for k in fisher:
        fisher[k] /= max(n, 1)
    model.train(was_training)
    return fisher


def _all_linear(torch: Any, model: Any) -> bool:
    """Whether every trainable parameter is the weight or bias of an ``nn.Linear``."""
    owned = {id(p) for m in model.modules() if isinstance(m, torch.nn.Linear)
             for p in m.parameters(recurse=False)}
    return all(id(p) in owned for p in model.parameters() if p.requires_grad)


def _label_index(torch: Any, y: Any, active: Sequence[int] | None) -> Any:
    c = torch.as_tensor(y, dtype=torch.long)
    if active is None:
        return c
    act = torch.as_tensor(list(active), dtype=torch.long)
    lut = torch.full((max(int(c.max()), int(act.max())) + 1,), -1, dtype=torch.long)
    lut[act] = torch.arange(len(act))
    c = lut[c]
    if (c < 0).any():
        raise BiolearnError("a label is not among the active classes", "fisher_diagonal",
                            "pass the task's classes")
    return c


def _fisher_linear(torch: Any, model: Any, x: Any, y: Any, mode: str,
                   active: Sequence[int] | None, chunk: int, context: Any) -> dict[str, Any]:
    """:func:`fisher_diagonal` for networks of ``nn.Linear`` layers, without per-sample
    gradients (see there)."""
    was_training = model.training
    model.eval()
    layers = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    names = {id(p): k for k, p in model.named_parameters()}
    acts: dict[int, Any] = {}
    outs: dict[int, Any] = {}

    def hook(mod: Any, inp: Any, out: Any) -> None:
        if id(mod) in outs:
            raise BiolearnError("a Linear layer is called twice in one forward pass",
                                "fisher_diagonal", "pass exact_linear=False")
        acts[id(mod)] = inp[0].detach()
        outs[id(mod)] = out

    handles = [m.register_forward_hook(hook) for m in layers]
    act = None if active is None else torch.as_tensor(list(active), dtype=torch.long)
    fisher = {k: torch.zeros_like(p) for k, p in model.named_parameters() if p.requires_grad}
    labels = _label_index(torch, y, active) if mode == "labels" else None
    try:
        for s in range(0, len(x), chunk):
            xb = x[s:s + chunk]
            acts.clear()
            outs.clear()
            out = model(xb) if context is None else model(xb, context)
            if act is not None:
                out = out[:, act]
            lp = torch.log_softmax(out, dim=-1)
            if mode == "expected":
                probs = lp.detach().exp()
                targets = [(torch.full((len(xb),), c, dtype=torch.long), probs[:, c])
                           for c in range(lp.shape[1])]
            elif mode == "labels":
                targets = [(labels[s:s + chunk], None)]
            else:
                targets = [(lp.detach().argmax(1), None)]
            dsq = {id(m): 0.0 for m in layers}
            for k, (c, w) in enumerate(targets):
                tensors = [outs[id(m)] for m in layers]
                deltas = torch.autograd.grad(lp.gather(1, c[:, None]).sum(), tensors,
                                             retain_graph=k < len(targets) - 1,
                                             allow_unused=True)
                for m, d in zip(layers, deltas, strict=True):
                    if d is None:
                        continue
                    d2 = d * d
                    dsq[id(m)] = dsq[id(m)] + (d2 if w is None else w[:, None] * d2)
            for m in layers:
                d2 = dsq[id(m)]
                if isinstance(d2, float):
                    continue
                if m.weight.requires_grad:
                    fisher[names[id(m.weight)]] += d2.T @ (acts[id(m)] ** 2)
                if m.bias is not None and m.bias.requires_grad:
                    fisher[names[id(m.bias)]] += d2.sum(0)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    for k in fisher:
        fisher[k] /= max(len(x), 1)
    return fisher


# ----------------------------------------------------------------------------- torch classes
def _build() -> dict[str, Any]:
    if _CACHE:
        return _CACHE
    torch = require_torch()
    nn = torch.nn

    class CLASSP(torch.optim.Optimizer):
        r"""CLASSP: Continual Learning through Adjustment Suppression and Sparsity Promotion
        (Ludwig 2024, arXiv:2405.09637; the author's code github.com/oswaldoludwig/CLASSP).

        Per weight ``i`` with loss gradient ``g_i`` at step ``t`` and threshold ``θ``:

            if g_i,t² > θ:   S_i ← S_i + a_i,t
                             w_i ← w_i − α g_i,t / (ε + S_i)^(1/p)
            else:            w_i and S_i unchanged

        ``a_i,t = |g_i,t|^p`` (``accumulate="size"``, the paper's rule: a generalisation of
        AdaGrad, which is ``p = 2``, ``θ = 0``) or ``a_i,t = 1`` (``accumulate="count"``: the
        rate decays with the *number* of past updates, ``α / (ε + n_i)^(1/p)``). The decaying rate
        models the saturation of LTP after repeated potentiation; the threshold models LTP's
        induction threshold and makes the updates sparse, leaving weights free for later tasks.

        The paper's Eq. sums the past gradients ``k = 0 … t−1``; the author's code (and its
        pseudo-code) adds the current ``|g|^p`` to ``S`` before scaling, as AdaGrad does, which
        bounds the first step by ``α`` instead of ``α g / ε^(1/p)``: that is what is done here.
        One departure from the author's code, to follow the paper's text: the threshold is tested
        per weight (the code tests ``(grad**2).any() > threshold``, one boolean for the whole
        tensor, so with its default θ = 0.5 every weight with a non-zero gradient is updated).
        As in the code, ``S`` only grows for weights that are updated. ``S`` persists across
        tasks: do not re-create the optimiser at a task boundary.
        """

        def __init__(self, params: Any, lr: float = 0.01, threshold: float = 0.0,
                     epsilon: float = 1e-5, power: float = 1.0, accumulate: str = "size"):
            if lr < 0 or threshold < 0 or epsilon < 0 or power <= 0:
                raise ValueError("CLASSP needs lr >= 0, threshold >= 0, epsilon >= 0, power > 0")
            if accumulate not in ("size", "count"):
                raise ValueError("accumulate must be 'size' or 'count'")
            super().__init__(params, dict(lr=lr, threshold=threshold, epsilon=epsilon,
                                          power=power, accumulate=accumulate))
            self.n_seen = 0
            self.n_updated = 0

        @torch.no_grad()
        def step(self, closure: Callable | None = None) -> Any:
            loss = None
            if closure is not None:
                with torch.enable_grad():
                    loss = closure()
            for group in self.param_groups:
                lr, th, eps = group["lr"], group["threshold"], group["epsilon"]
                pw, count = group["power"], group["accumulate"] == "count"
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    g = p.grad
                    st = self.state[p]
                    if "acc" not in st:
                        st["acc"] = torch.zeros_like(p)
                    mask = g * g > th
                    inc = mask.to(p.dtype) if count else g.abs().pow(pw) * mask
                    st["acc"].add_(inc)
                    scale = (st["acc"] + eps).pow(-1.0 / pw)
                    p.sub_(torch.where(mask, lr * g * scale, torch.zeros_like(p)))
                    self.n_seen += p.numel()
                    self.n_updated += int(mask.sum())
            return loss

        def update_fraction(self) -> float:
            """Fraction of (weight, step) pairs that passed the threshold so far."""
            return self.n_updated / self.n_seen if self.n_seen else 0.0

        def state_bytes(self) -> int:
            """Bytes of the per-weight accumulators ``S`` (the state carried across tasks)."""
            return int(sum(s["acc"].numel() * s["acc"].element_size()
                           for s in self.state.values() if "acc" in s))

    class MetaAdam(torch.optim.Optimizer):
        r"""Adam with metaplastic hidden weights (Laborieux et al. 2021, Nat Commun 12:2549,
        Eq. 1 and their code ``Adam_meta``, github.com/Laborieux-Axel/SynapticMetaplasticityBNN).

        With Adam's moments ``m_t = β1 m + (1−β1) g``, ``v_t = β2 v + (1−β2) g²`` and the step
        ``u = η m̂ / (√v̂ + ε)`` (``m̂ = m_t/(1−β1^t)``, ``v̂ = v_t/(1−β2^t)``), a hidden weight
        ``W_h`` of a tensor with ``ndim >= 2`` changes by

            W_h ← W_h − u · f_meta(m, W_h)   if u · W_h > 0 (the update moves W_h toward zero)
            W_h ← W_h − u                      otherwise,
            f_meta(m, W_h) = 1 − tanh²(m · W_h).

        So the larger ``|W_h|`` the harder it is to flip the binary weight ``sign(W_h)``, while
        growing ``|W_h|`` is never hindered. ``m = 0`` is plain Adam. One-dimensional tensors
        (BatchNorm scales and shifts) always get the plain Adam step, as in the authors' code.
        ``weight_decay`` adds ``λ W`` to the gradient (their runs: 1e-7).
        """

        def __init__(self, params: Any, lr: float = 0.005, meta: float = 1.35,
                     betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                     weight_decay: float = 0.0):
            if lr < 0 or meta < 0 or eps < 0 or weight_decay < 0:
                raise ValueError("MetaAdam needs lr, meta, eps, weight_decay >= 0")
            super().__init__(params, dict(lr=lr, meta=meta, betas=betas, eps=eps,
                                          weight_decay=weight_decay))

        @torch.no_grad()
        def step(self, closure: Callable | None = None) -> Any:
            loss = None
            if closure is not None:
                with torch.enable_grad():
                    loss = closure()
            for group in self.param_groups:
                b1, b2 = group["betas"]
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    g = p.grad
                    if group["weight_decay"]:
                        g = g.add(p, alpha=group["weight_decay"])
                    st = self.state[p]
                    if not st:
                        st["step"] = 0
                        st["exp_avg"] = torch.zeros_like(p)
                        st["exp_avg_sq"] = torch.zeros_like(p)
                    st["step"] += 1
                    m, v = st["exp_avg"], st["exp_avg_sq"]
                    m.mul_(b1).add_(g, alpha=1 - b1)
                    v.mul_(b2).addcmul_(g, g, value=1 - b2)
                    bc1, bc2 = 1 - b1 ** st["step"], 1 - b2 ** st["step"]
                    u = (m / bc1) / ((v / bc2).sqrt() + group["eps"]) * group["lr"]
                    if p.ndim >= 2 and group["meta"] > 0:
                        toward_zero = u * p > 0
                        f = 1.0 - torch.tanh(group["meta"] * p) ** 2
                        u = torch.where(toward_zero, u * f, u)
                    p.sub_(u)
            return loss

    class SignSTE(torch.autograd.Function):
        """Sign activation (+1 for x >= 0) with the straight-through gradient 1_{|x| <= 1}
        (Hubara et al. 2016, as used by Laborieux et al.)."""

        @staticmethod
        def forward(ctx: Any, x: Any) -> Any:
            ctx.save_for_backward(x)
            return torch.where(x >= 0, 1.0, -1.0).to(x.dtype)

        @staticmethod
        def backward(ctx: Any, grad_out: Any) -> Any:
            (x,) = ctx.saved_tensors
            return grad_out * (x.abs() <= 1.0).to(grad_out.dtype)

    def binarize(w: Any) -> Any:
        """``sign(w)`` (+1 at 0) in the forward pass, identity gradient to the hidden weight."""
        wb = torch.where(w >= 0, 1.0, -1.0).to(w.dtype)
        return w + (wb - w).detach()

    class BinaryLinear(nn.Module):
        """Linear map with binary weights ``W_b = sign(W_h)`` and no bias (Laborieux et al.).

        ``weight`` holds the hidden real weights ``W_h`` (the parameter the optimiser updates);
        the forward pass uses ``W_b``; the gradient with respect to ``W_b`` is applied to ``W_h``.
        Init ``U(−width/2, width/2)`` (their code: width 0.1).
        """

        def __init__(self, n_in: int, n_out: int, width: float = 0.1, generator: Any = None):
            super().__init__()
            u = torch.rand(n_out, n_in, generator=generator)
            self.weight = nn.Parameter((u - 0.5) * width)

        def binary_weight(self) -> Any:
            return torch.where(self.weight >= 0, 1.0, -1.0).to(self.weight.dtype).detach()

        def forward(self, x: Any) -> Any:
            return nn.functional.linear(x, binarize(self.weight))

    class _Scale(nn.Module):
        def __init__(self, c: float):
            super().__init__()
            self.c = float(c)

        def forward(self, x: Any) -> Any:
            return x * self.c

    class BinaryMLP(nn.Module):
        """Binarized MLP of Laborieux et al. 2021: ``[BinaryLinear → BatchNorm → sign] × L →
        BinaryLinear → BatchNorm`` (the last BatchNorm's output are the logits).

        Inputs are not binarized (real pixels, as in their code); hidden activations are ±1 with
        the straight-through gradient. ``norm``:

        * ``sample`` — each layer's output normalised per sample over its units, no parameters
          (``InstanceNorm`` in their task-free runs); the logits are ``W_b h / sqrt(n_hidden)``
          so that classes of different tasks are not normalised together;
        * ``batch`` — BatchNorm with scale and shift, shared by all tasks (running statistics
          at test; their code uses the test batch's own statistics);
        * ``batch_fixed`` — BatchNorm without scale and shift (their stream-learning runs);
        * ``batch_per_task`` — ``batch``, with a copy of every BatchNorm state (scale, shift,
          running statistics) kept per task and restored to test that task (their permuted-MNIST
          protocol): :meth:`save_task_norm`, :meth:`load_task_norm`.
        """

        uses_context = False

        def __init__(self, n_in: int, hidden: Sequence[int], n_out: int, width: float = 0.1,
                     seed: int = 0, norm: str = "batch"):
            super().__init__()
            if norm not in NORMS:
                raise ValueError(f"norm must be one of {NORMS}")
            gen = torch.Generator().manual_seed(int(seed))
            sizes = [n_in, *hidden, n_out]
            self.norm = norm
            self.fcs = nn.ModuleList(BinaryLinear(a, b, width, gen)
                                     for a, b in zip(sizes[:-1], sizes[1:], strict=True))
            if norm == "sample":
                self.bns = nn.ModuleList(nn.LayerNorm(b, elementwise_affine=False)
                                         for b in sizes[1:-1])
                self.bns.append(_Scale(1.0 / math.sqrt(sizes[-2])))
            else:
                self.bns = nn.ModuleList(nn.BatchNorm1d(b, affine=norm != "batch_fixed")
                                         for b in sizes[1:])
            self.task_norms: list[dict[str, Any]] = []

        def _norm_state(self) -> dict[str, Any]:
            return {k: v.detach().clone() for k, v in self.bns.state_dict().items()}

        def save_task_norm(self) -> None:
            """Store the current normalisation state as that of the next task index."""
            self.task_norms.append(self._norm_state())

        def load_task_norm(self, t: int) -> None:
            """Put task ``t``'s stored normalisation state into the network (in place)."""
            with torch.no_grad():
                for k, v in self.bns.state_dict().items():
                    v.copy_(self.task_norms[t][k])

        def task_norm_bytes(self) -> int:
            return int(sum(v.numel() * v.element_size() for d in self.task_norms
                           for v in d.values()))

        def forward(self, x: Any, context: Any = None) -> Any:
            last = len(self.fcs) - 1
            for i, (fc, bn) in enumerate(zip(self.fcs, self.bns, strict=True)):
                x = bn(fc(x))
                if i != last:
                    x = SignSTE.apply(x)
            return x

    class EWC:
        r"""Elastic weight consolidation (Kirkpatrick et al. 2017, PNAS 114:3521, Eq. 3 and the
        multi-task form in its text: one penalty per past task).

        After task ``t``: ``θ*_t`` ← the parameters, ``F_t`` ← the diagonal Fisher of the model on
        that task's data (:func:`fisher_diagonal`; the class distribution is ``fisher_mode``).
        While learning later tasks the loss gets

            L_EWC(θ) = (λ / 2) Σ_t Σ_i F_t,i (θ_i − θ*_t,i)²,
            ∂L_EWC/∂θ_i = λ Σ_t F_t,i (θ_i − θ*_t,i).

        Stores ``F_t`` and ``θ*_t`` for every past task: ``2 · n_params · n_tasks`` floats.
        """

        def __init__(self, model: Any, lam: float, fisher_mode: str = "expected",
                     n_samples: int | None = 1000, chunk: int = 64):
            if lam < 0:
                raise ValueError("EWC needs lam >= 0")
            if fisher_mode not in FISHER_MODES:
                raise ValueError(f"fisher_mode must be one of {FISHER_MODES}")
            self.model, self.lam, self.fisher_mode = model, float(lam), fisher_mode
            self.n_samples, self.chunk = n_samples, int(chunk)
            self.fishers: list[dict[str, Any]] = []
            self.anchors: list[dict[str, Any]] = []

        def add_task(self, fisher: dict[str, Any], anchor: dict[str, Any] | None = None) -> None:
            """Store one past task's Fisher diagonal and anchor (default: current parameters)."""
            if anchor is None:
                anchor = {k: v.detach().clone() for k, v in self.model.named_parameters()
                          if k in fisher}
            self.fishers.append({k: v.detach().clone() for k, v in fisher.items()})
            self.anchors.append(anchor)

        def consolidate(self, x: Any, y: Any, active: Sequence[int] | None = None,
                        generator: Any = None) -> dict[str, Any]:
            """Estimate ``F`` on (a random subset of ``n_samples`` of) ``x, y``; store it."""
            if self.n_samples is not None and len(x) > self.n_samples:
                idx = torch.randperm(len(x), generator=generator)[:self.n_samples]
                x, y = x[idx], y[idx]
            f = fisher_diagonal(self.model, x, y, self.fisher_mode, active, self.chunk)
            self.add_task(f)
            return f

        def penalty(self) -> Any:
            """``(λ/2) Σ_t Σ_i F_t,i (θ_i − θ*_t,i)²`` (0 before the first consolidation)."""
            params = dict(self.model.named_parameters())
            total = torch.zeros(())
            for f, a in zip(self.fishers, self.anchors, strict=True):
                for k, fk in f.items():
                    total = total + (fk * (params[k] - a[k]) ** 2).sum()
            return 0.5 * self.lam * total

        def state_bytes(self) -> int:
            return int(sum(v.numel() * v.element_size()
                           for d in (*self.fishers, *self.anchors) for v in d.values()))

    _CACHE.update(CLASSP=CLASSP, MetaAdam=MetaAdam, SignSTE=SignSTE, binarize=binarize,
                  BinaryLinear=BinaryLinear, BinaryMLP=BinaryMLP, EWC=EWC)
    return _CACHE


_LAZY = ("CLASSP", "MetaAdam", "SignSTE", "binarize", "BinaryLinear", "BinaryMLP", "EWC")


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return _build()[name]
    raise AttributeError(name)


# ----------------------------------------------------------------------------- learners
@dataclass
class Learner:
    """A method: its model, how its optimiser is made, and its between-task hooks.

    ``make_optimizer(model)`` is called at the start of every task when ``reset_optimizer``
    (Adam re-created per task, as in the papers of EWC, active dendrites and metaplasticity),
    else once (CLASSP: its accumulators must persist). ``penalty()`` is added to the loss;
    ``end_task(i, x, y, active)`` runs after task ``i`` (EWC consolidation).
    ``extra_state_bytes()``: bytes of the state the method carries from one task to the next
    besides the network itself. ``context``: None (no context input), ``"prototype"`` (the task's
    mean training input) or ``"onehot"`` (the task's one-hot code). ``select_task(t)`` readies the
    model to test inputs assigned to task ``t`` (``None``: back to the training state), for
    task-specific state such as per-task BatchNorm.
    """

    name: str
    model: Any
    make_optimizer: Callable[[Any], Any]
    reset_optimizer: bool = True
    penalty: Callable[[], Any] | None = None
    end_task: Callable[..., None] | None = None
    extra_state_bytes: Callable[[], int] = lambda: 0
    info: Callable[[], dict] = lambda: {}
    context: str | None = None
    select_task: Callable[[int | None], None] | None = None


def build_learner(name: str, n_in: int, hidden: Sequence[int], n_out: int, n_tasks: int,
                  seed: int, opts: dict[str, Any]) -> Learner:
    """Build method ``name`` (one of :data:`METHODS`) with its options ``opts``.

    ``opts`` keys by method — mlp: ``lr``; ewc: ``lr, lam, fisher, n_samples``; classp: ``lr,
    threshold, epsilon, power, accumulate``; metaplastic_bnn: ``lr, meta, width,
    weight_decay, norm``; active_dendrites: ``lr, kw_fraction, ff_sparsity, n_segments,
    context_density, selection, context`` (``prototype``: Iyer et al.'s mean-input context of
    dimension ``n_in``; ``onehot``: the task's one-hot code, of dimension ``n_tasks``; segments
    start ``U(±1/sqrt(context_density · dim))``). The dense methods (mlp, ewc, classp) start
    from identical weights for the same ``seed``.
    """
    torch = require_torch()
    from biolearn.memory import active_dendrites_net as adn

    c = _build()
    o = dict(opts)
    if name == "mlp":
        model = adn.MLP(n_in, hidden, n_out, seed=seed)
        return Learner(name, model, lambda m: torch.optim.Adam(m.parameters(), lr=o["lr"]))
    if name == "ewc":
        model = adn.MLP(n_in, hidden, n_out, seed=seed)
        ewc = c["EWC"](model, o["lam"], o.get("fisher", "expected"), o.get("n_samples", 1000))
        gen = torch.Generator().manual_seed(int(seed) + 7919)

        def end(i: int, x: Any, y: Any, active: Any) -> None:
            ewc.consolidate(x, y, active, generator=gen)

        return Learner(name, model, lambda m: torch.optim.Adam(m.parameters(), lr=o["lr"]),
                       penalty=ewc.penalty, end_task=end, extra_state_bytes=ewc.state_bytes)
    if name == "classp":
        model = adn.MLP(n_in, hidden, n_out, seed=seed)
        holder: dict[str, Any] = {}

        def make(m: Any) -> Any:
            holder["opt"] = c["CLASSP"](m.parameters(), lr=o["lr"], threshold=o["threshold"],
                                        epsilon=o["epsilon"], power=o["power"],
                                        accumulate=o.get("accumulate", "size"))
            return holder["opt"]

        return Learner(name, model, make, reset_optimizer=False,
                       extra_state_bytes=lambda: holder["opt"].state_bytes() if holder else 0,
                       info=lambda: {"update_fraction": holder["opt"].update_fraction()}
                       if holder else {})
    if name == "metaplastic_bnn":
        model = c["BinaryMLP"](n_in, hidden, n_out, width=o.get("width", 0.1), seed=seed,
                               norm=o.get("norm", "batch"))
        flips: list[int] = []
        before: dict[str, Any] = {}

        def snapshot() -> dict[str, Any]:
            return {k: fc.binary_weight().clone() for k, fc in enumerate(model.fcs)}

        def make_meta(m: Any) -> Any:
            before.clear()
            before.update(snapshot())
            return c["MetaAdam"](m.parameters(), lr=o["lr"], meta=o["meta"],
                                 weight_decay=o.get("weight_decay", 0.0))

        per_task = model.norm == "batch_per_task"
        current: dict[str, Any] = {}

        def end_meta(i: int, x: Any, y: Any, active: Any) -> None:
            now = snapshot()
            flips.append(int(sum((now[k] != before[k]).sum() for k in now)))
            if per_task:
                model.save_task_norm()

        def select(t: int | None) -> None:
            if t is None:  # back to the state training continues from
                if current:
                    with torch.no_grad():
                        for k, v in model.bns.state_dict().items():
                            v.copy_(current[k])
                    current.clear()
                return
            if not current:
                current.update(model._norm_state())
            model.load_task_norm(t)

        return Learner(name, model, make_meta, end_task=end_meta,
                       extra_state_bytes=model.task_norm_bytes,
                       info=lambda: {"binary_flips_per_task": list(flips),
                                     "n_binary_weights": int(sum(fc.weight.numel()
                                                                 for fc in model.fcs))},
                       select_task=select if per_task else None)
    if name == "active_dendrites":
        n_seg = int(o.get("n_segments") or n_tasks)
        kind = o.get("context", "prototype")
        if kind not in CONTEXTS:
            raise BiolearnError(f"unknown context '{kind}'", "build_learner",
                                f"use one of {list(CONTEXTS)}")
        dim_ctx = n_in if kind == "prototype" else n_tasks
        density = o.get("context_density", 0.1)
        model = adn.ActiveDendritesNet(
            n_in, hidden, n_out, n_seg, dim_ctx, o.get("kw_fraction", 0.05),
            o.get("ff_sparsity", 0.5), density, o.get("selection", "absmax"), 0.0, seed=seed)
        # the fused kernel: the segment tensors make Adam's step memory-bound (one pass, not ten)
        return Learner(name, model, lambda m: adn._adam(torch, m, o["lr"]), context=kind)
    raise BiolearnError(f"unknown method '{name}'", "build_learner", f"use one of {list(METHODS)}")


# ----------------------------------------------------------------------------- protocol
@dataclass
class SequenceResult:
    """Outcome of :func:`train_sequence` for one method.

    ``accuracy[i, j]``: test accuracy on task ``j`` after training tasks ``0..i`` (NaN for
    ``j > i``). ``task_inference[i]``: fraction of the test inputs of tasks ``0..i`` given their
    own task's context or task-specific state (such models only; NaN otherwise).
    ``train_time_s`` includes ``consolidation_time_s`` (EWC's Fisher estimates).
    ``extra_state_bytes``: state carried between tasks besides the network (EWC: Fisher
    diagonals and anchors; CLASSP: accumulators; active dendrites: the stored prototypes;
    per-task BatchNorm: the stored states and the prototypes that pick one). ``model_bytes``:
    parameters and buffers.
    """

    accuracy: np.ndarray
    task_inference: np.ndarray
    train_time_s: float
    eval_time_s: float
    consolidation_time_s: float
    losses: list[float] = field(default_factory=list)
    extra_state_bytes: int = 0
    n_parameters: int = 0
    model_bytes: int = 0
    info: dict = field(default_factory=dict)

    @property
    def average_accuracy(self) -> float:
        return average_accuracy(self.accuracy)

    @property
    def average_forgetting(self) -> float:
        return average_forgetting(self.accuracy)


def _logits(model: Any, x: Any, ctx: Any, active: Any) -> Any:
    out = model(x) if ctx is None else model(x, ctx)
    return out if active is None else out[:, active]


def _evaluate(torch: Any, model: Any, task: ContinualTask, active: tuple | None,
              ctx_rows: Any, ids: np.ndarray | None, batch: int,
              select: Callable[[int | None], None] | None = None) -> float:
    """Accuracy on ``task``'s test set; input ``n`` is assigned to task ``ids[n]`` (if given):
    it gets context row ``ids[n]`` (when ``ctx_rows``) and ``select(ids[n])`` is called first."""
    x, y = task.x_test, task.y_test
    act = None if active is None else torch.as_tensor(active, dtype=torch.long)
    classes = None if active is None else np.asarray(active)
    correct = 0
    groups = [(None, np.arange(len(x)))] if ids is None else \
        [(t, np.nonzero(ids == t)[0]) for t in np.unique(ids)]
    with torch.no_grad():
        for t, sel in groups:
            c = None if t is None or ctx_rows is None else ctx_rows[t:t + 1]
            if select is not None and t is not None:
                select(int(t))
            for s in range(0, len(sel), batch):
                b = sel[s:s + batch]
                out = _logits(model, torch.from_numpy(x[b]), c, act)
                pred = out.argmax(1).numpy()
                if classes is not None:
                    pred = classes[pred]
                correct += int((pred == y[b]).sum())
    if select is not None:
        select(None)
    return correct / len(x)


def train_sequence(learner: Learner, tasks: Sequence[ContinualTask], scenario: str = "domain",
                   *, epochs: int = 1, batch_size: int = 128, seed: int = 0,
                   test_context: str = "infer", eval_batch: int = 1000,
                   progress: Callable[[int, str], Any] | None = None,
                   on_task: Callable[[int, np.ndarray, float], None] | None = None
                   ) -> SequenceResult:
    """Train ``learner`` on ``tasks`` in sequence (no replay) and fill the accuracy matrix.

    Every method sees the same mini-batches in the same order for the same ``seed``. A
    context-using model (active dendrites) gets the current task's context (its prototype, the
    mean training input, or its one-hot code) while training; at test time the true task's
    context in the ``task`` scenario (the task label is given there), else that of the task whose
    stored prototype is nearest to the input (``test_context="infer"``, Iyer et al. 2022) or the
    true task's (``"oracle"``). ``progress(total, desc)`` may return a tqdm-like bar;
    ``on_task(i, accuracy, seconds)`` is called after task ``i`` is tested.
    """
    torch = require_torch()
    from biolearn.memory import active_dendrites_net as adn

    if scenario not in SCENARIOS:
        raise BiolearnError(f"unknown scenario '{scenario}'", "train_sequence",
                            f"use one of {list(SCENARIOS)}")
    if test_context not in ("infer", "oracle"):
        raise BiolearnError(f"unknown test_context '{test_context}'", "train_sequence",
                            "use 'infer' or 'oracle'")
    model = learner.model
    uses_ctx = learner.context is not None
    uses_ids = uses_ctx or learner.select_task is not None
    onehot = np.eye(len(tasks), dtype=np.float32)
    n = len(tasks)
    acc = np.full((n, n), np.nan)
    inf = np.full(n, np.nan)
    gen = torch.Generator().manual_seed(int(seed))
    protos = np.zeros((0, tasks[0].x_train.shape[1]), dtype=np.float32)
    losses: list[float] = []
    t_train = t_eval = t_cons = 0.0
    t_start = time.perf_counter()
    steps = sum(epochs * math.ceil(len(t.x_train) / batch_size) for t in tasks)
    bar = progress(steps, learner.name) if progress is not None else None
    opt = None
    has_bn = any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())
    for i, task in enumerate(tasks):
        t0 = time.perf_counter()
        protos = np.vstack([protos, adn.task_prototype(task.x_train)[None]])
        table = onehot if learner.context == "onehot" else protos
        ctx = torch.from_numpy(table[i:i + 1]) if uses_ctx else None
        if opt is None or learner.reset_optimizer:
            opt = learner.make_optimizer(model)
        active = _active(scenario, tasks, i, i)
        act = None if active is None else torch.as_tensor(active, dtype=torch.long)
        xtr = torch.from_numpy(task.x_train)
        ytr = torch.from_numpy(task.y_train)
        if active is not None:
            lut = torch.full((max(int(ytr.max()), max(active)) + 1,), -1, dtype=torch.long)
            lut[act] = torch.arange(len(active))
            ytr_local = lut[ytr]
        else:
            ytr_local = ytr
        model.train()
        tot, cnt = 0.0, 0
        for _ in range(epochs):
            order = torch.randperm(len(xtr), generator=gen)
            for s in range(0, len(order), batch_size):
                b = order[s:s + batch_size]
                if len(b) < 2 and has_bn:
                    continue  # BatchNorm cannot normalise a batch of one
                loss = torch.nn.functional.cross_entropy(_logits(model, xtr[b], ctx, act),
                                                         ytr_local[b])
                total = loss if learner.penalty is None else loss + learner.penalty()
                opt.zero_grad(set_to_none=True)
                total.backward()
                opt.step()
                tot += float(loss.detach()) * len(b)
                cnt += len(b)
                if bar is not None:
                    bar.update(1)
        losses.append(tot / max(cnt, 1))
        t1 = time.perf_counter()
        if learner.end_task is not None:
            learner.end_task(i, xtr, ytr, active)
        t2 = time.perf_counter()
        t_train += t1 - t0
        t_cons += t2 - t1
        model.eval()
        hits = total_n = 0
        ctx_rows = None
        if uses_ctx:
            ctx_rows = torch.from_numpy(onehot[:i + 1] if learner.context == "onehot" else protos)
        for j in range(i + 1):
            a_j = _active(scenario, tasks, i, j)
            ids = None
            if uses_ids:
                if scenario == "task" or test_context == "oracle":
                    ids = np.full(len(tasks[j].x_test), j, dtype=np.int64)
                else:
                    ids = adn.nearest_prototype(tasks[j].x_test, protos)
                hits += int((ids == j).sum())
                total_n += len(ids)
            acc[i, j] = _evaluate(torch, model, tasks[j], a_j, ctx_rows, ids, eval_batch,
                                  learner.select_task)
        if uses_ids:
            inf[i] = hits / total_n
        t_eval += time.perf_counter() - t2
        if on_task is not None:
            on_task(i, acc.copy(), time.perf_counter() - t_start)
    if bar is not None:
        bar.close()
    params = list(model.parameters())
    n_par = int(sum(p.numel() for p in params))
    model_bytes = int(sum(p.numel() * p.element_size() for p in params)
                      + sum(b.numel() * b.element_size() for b in model.buffers()))
    extra = int(learner.extra_state_bytes())
    if uses_ids:  # the stored prototypes: context memory / task inference
        extra += int(protos.nbytes)
    return SequenceResult(acc, inf, t_train + t_cons, t_eval, t_cons, losses, extra, n_par,
                          model_bytes, dict(learner.info()))
