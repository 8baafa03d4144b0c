"""Example recipe: f-I curve of a leaky integrate-and-fire neuron against its closed form.

A minimal, complete recipe (params dataclass + ``run(cfg, ctx)``) that needs no dataset. Each
neuron gets a constant input ``R*I`` (mV); the membrane follows
``tau_m dV/dt = -(V - V_rest) + R*I`` with reset to ``V_reset`` and an absolute refractory period.
For ``R*I > theta`` (threshold above rest) the interspike interval is
``T = t_ref + tau_m * ln((R*I - (V_reset - V_rest)) / (R*I - theta))`` (Gerstner et al., Neuronal
Dynamics, 2014, eq. 1.13 with reset to V_reset), and the rate is ``1000 / T`` Hz. The simulation
integrates exactly between steps, so the only error is the spike-time quantisation to ``dt``
(relative rate error below ``dt / T``); the rate is measured from the mean interspike interval.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from biolearn.config import param
from biolearn.registry import register


@dataclass
class LIFParams:
    tau_m_ms: float = param(20.0, "membrane time constant (Gerstner et al. 2014, ch. 1)", min=0.1)
    theta_mv: float = param(20.0, "threshold above rest (mV)", min=0.1)
    v_reset_mv: float = param(0.0, "reset potential relative to rest (mV)")
    t_ref_ms: float = param(2.0, "absolute refractory period (ms)", min=0.0)
    inputs_mv: list[float] = param(factory=lambda: [25.0, 30.0, 40.0, 60.0, 100.0],
                                   help="constant drives R*I (mV), one neuron each", min=0.0)
    dt_ms: float = param(0.01, "time step (ms)", min=1e-4, max=1.0)
    t_sim_ms: float = param(1000.0, "simulated time (ms)", min=1.0)


@numba.njit(cache=True)
def _lif_isi_ms(drive: np.ndarray, tau_m: float, theta: float, v_reset: float,
                t_ref: float, dt: float, n_steps: int) -> np.ndarray:
    """Mean interspike interval (ms; inf if < 2 spikes) of independent LIF neurons under
    constant drive, exact exponential update between steps."""
    decay = np.exp(-dt / tau_m)
    isi = np.full(drive.size, np.inf)
    ref_steps = int(np.round(t_ref / dt))
    for i in range(drive.size):
        v = 0.0
        ref = 0
        count = 0
        first = 0
        last = 0
        for step in range(n_steps):
            if ref > 0:
                ref -= 1
                continue
            v = drive[i] + (v - drive[i]) * decay
            if v >= theta:
                if count == 0:
                    first = step
                last = step
                count += 1
                v = v_reset
                ref = ref_steps
        if count >= 2:
            isi[i] = (last - first) * dt / (count - 1)
    return isi


def analytic_rate_hz(drive_mv: np.ndarray, p: LIFParams) -> np.ndarray:
    """Closed-form LIF rate (Hz) for constant drive; zero at or below threshold."""
    d = np.asarray(drive_mv, float)
    out = np.zeros_like(d)
    ok = d > p.theta_mv
    isi = p.t_ref_ms + p.tau_m_ms * np.log((d[ok] - p.v_reset_mv) / (d[ok] - p.theta_mv))
    out[ok] = 1000.0 / isi
    return out


@register("example_lif", LIFParams)
def run(cfg, ctx) -> dict:
    """Example: LIF f-I curve, simulated vs closed form (no dataset needed)."""
    p: LIFParams = cfg.params
    drive = np.asarray(p.inputs_mv, float)
    n_steps = int(round(p.t_sim_ms / p.dt_ms))
    isi = _lif_isi_ms(drive, p.tau_m_ms, p.theta_mv, p.v_reset_mv, p.t_ref_ms, p.dt_ms, n_steps)
    sim = 1000.0 / isi
    ref = analytic_rate_hz(drive, p)
    rel = np.abs(sim - ref) / np.maximum(ref, 1e-12)
    firing = ref > 0
    return {
        "rate_sim_hz": sim.tolist(),
        "rate_analytic_hz": ref.tolist(),
        "max_rel_error": float(rel[firing].max()) if firing.any() else 0.0,
    }
