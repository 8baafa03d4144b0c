"""Pre-Synaptic Pool Modification (PSPM; Bagley, Bordelon, Moseley & Wessel 2020, PLoS ONE
15(2): e0229083, arXiv 1810.03199): gradient-free supervised learning of recurrent spiking networks.

Built from the paper's abstract, which states that PSPM uses "stochastic weight updates in order
to produce spikes within a short window of the desired times and eliminate spikes outside of this
window", acting on each neuron's "pre-synaptic pool", together with a homeostatic update, and that
it needs no gradients nor a model of the post-synaptic potential. The rule implemented here is the
most literal reading of that sentence; the pool window, the selection probability, the step
sizes and the form of the homeostatic update are ours (docs/pspm.md lists what is the paper's):

For each model neuron ``i`` with target spike times ``T_i`` and model spike times ``M_i``:

* **missed target spike** — ``t ∈ T_i`` with no ``m ∈ M_i`` in ``[t − w, t + w]``: the pool
  ``P(t) = {j ≠ i : j spiked in [t − p, t)}``; each ``j ∈ P(t)`` is chosen independently with
  probability ``ρ`` and ``W_ji += η₊``.
* **extra model spike** — ``m ∈ M_i`` with no ``t ∈ T_i`` in ``[m − w, m + w]``: each
  ``j ∈ P(m)`` is chosen with probability ``ρ`` and ``W_ji −= η₋``.
* **homeostasis** (synaptic scaling, Turrigiano et al. 1998): with the relative rate error
  ``e_i = clip((r*_i − r_i) / max(r*_i, r_floor), −1, 1)``, every incoming weight is scaled
  multiplicatively, excitatory up and inhibitory down when the neuron fires too little:
  ``W_ji ← W_ji · (1 + η_h · e_i · sign(W_ji))`` (inhibitory synapses scale inversely,
  Kilman et al. 2002). It changes rates without changing which inputs a neuron listens to.
* weights are clipped to ``[w_min, w_max]``; ``mode`` selects ``local``, ``homeostatic``,
  ``both`` or ``none`` (no learning; "off" would read as a boolean in YAML).

"Spiked" for the pool refers to the activity that actually reaches neuron ``i``: the model's own
spikes when the network runs freely, the target spikes under teacher forcing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from biolearn.analysis.spiketrains import to_csr
from biolearn.config import param

MODES = ("local", "homeostatic", "both", "none")


@dataclass(frozen=True)
class PSPMRule:
    """PSPM hyper-parameters (times in ms, weights in mV of post-synaptic current jump); also the
    ``params.rule`` section of the ``pspm`` recipe's config."""

    window_ms: float = param(2.0, "± window w around a target spike that counts as a hit "
                             "(Bagley et al. 2020: 'a short window of the desired times')", min=0.0)
    pool_ms: float = param(20.0, "pre-synaptic pool: neurons that spiked in [t − pool, t)",
                           min=0.0)
    p_select: float = param(0.5, "probability that a pool member is updated (stochastic part)",
                            min=0.0, max=1.0)
    eta_plus: float = param(0.3, "potentiation per missed target spike (mV)", min=0.0)
    eta_minus: float = param(0.3, "depression per extra model spike (mV)", min=0.0)
    eta_homeo: float = param(0.05, "synaptic-scaling rate η_h per update", min=0.0)
    rate_floor_hz: float = param(1.0, "denominator floor of the relative rate error (Hz)",
                                 min=1e-6)
    w_min: float = param(-20.0, "lower weight bound (mV)")
    w_max: float = param(20.0, "upper weight bound (mV)")
    mode: str = param("both", "which updates run", choices=list(MODES))
    exclude_self: bool = param(True, "never update autapses W_ii")

    @property
    def local(self) -> bool:
        return self.mode in ("local", "both")

    @property
    def homeostatic(self) -> bool:
        return self.mode in ("homeostatic", "both")


@njit(cache=True)
def _first_at_or_after(x: np.ndarray, lo: int, hi: int, v: float) -> int:
    """Smallest k in [lo, hi) with x[k] >= v (hi if none); x ascending."""
    while lo < hi:
        mid = (lo + hi) >> 1
        if x[mid] < v:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True)
def _pool(dw, col, t, pool, pp, pt, p_sel, eta, exclude):
    """Add ``eta`` to dw[j, col] for each pre neuron j that spiked in [t − pool, t), w.p. p_sel."""
    n_pre = pp.shape[0] - 1
    for j in range(n_pre):
        if j == exclude:
            continue
        a, b = pp[j], pp[j + 1]
        k = _first_at_or_after(pt, a, b, t - pool)
        if k < b and pt[k] < t and np.random.random() < p_sel:
            dw[j, col] += eta


