"""Földiák (1990) sparse coding network and the bars benchmark.

Földiák P. (1990) "Forming sparse representations by local anti-Hebbian learning",
Biol. Cybern. 64:165–170. ``m`` inputs ``x`` (binary), ``n`` outputs:

- Activity: ``y*`` is the fixed point of ``dy*/dt = f(Q x + W y* − t) − y*`` with
  ``f(u) = 1/(1 + exp(−λu))``, ``λ = 10`` (eq. 1), started from ``y* = 0``; the output is
  binarised, ``y_i = 1`` if ``y*_i > 0.5`` else 0.
- Lateral anti-Hebbian: ``Δw_ij = −α (y_i y_j − p²)``, ``w_ii = 0``, ``w_ij ≤ 0`` (eq. 3).
- Feedforward Hebbian: ``Δq_ij = β y_i (x_j − q_ij)`` (eq. 4).
- Threshold: ``Δt_i = γ (y_i − p)`` (eq. 5).

Constants of the bars experiment: ``α = 0.1, β = 0.02, γ = 0.02, p = 1/8``; 8×8 grid, each of the
16 horizontal/vertical bars present independently with probability 1/8; 16 output units.
Trained, every unit becomes a detector of a single bar and fires with probability ≈ ``p``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numba
import numpy as np

from biolearn.errors import BiolearnError


def bars(n: int, rng: np.random.Generator, size: int = 8, p_bar: float = 1.0 / 8.0
         ) -> tuple[np.ndarray, np.ndarray]:
    """``n`` bar images on a ``size × size`` grid (Földiák 1990, Fig. 3).

    Each of the ``2·size`` bars (rows first, then columns) is on independently with probability
    ``p_bar``; a pixel is 1 if any bar covers it. Returns ``(x [n, size²] float64,
    present [n, 2·size] bool)``.
    """
    if not 0.0 <= p_bar <= 1.0:
        raise BiolearnError(f"bar probability must be in [0, 1], got {p_bar}", "in bars()",
                            "pass p_bar between 0 and 1")
    present = rng.random((n, 2 * size)) < p_bar
    img = present[:, :size, None] | present[:, None, size:]
    return img.reshape(n, size * size).astype(np.float64), present


def single_bars(size: int = 8) -> np.ndarray:
    """The ``2·size`` single-bar images (rows then columns) as ``[2·size, size²]``."""
    present = np.eye(2 * size, dtype=bool)
    img = present[:, :size, None] | present[:, None, size:]
    return img.reshape(2 * size, size * size).astype(np.float64)


@dataclass
class FoldiakNet:
    """State and constants of a Földiák network (Földiák 1990, eqs. 1–5)."""

    q: np.ndarray                     # feedforward weights [n_out, n_in]
    w: np.ndarray                     # lateral weights [n_out, n_out], ≤ 0, zero diagonal
    t: np.ndarray                     # thresholds [n_out]
    alpha: float = 0.1                # lateral anti-Hebbian rate (eq. 3)
    beta: float = 0.02                # feedforward Hebbian rate (eq. 4)
    gamma: float = 0.02               # threshold rate (eq. 5)
    p: float = 1.0 / 8.0              # target firing probability
    lam: float = 10.0                 # sigmoid steepness λ (eq. 1)
    dt: float = 0.1                   # Euler step of the relaxation, in units of its time constant
    max_iter: int = 300               # relaxation steps per pattern at most
    tol: float = 1e-4                 # stop when max |Δy*| < tol·dt
    history: dict = field(default_factory=dict)

    @classmethod
    def create(cls, n_in: int, n_out: int, rng: np.random.Generator, **kw: float) -> FoldiakNet:
        """Random feedforward weights uniform in [0, 1), zero lateral weights and thresholds.

        The paper starts from random feedforward weights; the thresholds then rise under eq. 5
        until each unit fires with probability ≈ ``p``.
        """
        q = rng.random((n_out, n_in))
        w = np.zeros((n_out, n_out))
        t = np.zeros(n_out)
        return cls(q=q, w=w, t=t, **kw)


@numba.njit(cache=True)
def _relax(q: np.ndarray, w: np.ndarray, t: np.ndarray, x: np.ndarray, lam: float, dt: float,
           max_iter: int, tol: float, ystar: np.ndarray, ff: np.ndarray) -> int:
    """Euler-integrate ``dy*/dt = f(Qx + W y* − t) − y*`` from 0 to its fixed point (eq. 1)."""
    n_out, n_in = q.shape
    for i in range(n_out):
        s = -t[i]
        for j in range(n_in):
            s += q[i, j] * x[j]
        ff[i] = s
        ystar[i] = 0.0
    n_iter = 0
    for _ in range(max_iter):
        n_iter += 1
        dmax = 0.0
        for i in range(n_out):
            u = ff[i]
            for j in range(n_out):
                u += w[i, j] * ystar[j]
            d = dt * (1.0 / (1.0 + np.exp(-lam * u)) - ystar[i])
            # synchronous update uses the previous y*; store increments first
            ff[n_out + i] = d
            if abs(d) > dmax:
                dmax = abs(d)
        for i in range(n_out):
            ystar[i] += ff[n_out + i]
        if dmax < tol * dt:
            break
    return n_iter


@numba.njit(cache=True)
def _foldiak_kernel(q: np.ndarray, w: np.ndarray, t: np.ndarray, x: np.ndarray,
                    alpha: float, beta: float, gamma: float, p: float, lam: float, dt: float,
                    max_iter: int, tol: float, learn: bool, y_out: np.ndarray) -> int:
    """Present the rows of ``x``; binarised outputs into ``y_out``; learn (eqs. 3–5) if asked.

    Returns the total number of relaxation steps (for diagnostics).
    """
    n_samples = x.shape[0]
    n_out, n_in = q.shape
    ystar = np.zeros(n_out)
    ff = np.zeros(2 * n_out)
    y = np.zeros(n_out)
    p2 = p * p
    steps = 0
    for s in range(n_samples):
        xs = x[s]
        steps += _relax(q, w, t, xs, lam, dt, max_iter, tol, ystar, ff)
        for i in range(n_out):
            y[i] = 1.0 if ystar[i] > 0.5 else 0.0
            y_out[s, i] = y[i]
        if not learn:
            continue
        for i in range(n_out):
            yi = y[i]
            for j in range(n_out):
                if i == j:
                    continue
                v = w[i, j] - alpha * (yi * y[j] - p2)
                w[i, j] = v if v < 0.0 else 0.0
            if yi > 0.0:
                for j in range(n_in):
                    q[i, j] += beta * yi * (xs[j] - q[i, j])
            t[i] += gamma * (yi - p)
    return steps


def foldiak_present(net: FoldiakNet, x: np.ndarray, learn: bool = True) -> np.ndarray:
    """Present the rows of ``x`` in order; returns the binary outputs ``[T, n_out]``.

    With ``learn=True`` the weights and thresholds of ``net`` are updated in place after every
    pattern (Földiák 1990, eqs. 3–5).
    """
    x = np.ascontiguousarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != net.q.shape[1]:
        raise BiolearnError(f"inputs of shape {x.shape} do not match {net.q.shape[1]} input units",
                            "in foldiak_present()", "pass [T, n_in] patterns")
    y = np.zeros((x.shape[0], net.q.shape[0]))
    _foldiak_kernel(net.q, net.w, net.t, x, net.alpha, net.beta, net.gamma, net.p, net.lam,
                    net.dt, net.max_iter, net.tol, learn, y)
    return y


@dataclass
class BarScore:
    """How well output units code single bars."""

    response: np.ndarray      # [n_out, n_bars] binary response of each unit to each single bar
    unit_bar: np.ndarray      # bar index each unit detects (−1 if not a single-bar detector)
    n_detectors: int          # units responding to exactly one single bar
    n_bars_covered: int       # distinct bars detected by some single-bar detector
    one_to_one: bool          # every bar has exactly one detector and every unit detects one


def score_bars(net: FoldiakNet, size: int = 8) -> BarScore:
    """Probe ``net`` with the single-bar images and match units to bars."""
    resp = foldiak_present(net, single_bars(size), learn=False).T  # [n_out, n_bars]
    counts = resp.sum(axis=1)
    unit_bar = np.where(counts == 1, resp.argmax(axis=1), -1)
    covered = np.unique(unit_bar[unit_bar >= 0])
    per_bar = np.bincount(unit_bar[unit_bar >= 0], minlength=2 * size)
    one_to_one = bool(np.all(per_bar == 1) and np.all(unit_bar >= 0))
    return BarScore(resp, unit_bar, int((counts == 1).sum()), int(covered.size), one_to_one)


def train_bars(n_samples: int, rng: np.random.Generator, n_out: int = 16, size: int = 8,
               p_bar: float = 1.0 / 8.0, **kw: float) -> tuple[FoldiakNet, np.ndarray]:
    """Build a network and train it on ``n_samples`` fresh bar patterns.

    Returns the network and the binary outputs during training ``[n_samples, n_out]``.
    """
    net = FoldiakNet.create(size * size, n_out, rng, **kw)
    x, _ = bars(n_samples, rng, size, p_bar)
    y = foldiak_present(net, x, learn=True)
    return net, y
