"""Example recipe: f-I curve of a leaky integrate-and-fire neuron against its closed form.

A minimal, complete recipe (params dataclass + ``run(cfg, ctx)``) that needs no dataset, and the
pattern for simulating a model of your own: write the neuron as a :class:`NeuronModel` in Brian2's
equation syntax, build a :class:`Network` of it, run it on the engine and read the recorded
spikes. Each neuron gets a constant input ``R*I`` (mV, a per-neuron variable ``RI``); the
membrane follows ``tau_m dV/dt = -(V - V_rest) + R*I`` with reset to ``V_reset`` and an absolute
refractory period. For ``R*I > theta`` (threshold above rest) the interspike interval is
``T = t_ref + tau_m * ln((R*I - (V_reset - V_rest)) / (R*I - theta))`` (Gerstner et al., Neuronal
Dynamics, 2014, eq. 1.13 with reset to V_reset), and the rate is ``1000 / T`` Hz. The engine
integrates the linear equation exactly (``method="exact"``), so the only error is the spike-time
quantisation to ``dt`` (relative rate error below ``dt / T``); the rate is measured from the mean
interspike interval of the recorded spikes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from biolearn.analysis.isi import isis
from biolearn.config import Invalid, param, require_below
from biolearn.engine import Network, NeuronModel, Neurons, SpikeMonitor
from biolearn.registry import register

#: Leaky integrate-and-fire neuron with a constant drive ``RI`` per neuron; potentials relative to
#: rest. ``(unless refractory)`` holds v during the refractory period.
DRIVEN_LIF = NeuronModel(
    name="example_driven_lif",
    equations="""
        dv/dt = (v_rest - v + RI)/tau_m : volt (unless refractory)
        RI : volt  # constant drive R*I
    """,
    threshold="v > v_thresh",
    reset="v = v_reset",
    refractory="t_ref",
    method="exact",
    parameters={"tau_m": "20 ms", "v_rest": "0 mV", "v_thresh": "20 mV", "v_reset": "0 mV",
                "t_ref": "2 ms"},
    init={"v": "v_rest"},
)


@dataclass
class LIFParams:
    tau_m: float = param(20.0, "membrane time constant (ms; Gerstner et al. 2014, ch. 1)",
                         min=0.1)
    v_thresh: float = param(20.0, "threshold θ above rest (mV)", min=0.1)
    v_reset: float = param(0.0, "reset potential relative to rest (mV)")
    t_ref: float = param(2.0, "absolute refractory period (ms)", min=0.0)
    inputs_mv: list[float] = param(factory=lambda: [25.0, 30.0, 40.0, 60.0, 100.0],
                                   help="constant drives R*I (mV), one neuron each", min=0.0)
    dt_ms: float = param(0.01, "time step (ms)", min=1e-4, max=1.0)
    t_sim_ms: float = param(1000.0, "simulated time (ms)", min=1.0)

    def validate(self) -> None:
        require_below(self, "v_reset", "v_thresh", why="after a spike v restarts below "
                      "threshold", fix="lower v_reset or raise v_thresh")
        if not self.inputs_mv:
            raise Invalid("{0} is empty: give at least one drive", "inputs_mv",
                          fix="e.g. inputs_mv: [25, 30, 40]")


def simulated_isi_ms(drive_mv: np.ndarray, p: LIFParams, seed: int = 0) -> np.ndarray:
    """Mean interspike interval (ms; inf with fewer than 2 spikes) of one LIF neuron per drive,
    simulated on the engine."""
    drive = np.asarray(drive_mv, float)
    net = Network(dt=p.dt_ms)
    net.add(Neurons("lif", drive.size, DRIVEN_LIF, init={"RI": drive},
                    params={"tau_m": p.tau_m, "v_thresh": p.v_thresh, "v_reset": p.v_reset,
                            "t_ref": p.t_ref}))
    net.monitor(SpikeMonitor(["lif"]))
    times, ids = net.compile(seed).run(p.t_sim_ms)["spikes"]["lif"]
    isi, owner = isis(times, ids, drive.size)
    n = np.bincount(owner, minlength=drive.size)
    total = np.bincount(owner, weights=isi, minlength=drive.size)
    return np.where(n > 0, total / np.maximum(n, 1), np.inf)


def analytic_rate_hz(drive_mv: np.ndarray, p: LIFParams) -> np.ndarray:
    """Closed-form LIF rate (Hz) for constant drive; zero at or below threshold."""
    d = np.asarray(drive_mv, float)
    out = np.zeros_like(d)
    ok = d > p.v_thresh
    isi = p.t_ref + p.tau_m * np.log((d[ok] - p.v_reset) / (d[ok] - p.v_thresh))
    out[ok] = 1000.0 / isi
    return out


@register("example_lif", LIFParams)
def run(cfg, ctx) -> dict:
    """Example: LIF f-I curve, simulated vs closed form (no dataset needed)."""
    p: LIFParams = cfg.params
    drive = np.asarray(p.inputs_mv, float)
    sim = 1000.0 / simulated_isi_ms(drive, p, int(ctx.rng.integers(2**31)))
    ref = analytic_rate_hz(drive, p)
    rel = np.abs(sim - ref) / np.maximum(ref, 1e-12)
    firing = ref > 0
    return {
        "rate_sim_hz": sim.tolist(),
        "rate_analytic_hz": ref.tolist(),
        "max_rel_error": float(rel[firing].max()) if firing.any() else 0.0,
    }