@njit(cache=True)
def pspm_local_kernel(tp, tt, mp, mt, pp, pt, window, pool, p_sel, eta_plus, eta_minus,
                      t_lo, t_hi, exclude_self, seed):
    """Local PSPM updates for events with times in [t_lo, t_hi).

    Target (tp, tt), model (mp, mt) and pool-source (pp, pt) spikes are CSR (per neuron, sorted).
    Returns ``(dW [n_pre, n_post], misses [n_post], extras [n_post])``."""
    np.random.seed(seed)
    n_post = tp.shape[0] - 1
    n_pre = pp.shape[0] - 1
    dw = np.zeros((n_pre, n_post))
    miss = np.zeros(n_post, np.int64)
    extra = np.zeros(n_post, np.int64)
    for i in range(n_post):
        ex = i if exclude_self else -1
        ta, tb = tp[i], tp[i + 1]
        ma, mb = mp[i], mp[i + 1]
        for k in range(_first_at_or_after(tt, ta, tb, t_lo), tb):
            t = tt[k]
            if t >= t_hi:
                break
            q = _first_at_or_after(mt, ma, mb, t - window)
            if q < mb and mt[q] <= t + window:
                continue
            miss[i] += 1
            _pool(dw, i, t, pool, pp, pt, p_sel, eta_plus, ex)
        for k in range(_first_at_or_after(mt, ma, mb, t_lo), mb):
            m = mt[k]
            if m >= t_hi:
                break
            q = _first_at_or_after(tt, ta, tb, m - window)
            if q < tb and tt[q] <= m + window:
                continue
            extra[i] += 1
            _pool(dw, i, m, pool, pp, pt, p_sel, -eta_minus, ex)
    return dw, miss, extra


def local_update(target: tuple[np.ndarray, np.ndarray], model: tuple[np.ndarray, np.ndarray],
                 pre: tuple[np.ndarray, np.ndarray], n_pre: int, n_post: int, rule: PSPMRule,
                 seed: int, t_lo: float = -np.inf, t_hi: float = np.inf
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PSPM local weight change ``dW`` [n_pre, n_post] for misses/extras timed in [t_lo, t_hi).

    ``target``, ``model``: ``(times_ms, ids)`` of the post-synaptic neurons; ``pre``: the spikes
    that form the pools. Returns ``(dW, misses per neuron, extras per neuron)``."""
    tp, tt = to_csr(*target, n_post)
    mp, mt = to_csr(*model, n_post)
    pp, pt = to_csr(*pre, n_pre)
    exclude = bool(rule.exclude_self and n_pre == n_post)
    return pspm_local_kernel(tp, tt, mp, mt, pp, pt, float(rule.window_ms), float(rule.pool_ms),
                             float(rule.p_select), float(rule.eta_plus), float(rule.eta_minus),
                             float(t_lo), float(t_hi), exclude, int(seed))


def homeostatic_scaling(w: np.ndarray, rate: np.ndarray, target_rate: np.ndarray, eta: float,
                        rate_floor: float = 1.0) -> np.ndarray:
    """Synaptic scaling of each column (post neuron) toward its target rate; returns new W.

    ``W_ji ← W_ji (1 + η e_i sign W_ji)``, ``e_i = clip((r*_i − r_i)/max(r*_i, floor), −1, 1)``."""
    e = np.clip((np.asarray(target_rate, float) - np.asarray(rate, float))
                / np.maximum(np.asarray(target_rate, float), rate_floor), -1.0, 1.0)
    return w * (1.0 + eta * e[None, :] * np.sign(w))


def apply(w: np.ndarray, rule: PSPMRule, dw: np.ndarray | None = None,
          rate: np.ndarray | None = None, target_rate: np.ndarray | None = None) -> np.ndarray:
    """One PSPM step on W [n_pre, n_post]: local change (if enabled), then scaling, then clip."""
    out = np.array(w, np.float64, copy=True)
    if rule.local and dw is not None:
        out += dw
    if rule.homeostatic and rate is not None and target_rate is not None:
        out = homeostatic_scaling(out, rate, target_rate, rule.eta_homeo, rule.rate_floor_hz)
    if rule.exclude_self and out.shape[0] == out.shape[1]:
        np.fill_diagonal(out, np.diag(np.asarray(w)))
    return np.clip(out, rule.w_min, rule.w_max)
