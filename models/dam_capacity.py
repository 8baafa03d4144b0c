"""Recipe ``dam_capacity``: storage capacity of dense associative memories vs N.

For F(x) = xⁿ (n = 2 is the Hopfield network) and F = eˣ, the largest number K of random ±1 patterns
such that a stored pattern is recalled without a single wrong bit — from a cue with a fraction
``noise`` of flipped bits, by asynchronous dynamics (Krotov & Hopfield 2016, Eq. 2) — with
probability at least ``success``. Compared with K ≈ N^{n−1}/(2(2n−3)!! ln N) (Krotov & Hopfield
2016) and with the exponential law exp(N·I(1 − 2ρ)/2) for F = eˣ (Demircigil et al. 2017).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from biolearn.config import param
from biolearn.registry import register


@dataclass
class CapacitySeries:
    kind: str = param("poly", "energy: poly (xⁿ), rectpoly or exp", choices=["poly", "rectpoly",
                                                                              "exp"])
    n: int = param(2, "power n of F (ignored for exp)", min=1)
    N: list[int] = param(factory=lambda: [50, 100, 200], help="network sizes", min=4)


def _default_series() -> list[CapacitySeries]:
    return [CapacitySeries("poly", 2, [50, 100, 200, 400, 800]),
            CapacitySeries("poly", 3, [40, 60, 100, 150, 250]),
            CapacitySeries("poly", 4, [20, 30, 40, 60]),
            CapacitySeries("exp", 1, [10, 14, 18, 22, 26])]


@dataclass
class DAMCapacityParams:
    series: list[CapacitySeries] = param(factory=_default_series,
                                         help="(kind, n, N list) curves to measure")
    noise: float = param(0.05, "fraction of flipped bits in each cue", min=0.0, max=0.5)
    success: float = param(0.5, "required probability of error-free recall", min=0.01, max=1.0)
    n_probes: int = param(64, "recalled patterns per K evaluated", min=4)
    rel_tol: float = param(0.05, "relative resolution of the bisection on K", min=0.001)


def fit_exponent(N: np.ndarray, K: np.ndarray) -> float:
    """Least-squares slope of log K vs log N."""
    return float(np.polyfit(np.log(N), np.log(K), 1)[0])


@register("dam_capacity", DAMCapacityParams)
def run(cfg, ctx) -> dict:
    """Capacity of dense associative memories (poly n = 2, 3, 4 and exp) vs N, with theory."""
    import matplotlib.pyplot as plt

    from biolearn.memory.dam import capacity_theory, capacity_theory_exp, measure_capacity

    p: DAMCapacityParams = cfg.params
    results = []
    bar = ctx.progress(sum(len(s.N) for s in p.series), "dam_capacity", unit="N")
    for s in p.series:
        Ks = []
        for N in s.N:
            Ks.append(measure_capacity(int(N), s.kind, s.n, p.noise, p.n_probes, p.success,
                                       ctx.rng, rel_tol=p.rel_tol))
            bar.update(1)
        N_arr = np.array(s.N, dtype=float)
        K_arr = np.array(Ks, dtype=float)
        entry = {"kind": s.kind, "n": s.n, "N": list(map(int, s.N)), "K": list(map(int, Ks))}
        if s.kind == "exp":
            th = capacity_theory_exp(N_arr, p.noise)
            entry["theory_exp_bound"] = th.tolist()
            entry["log_K_per_N_slope"] = float(np.polyfit(N_arr, np.log(np.maximum(K_arr, 1)),
                                                          1)[0])
        else:
            th = capacity_theory(N_arr, s.n)
            entry["theory"] = th.tolist()
            entry["ratio_to_theory"] = (K_arr / th).tolist()
            ok = K_arr > 0
            if ok.sum() >= 2:
                entry["exponent_fit"] = fit_exponent(N_arr[ok], K_arr[ok])
                entry["exponent_fit_K_lnN"] = fit_exponent(N_arr[ok], K_arr[ok] * np.log(N_arr[ok]))
            entry["exponent_theory"] = s.n - 1
        results.append(entry)
    bar.close()

    fig, ax = plt.subplots(figsize=(7, 5))
    for e in results:
        N_arr = np.array(e["N"], dtype=float)
        grid = np.geomspace(N_arr.min(), N_arr.max(), 50)
        label = "exp" if e["kind"] == "exp" else f"{e['kind']} n={e['n']}"
        line, = ax.plot(N_arr, np.maximum(e["K"], 0.5), "o", label=f"measured, {label}")
        if e["kind"] == "exp":
            ax.plot(grid, capacity_theory_exp(grid, p.noise), "--", color=line.get_color(),
                    label="exp(N·I(1−2ρ)/2) (Demircigil)")
        else:
            ax.plot(grid, capacity_theory(grid, e["n"]), "-", color=line.get_color(),
                    label=f"N^{e['n'] - 1}/(2(2n−3)!! ln N)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("N (units)")
    ax.set_ylabel("capacity K (error-free recall)")
    ax.set_title(f"DAM capacity, cue noise {p.noise:g}, P(success) ≥ {p.success:g}")
    ax.legend(fontsize=7)
    ctx.save_figure(fig, "capacity")
    return {"series": results, "noise": p.noise, "success": p.success}
