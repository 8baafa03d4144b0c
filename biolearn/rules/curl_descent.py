"""Curl descent: gradient descent with sign-flipped (rule-flipped) plasticity for some neurons.

Ninou, Kadmon & Cayco-Gajic (NeurIPS 2025), "Curl descent: non-gradient learning dynamics with
sign-diverse plasticity". A two-layer student ``h = φ(W₁ x)``, ``ŷ = φ_out(W₂ h)`` learns a
teacher of the same form from ``P`` fixed samples with loss ``L = (1/2P) Σ_μ ‖ŷ_μ − y_μ‖²``.
Backpropagated errors ``δ₂ = (ŷ − y) ⊙ φ_out'(W₂h)``, ``δ₁ = (W₂ᵀ δ₂) ⊙ φ'(W₁x)``; the update is

    ΔW_l = −η D_l δ_l preᵀ   (averaged over the P samples)

with ``D_l`` diagonal, ``+1`` for ordinary neurons and ``−1`` for the rule-flipped ones (whose
incoming synapses follow the anti-gradient). ``D_l = I`` is full-batch gradient descent; any
``−1`` entry adds a curl (non-gradient) component to the weight dynamics. Small flipped fractions
leave the solution manifold stable; beyond a critical fraction it loses stability.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from biolearn.errors import BiolearnError

ACTIVATIONS = {"linear": 0, "tanh": 1, "relu": 2}


@numba.njit(cache=True)
def _phi(a: np.ndarray, kind: int) -> tuple[np.ndarray, np.ndarray]:
    """Activation and its derivative, elementwise."""
    if kind == 0:
        return a.copy(), np.ones_like(a)
    if kind == 1:
        h = np.tanh(a)
        return h, 1.0 - h * h
    h = np.maximum(a, 0.0)
    return h, (a > 0.0).astype(np.float64)


@numba.njit(cache=True, fastmath=True)
def _matmul_nt(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b.T`` with plain loops (rows of both contiguous; no BLAS threads)."""
    n, k = a.shape
    m = b.shape[0]
    out = np.empty((n, m))
    for i in range(n):
        for j in range(m):
            acc = 0.0
            for t in range(k):
                acc += a[i, t] * b[j, t]
            out[i, j] = acc
    return out


