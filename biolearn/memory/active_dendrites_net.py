"""Active-dendrites network for continual learning (Iyer et al. 2022, Front. Neurorobot. 16:846219).

Each hidden unit has a feed-forward weight vector and ``S`` dendritic segments, each a weight vector
``u_j`` over a context vector ``c``. With the feed-forward drive ``y = w . x + b`` and the segment
activations ``d_j = u_j . c`` the unit's output is (Iyer et al. 2022, Methods)

    y_hat = y * sigmoid(d_{j*}),

where ``j*`` selects one segment. The paper's formula writes ``max_j d_j``
(``selection="max"``); the authors' public code gates with the segment of largest *absolute*
activation, keeping its sign (``selection="absmax"``, the default here), so a strongly negative
segment can silence a unit. A k-winner-take-all (k-WTA) layer then keeps the ``k`` largest gated
outputs of each hidden layer and zeroes the rest. Because the context selects which units can
win, each task uses its own sparse sub-network, which limits interference between tasks.

Permuted-MNIST protocol (Iyer et al. 2022 and their public code): task 0 is MNIST, task ``t``
applies a fixed random pixel permutation; tasks are trained in sequence with no replay; one 10-way
output head is shared by all tasks. The context of a task is its *prototype*: the element-wise
mean of that task's (normalised) training inputs. During training the network receives the
prototype of the current task; at test time the task is not given: each test input gets the
prototype of the nearest (Euclidean) stored prototype of the tasks seen so far. Network: 784 -
2048 - 2048 - 10, ``S`` = number of tasks, k-WTA with 5 % of units active, 50 % of the
feed-forward weights fixed at zero, no boosting, Adam (lr 5e-4, reset at each task), batch 256,
3 epochs per task for 10 tasks. Reported: 94.6 % mean accuracy over 10 tasks.

The k-WTA optionally supports duty-cycle boosting (Ahmad & Scheinkman 2019, arXiv:1903.11257,
k-winners with boosting): winners are chosen on ``x * exp(beta (a_target - a_duty))``;
``beta = 0`` (Iyer et al.'s setting) disables it.

torch is imported lazily; the ``nn.Module`` classes (:class:`DendriticLayer`, :class:`KWinners`,
:class:`ActiveDendritesNet`, :class:`MLP`) are built on first access.
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
    "MNIST_MEAN",
    "MNIST_STD",
    "ContinualResult",
    "Task",
    "dendritic_gate",
    "kwta",
    "kwta_mask",
    "boost_factors",
    "normalize_mnist",
    "permutations",
    "permuted_tasks",
    "task_prototype",
    "nearest_prototype",
    "train_continual",
]  # plus the lazily built torch modules: DendriticLayer, KWinners, ActiveDendritesNet, MLP

# Normalisation used by Iyer et al.'s permuted-MNIST data set (pixel mean / std of MNIST in [0, 1]).
MNIST_MEAN = 0.13062755
MNIST_STD = 0.30810780

_SELECTIONS = ("absmax", "max")
_CACHE: dict[str, Any] = {}




# ----------------------------------------------------------------------------- functional
def dendritic_gate(y: Any, d: Any, selection: str = "absmax") -> tuple[Any, Any]:
    """Gate feed-forward outputs by dendritic segments: ``y * sigmoid(d[..., j*])``.

    ``y``: ``[B, N]`` feed-forward drive; ``d``: ``[B or 1, N, S]`` segment activations
    ``d_j = u_j . c``. ``selection="max"``: ``j* = argmax_j d_j`` (Iyer et al. 2022, as
    printed); ``"absmax"``: ``j* = argmax_j |d_j|`` with the sign kept (their code's default).
    Returns ``(gated [B, N], j* [B or 1, N])``; the gradient flows through the chosen segment only.
    """
    torch = require_torch()
    if selection not in _SELECTIONS:
        raise BiolearnError(f"unknown segment selection '{selection}'", "dendritic_gate",
                            f"use one of {list(_SELECTIONS)}")
    idx = (d.abs() if selection == "absmax" else d).argmax(dim=-1, keepdim=True)
    chosen = torch.gather(d, -1, idx).squeeze(-1)
    return y * torch.sigmoid(chosen), idx.squeeze(-1)


def kwta_mask(x: Any, k: int, boost: Any = None) -> Any:
    """Float mask with exactly ``k`` ones per row: the winners of ``x`` (or of ``x * boost``).

    Ties are broken by ``torch.topk`` so the count is always ``k``. The selection carries no
    gradient (Iyer et al. 2022; boosting: Ahmad & Scheinkman 2019).
    """
    torch = require_torch()
    n = x.shape[-1]
    if not 0 <= k <= n:
        raise BiolearnError(f"k={k} winners out of {n} units", "k-WTA", "choose 0 <= k <= units")
    score = x.detach() if boost is None else x.detach() * boost
    idx = torch.topk(score, k, dim=-1).indices
    return torch.zeros_like(x).scatter_(-1, idx, 1.0)


def kwta(x: Any, k: int, boost: Any = None) -> Any:
    """k-winner-take-all: keep the ``k`` winners of each row of ``x`` (their own values), zero the
    rest. Gradients reach the winners only."""
    return x * kwta_mask(x, k, boost)


def boost_factors(duty_cycle: Any, target_density: float, strength: float) -> Any:
    """Boost ``exp(beta (a_target - a_duty))`` (Ahmad & Scheinkman 2019); 1 for beta = 0."""
    torch = require_torch()
    return torch.exp(strength * (target_density - duty_cycle))


# ----------------------------------------------------------------------------- data
def normalize_mnist(images: np.ndarray) -> np.ndarray:
    """uint8 ``[N, 28, 28]`` -> float32 ``[N, 784]``, ``(x / 255 - mean) / std`` (Iyer et al.)."""
    x = np.asarray(images, dtype=np.float32).reshape(len(images), -1) / 255.0
    return (x - np.float32(MNIST_MEAN)) / np.float32(MNIST_STD)


def permutations(n_tasks: int, dim: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Pixel permutations of permuted MNIST: task 0 is the identity, the others are random."""
    return [np.arange(dim)] + [rng.permutation(dim) for _ in range(n_tasks - 1)]


@dataclass
class Task:
    """One task of a continual-learning sequence: inputs ``[N, D]`` float32, labels int64."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def permuted_tasks(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
                   y_test: np.ndarray, perms: Sequence[np.ndarray]) -> list[Task]:
    """Apply each pixel permutation to the (flattened) train and test sets; labels are shared."""
    ytr, yte = y_train.astype(np.int64), y_test.astype(np.int64)
    return [Task(np.ascontiguousarray(x_train[:, p]), ytr, np.ascontiguousarray(x_test[:, p]), yte)
            for p in perms]


def task_prototype(x: np.ndarray) -> np.ndarray:
    """Context of a task: the element-wise mean of its training inputs (Iyer et al. 2022, 2.3)."""
    return np.asarray(x, dtype=np.float64).mean(axis=0).astype(np.float32)


def nearest_prototype(x: np.ndarray, prototypes: np.ndarray) -> np.ndarray:
    """Index of the closest prototype (Euclidean) for each row of ``x``: the inferred task."""
    x = np.asarray(x, dtype=np.float32)
    p = np.asarray(prototypes, dtype=np.float32)
    d2 = (p * p).sum(1)[None, :] - 2.0 * (x @ p.T)  # |x|^2 is common to all prototypes
    return np.argmin(d2, axis=1)


# ----------------------------------------------------------------------------- modules
def _sparse_mask(torch: Any, n_out: int, n_in: int, sparsity: float, gen: Any) -> Any:
    """Fixed mask with exactly round((1 - sparsity) n_in) non-zero inputs per output unit."""
    keep = max(1, int(round((1.0 - sparsity) * n_in)))
    order = torch.rand(n_out, n_in, generator=gen).argsort(dim=1)[:, :keep]
    return torch.zeros(n_out, n_in).scatter_(1, order, 1.0)


def _build() -> dict[str, Any]:
    if _CACHE:
        return _CACHE
    torch = require_torch()
    nn = torch.nn

    class SparseLinear(nn.Module):
        """Linear layer with a fixed random fraction ``sparsity`` of weights held at zero.

        Init (Iyer et al.'s code, "modified Kaiming"): U(-h, h), h = 1 / sqrt(input_density *
        weight_density * fan_in); bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
        """

        def __init__(self, n_in: int, n_out: int, sparsity: float = 0.0,
                     input_density: float = 1.0, generator: Any = None):
            super().__init__()
            self.n_in, self.n_out, self.sparsity = n_in, n_out, float(sparsity)
            h = 1.0 / math.sqrt(input_density * (1.0 - sparsity) * n_in)
            u = torch.rand(n_out, n_in, generator=generator)
            self.weight = nn.Parameter((2.0 * u - 1.0) * h)
            hb = 1.0 / math.sqrt(n_in)
            self.bias = nn.Parameter((2.0 * torch.rand(n_out, generator=generator) - 1.0) * hb)
            if sparsity > 0:
                self.register_buffer("mask", _sparse_mask(torch, n_out, n_in, sparsity, generator))
                with torch.no_grad():
                    self.weight.mul_(self.mask)
            else:
                self.mask = None

        def forward(self, x: Any) -> Any:
            w = self.weight if self.mask is None else self.weight * self.mask
            return nn.functional.linear(x, w, self.bias)

    class DendriticLayer(nn.Module):
        """Feed-forward layer whose units are gated by dendritic segments (Iyer et al. 2022).

        ``segments``: ``[n_out, n_segments, dim_context]`` weights ``u_j``; segment init
        U(-h, h), h = 1 / sqrt(context_density * dim_context) (their code, ``context_percent_on``).
        ``forward(x [B, n_in], context [B or 1, dim_context])`` -> gated drive ``[B, n_out]``; a
        single context row is broadcast over the batch (segment activations computed once).
        """

        def __init__(self, n_in: int, n_out: int, n_segments: int, dim_context: int,
                     ff_sparsity: float = 0.5, input_density: float = 1.0,
                     context_density: float = 0.1, selection: str = "absmax",
                     generator: Any = None):
            super().__init__()
            if selection not in _SELECTIONS:
                raise BiolearnError(f"unknown segment selection '{selection}'", "DendriticLayer",
                                    f"use one of {list(_SELECTIONS)}")
            self.ff = SparseLinear(n_in, n_out, ff_sparsity, input_density, generator)
            self.n_segments, self.dim_context, self.selection = n_segments, dim_context, selection
            h = 1.0 / math.sqrt(context_density * dim_context)
            u = torch.rand(n_out, n_segments, dim_context, generator=generator)
            self.segments = nn.Parameter((2.0 * u - 1.0) * h)

        def segment_activations(self, context: Any) -> Any:
            """``d [B, n_out, S]`` with ``d_j = u_j . c``."""
            n, s, c = self.segments.shape
            return (context @ self.segments.view(n * s, c).T).view(-1, n, s)

        def forward(self, x: Any, context: Any) -> Any:
            gated, _ = dendritic_gate(self.ff(x), self.segment_activations(context),
                                      self.selection)
            return gated

    class KWinners(nn.Module):
        """k-WTA over the last dimension with optional duty-cycle boosting.

        ``k = round(fraction * n)``. With ``boost_strength > 0`` the duty cycle ``a_duty`` (running
        mean of each unit's activity over ``duty_cycle_period`` samples) is updated in training and
        winners are picked on ``x * exp(beta (fraction - a_duty))`` (Ahmad & Scheinkman 2019).
        """

        def __init__(self, n: int, fraction: float = 0.05, boost_strength: float = 0.0,
                     duty_cycle_period: int = 1000):
            super().__init__()
            self.n, self.fraction = n, float(fraction)
            self.k = int(round(fraction * n))
            self.boost_strength, self.period = float(boost_strength), int(duty_cycle_period)
            self.register_buffer("duty_cycle", torch.zeros(n))
            self.learning_iterations = 0

        def forward(self, x: Any) -> Any:
            boost = None
            if self.boost_strength > 0:
                boost = boost_factors(self.duty_cycle, self.fraction, self.boost_strength)
            mask = kwta_mask(x, self.k, boost)
            if self.training and self.boost_strength > 0:
                b = x.shape[0]
                self.learning_iterations += b
                p = min(self.period, self.learning_iterations)
                self.duty_cycle.mul_(p - b).add_(mask.sum(0)).div_(p)
            return x * mask

    class ActiveDendritesNet(nn.Module):
        """Input -> [DendriticLayer -> KWinners] x len(hidden) -> shared linear head."""

        uses_context = True

        def __init__(self, n_in: int, hidden: Sequence[int], n_out: int, n_segments: int,
                     dim_context: int, kw_fraction: float = 0.05, ff_sparsity: float = 0.5,
                     context_density: float = 0.1, selection: str = "absmax",
                     boost_strength: float = 0.0, seed: int = 0):
            super().__init__()
            gen = torch.Generator().manual_seed(int(seed))
            self.layers, self.kw = nn.ModuleList(), nn.ModuleList()
            n, dens = n_in, 1.0
            for h in hidden:
                self.layers.append(DendriticLayer(n, h, n_segments, dim_context, ff_sparsity,
                                                  dens, context_density, selection, gen))
                self.kw.append(KWinners(h, kw_fraction, boost_strength))
                n, dens = h, kw_fraction
            self.head = SparseLinear(n, n_out, ff_sparsity, dens, gen)

        def forward(self, x: Any, context: Any) -> Any:
            for layer, kw in zip(self.layers, self.kw, strict=True):
                x = kw(layer(x, context))
            return self.head(x)

    class MLP(nn.Module):
        """Dense ReLU baseline with the same layer sizes (PyTorch default init), no context."""

        uses_context = False

        def __init__(self, n_in: int, hidden: Sequence[int], n_out: int, seed: int = 0):
            super().__init__()
            torch_state = torch.random.get_rng_state()
            torch.manual_seed(int(seed))
            sizes = [n_in, *hidden]
            mods: list[Any] = []
            for a, b in zip(sizes[:-1], sizes[1:], strict=True):
                mods += [nn.Linear(a, b), nn.ReLU()]
            mods.append(nn.Linear(sizes[-1], n_out))
            self.net = nn.Sequential(*mods)
            torch.random.set_rng_state(torch_state)

        def forward(self, x: Any, context: Any = None) -> Any:
            return self.net(x)

    _CACHE.update(SparseLinear=SparseLinear, DendriticLayer=DendriticLayer, KWinners=KWinners,
                  ActiveDendritesNet=ActiveDendritesNet, MLP=MLP)
    return _CACHE


def __getattr__(name: str) -> Any:
    if name in ("SparseLinear", "DendriticLayer", "KWinners", "ActiveDendritesNet", "MLP"):
        return _build()[name]
    raise AttributeError(name)


# ----------------------------------------------------------------------------- protocol
@dataclass
class ContinualResult:
    """Outcome of :func:`train_continual`.

    ``accuracy[i, j]``: test accuracy on task j after training tasks 0..i (NaN for j > i).
    ``task_inference[i]``: fraction of test inputs of tasks 0..i assigned their own prototype.
    """

    accuracy: np.ndarray
    task_inference: np.ndarray
    train_time_s: float
    eval_time_s: float
    losses: list[float] = field(default_factory=list)

    @property
    def final_mean(self) -> float:
        """Mean accuracy over all tasks after the last one is learned."""
        return float(np.mean(self.accuracy[-1]))

    @property
    def seen_mean(self) -> np.ndarray:
        """Mean accuracy over the tasks seen so far, after each task."""
        return np.array([np.mean(self.accuracy[i, :i + 1]) for i in range(len(self.accuracy))])

    @property
    def forgetting(self) -> float:
        """Mean drop from just-learned to final accuracy over tasks 0..T-2 (0 for one task)."""
        t = len(self.accuracy)
        if t < 2:
            return 0.0
        return float(np.mean([self.accuracy[j, j] - self.accuracy[-1, j] for j in range(t - 1)]))


def _evaluate(torch: Any, model: Any, task: Task, contexts: np.ndarray, ids: np.ndarray,
              batch: int) -> float:
    """Accuracy on ``task``'s test set, input ``n`` using context row ``ids[n]``.

    Inputs are grouped by context so each group's segment activations are computed once.
    """
    x, correct = task.x_test, 0
    ctx_t = torch.from_numpy(contexts) if model.uses_context else None
    with torch.no_grad():
        for t in np.unique(ids):
            sel = np.nonzero(ids == t)[0]
            c = ctx_t[t:t + 1] if ctx_t is not None else None
            for s in range(0, len(sel), batch):
                b = sel[s:s + batch]
                out = model(torch.from_numpy(x[b]), c)
                correct += int((out.argmax(1).numpy() == task.y_test[b]).sum())
    return correct / len(x)


def _adam(torch: Any, model: Any, lr: float) -> Any:
    """Adam; the fused CPU kernel when available (the segment tensors make the optimiser step
    memory-bound: one pass instead of about ten)."""
    try:
        return torch.optim.Adam(model.parameters(), lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):  # pragma: no cover - older torch
        return torch.optim.Adam(model.parameters(), lr=lr)


def train_continual(model: Any, tasks: Sequence[Task], *, epochs: int = 1, lr: float = 5e-4,
                    batch_size: int = 256, seed: int = 0, test_context: str = "infer",
                    eval_batch: int = 1000,
                    progress: Callable[[int, str], Any] | None = None,
                    on_task: Callable[[int, np.ndarray, float], None] | None = None
                    ) -> ContinualResult:
    """Train ``model`` on ``tasks`` in sequence (no replay) and fill the accuracy matrix.

    Each task: its prototype is appended to the context table, a fresh Adam optimiser (Iyer et
    al.: reset at each task) runs ``epochs`` shuffled passes with cross-entropy on the shared head,
    the current prototype as context; then every task seen so far is tested. ``test_context``:
    ``"infer"`` (nearest stored prototype, as in the paper) or ``"oracle"`` (true task's prototype).
    ``progress(total, desc)`` may return a tqdm-like bar (``update``, ``close``).
    ``on_task(i, accuracy, seconds)`` is called after task ``i`` is tested (accuracy matrix so
    far, seconds since the start), e.g. to save partial results of a long run.
    """
    torch = require_torch()
    if test_context not in ("infer", "oracle"):
        raise BiolearnError(f"unknown test_context '{test_context}'", "train_continual",
                            "use 'infer' or 'oracle'")
    n = len(tasks)
    acc = np.full((n, n), np.nan)
    inf = np.full(n, np.nan)
    gen = torch.Generator().manual_seed(int(seed))
    contexts = np.zeros((0, tasks[0].x_train.shape[1]), dtype=np.float32)
    losses: list[float] = []
    t_train = t_eval = 0.0
    t_start = time.perf_counter()
    steps = sum(epochs * math.ceil(len(t.x_train) / batch_size) for t in tasks)
    bar = progress(steps, type(model).__name__) if progress is not None else None
    for i, task in enumerate(tasks):
        t0 = time.perf_counter()
        contexts = np.vstack([contexts, task_prototype(task.x_train)[None]])
        ctx = torch.from_numpy(contexts[i:i + 1]) if model.uses_context else None
        opt = _adam(torch, model, lr)
        xtr, ytr = torch.from_numpy(task.x_train), torch.from_numpy(task.y_train)
        model.train()
        tot, cnt = 0.0, 0
        for _ in range(epochs):
            order = torch.randperm(len(xtr), generator=gen)
            for s in range(0, len(order), batch_size):
                b = order[s:s + batch_size]
                loss = torch.nn.functional.cross_entropy(model(xtr[b], ctx), ytr[b])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                tot += float(loss.detach()) * len(b)
                cnt += len(b)
                if bar is not None:
                    bar.update(1)
        losses.append(tot / max(cnt, 1))
        t1 = time.perf_counter()
        t_train += t1 - t0
        model.eval()
        hits = total = 0
        for j in range(i + 1):
            x = tasks[j].x_test
            if not model.uses_context or test_context == "oracle":
                ids = np.full(len(x), j if model.uses_context else 0, dtype=np.int64)
            else:
                ids = nearest_prototype(x, contexts)
            acc[i, j] = _evaluate(torch, model, tasks[j], contexts, ids, eval_batch)
            hits += int((ids == j).sum())
            total += len(x)
        if model.uses_context:
            inf[i] = hits / total
        t_eval += time.perf_counter() - t1
        if on_task is not None:
            on_task(i, acc.copy(), time.perf_counter() - t_start)
    if bar is not None:
        bar.close()
    return ContinualResult(acc, inf, t_train, t_eval, losses)