@numba.njit(cache=True, fastmath=True)
def _matmul_tn(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a.T @ b`` with plain loops."""
    k, n = a.shape
    m = b.shape[1]
    out = np.zeros((n, m))
    for t in range(k):
        for i in range(n):
            c = a[t, i]
            if c != 0.0:
                for j in range(m):
                    out[i, j] += c * b[t, j]
    return out


@numba.njit(cache=True, fastmath=True)
def _matmul_nn(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` with plain loops."""
    n, k = a.shape
    m = b.shape[1]
    out = np.zeros((n, m))
    for i in range(n):
        for t in range(k):
            c = a[i, t]
            for j in range(m):
                out[i, j] += c * b[t, j]
    return out


@numba.njit(cache=True)
def _forward_backward(x: np.ndarray, y: np.ndarray, w1: np.ndarray, w2: np.ndarray, act: int,
                      act_out: int) -> tuple[float, np.ndarray, np.ndarray]:
    """Loss ``(1/2P)‖ŷ − y‖²`` and its exact gradients ``(∂L/∂W₁, ∂L/∂W₂)``.

    Small dense products are written as loops: BLAS threads gain nothing at these sizes and
    oversubscribe shared machines.
    """
    p = x.shape[0]
    a1 = _matmul_nt(x, w1)              # [P, H]
    h, dh = _phi(a1, act)
    a2 = _matmul_nt(h, w2)              # [P, O]
    out, dout = _phi(a2, act_out)
    err = out - y
    loss = 0.5 * np.sum(err * err) / p
    d2 = err * dout / p                 # δ₂, [P, O]
    g2 = _matmul_tn(d2, h)              # [O, H]
    d1 = _matmul_nn(d2, w2) * dh        # δ₁, [P, H]
    g1 = _matmul_tn(d1, x)              # [H, N]
    return loss, g1, g2


@numba.njit(cache=True)
def _curl_kernel(x: np.ndarray, y: np.ndarray, w1: np.ndarray, w2: np.ndarray, d1: np.ndarray,
                 d2: np.ndarray, lr: float, n_steps: int, act: int, act_out: int,
                 blowup: float, losses: np.ndarray) -> int:
    """In place: ``n_steps`` full-batch curl-descent steps; ``losses[s]`` = loss before step s.

    Stops early (returning the number of steps done) when the loss exceeds ``blowup`` or is not
    finite; the remaining entries of ``losses`` are set to ``inf``.
    """
    for s in range(n_steps):
        loss, g1, g2 = _forward_backward(x, y, w1, w2, act, act_out)
        losses[s] = loss
        if not np.isfinite(loss) or loss > blowup:
            for r in range(s, n_steps):
                losses[r] = np.inf
            return s
        for i in range(w1.shape[0]):
            c = lr * d1[i]
            for j in range(w1.shape[1]):
                w1[i, j] -= c * g1[i, j]
        for i in range(w2.shape[0]):
            c = lr * d2[i]
            for j in range(w2.shape[1]):
                w2[i, j] -= c * g2[i, j]
    return n_steps


def _act(name: str) -> int:
    if name not in ACTIVATIONS:
        raise BiolearnError(f"unknown activation '{name}'", "in curl descent",
                            "choose one of: " + ", ".join(ACTIVATIONS))
    return ACTIVATIONS[name]


@dataclass
class Task:
    """A fixed student–teacher regression task."""

    x: np.ndarray        # inputs [P, N], i.i.d. N(0, 1)
    y: np.ndarray        # teacher outputs [P, O]
    teacher_w1: np.ndarray
    teacher_w2: np.ndarray
    activation: str
    output_activation: str


def make_task(n_in: int, n_hidden: int, n_out: int, n_train: int, rng: np.random.Generator,
              activation: str = "linear", output_activation: str | None = None,
              teacher_hidden: int | None = None) -> Task:
    """Teacher ``y = φ_out(W₂* φ(W₁* x))`` with ``W₁* ~ N(0, 1/N)``, ``W₂* ~ N(0, 1/H*)``."""
    out_act = activation if output_activation is None else output_activation
    _act(activation)
    _act(out_act)
    th = n_hidden if teacher_hidden is None else teacher_hidden
    tw1 = rng.standard_normal((th, n_in)) / np.sqrt(n_in)
    tw2 = rng.standard_normal((n_out, th)) / np.sqrt(th)
    x = rng.standard_normal((n_train, n_in))
    y = student_output(x, tw1, tw2, activation, out_act)
    return Task(x, y, tw1, tw2, activation, out_act)


def student_output(x: np.ndarray, w1: np.ndarray, w2: np.ndarray, activation: str,
                   output_activation: str) -> np.ndarray:
    """``φ_out(W₂ φ(W₁ x))`` for the rows of ``x``."""
    h, _ = _phi(np.ascontiguousarray(x @ w1.T), _act(activation))
    out, _ = _phi(np.ascontiguousarray(h @ w2.T), _act(output_activation))
    return out


def loss_and_grads(task: Task, w1: np.ndarray, w2: np.ndarray
                   ) -> tuple[float, np.ndarray, np.ndarray]:
    """Loss and exact backprop gradients at ``(w1, w2)`` (no update)."""
    return _forward_backward(task.x, task.y, np.ascontiguousarray(w1, dtype=np.float64),
                             np.ascontiguousarray(w2, dtype=np.float64),
                             _act(task.activation), _act(task.output_activation))


def flip_signs(n: int, n_flipped: int, rng: np.random.Generator) -> np.ndarray:
    """Diagonal of ``D``: ``+1`` everywhere except ``n_flipped`` random neurons set to ``−1``."""
    if not 0 <= n_flipped <= n:
        raise BiolearnError(f"cannot flip {n_flipped} of {n} neurons", "in flip_signs()",
                            "flip between 0 and the layer size")
    d = np.ones(n)
    d[rng.choice(n, size=n_flipped, replace=False)] = -1.0
    return d


@dataclass
class CurlRun:
    """Result of one curl-descent run."""

    losses: np.ndarray       # loss before each step (inf after a blow-up)
    w1: np.ndarray
    w2: np.ndarray
    steps_done: int
    diverged: bool
    final_loss: float
    time_to_converge: int    # first step with loss < tol (−1 if never)


def curl_train(task: Task, w1: np.ndarray, w2: np.ndarray, d1: np.ndarray, d2: np.ndarray,
               lr: float, n_steps: int, tol: float, blowup: float = 1e6) -> CurlRun:
    """Run ``n_steps`` of ``ΔW_l = −η D_l ∂L/∂W_l`` from copies of ``w1, w2``.

    ``tol`` is the loss that counts as converged; ``blowup`` the loss that counts as diverged.
    """
    w1 = np.array(w1, dtype=np.float64)
    w2 = np.array(w2, dtype=np.float64)
    d1 = np.asarray(d1, dtype=np.float64)
    d2 = np.asarray(d2, dtype=np.float64)
    if d1.shape != (w1.shape[0],) or d2.shape != (w2.shape[0],):
        raise BiolearnError("sign vectors must match the layer sizes", "in curl_train()",
                            f"pass d1 of length {w1.shape[0]} and d2 of length {w2.shape[0]}")
    losses = np.zeros(n_steps + 1)
    done = _curl_kernel(task.x, task.y, w1, w2, d1, d2, float(lr), n_steps,
                        _act(task.activation), _act(task.output_activation), float(blowup),
                        losses[:n_steps])
    diverged = done < n_steps
    if diverged:
        losses[n_steps] = np.inf
    else:
        losses[n_steps] = loss_and_grads(task, w1, w2)[0]
    below = np.flatnonzero(losses < tol)
    return CurlRun(losses, w1, w2, done, bool(diverged), float(losses[-1]),
                   int(below[0]) if below.size else -1)


def init_student(task: Task, n_hidden: int, rng: np.random.Generator, scale: float = 0.1
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Small random student: ``W₁ ~ N(0, scale²/N)``, ``W₂ ~ N(0, scale²/H)``."""
    n_in = task.x.shape[1]
    n_out = task.y.shape[1]
    w1 = scale * rng.standard_normal((n_hidden, n_in)) / np.sqrt(n_in)
    w2 = scale * rng.standard_normal((n_out, n_hidden)) / np.sqrt(n_hidden)
    return w1, w2
