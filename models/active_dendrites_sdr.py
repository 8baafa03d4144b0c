"""Recipes for dendritic-segment statistics (Ahmad & Hawkins 2016, arXiv 1601.00720).

* ``dendrites_false_match``: exact false-match probability (eq. 3) over a grid of segment sizes s
  and NMDA thresholds theta for populations (n, a), with Monte-Carlo estimates from random SDRs
  wherever the probability is measurable; checks the four values printed in the paper.
* ``dendrites_union``: the union property s' = n (1 - (1 - s/n)^M) and the false-match rate of a
  segment that stores M patterns, closed form vs simulation.
* ``dendrites_noise``: robustness to noise - probability that a segment still recognises its
  pattern when a fraction of the active bits is removed, and the false-match rate of unrelated
  segments when a fraction of extra bits is added.

Each writes a PNG and a CSV table into the run directory and returns the table as metrics.
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass

import numpy as np

from biolearn.config import Invalid, param, require_below
from biolearn.memory import dendrites as dd
from biolearn.registry import register

# Ahmad & Hawkins 2016: (n, a, s, theta) -> printed P_fp
PUBLISHED = [
    ((100_000, 2000, 10, 10), 1.0016e-17),
    ((100_000, 2000, 20, 10), 1.542e-12),
    ((10_000, 300, 24, 12), 8.3758e-13),
    ((200_000, 2000, 10, 10), 9.78e-21),
]


def _write_csv(path, rows: list[dict]) -> None:
    if not rows:
        return
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def _mc_ok(p: float, trials: int, min_prob: float) -> bool:
    """Simulate only where the probability is measurable: >= min_prob and >= 20 expected hits."""
    return p >= min_prob and p * trials >= 20


# ----------------------------------------------------------------------------- false match
@dataclass
class FalseMatchParams:
    populations: list[list[int]] = param(
        factory=lambda: [[1024, 20], [1024, 32], [2048, 40], [10_000, 300]],
        help="[n, a] pairs: cells and active cells (Ahmad & Hawkins 2016, Fig. 2-3 use "
             "n up to 1e5 with a = 2%)")
    s_values: list[int] = param(factory=lambda: [8, 16, 24, 32],
                                help="synapses per segment", min=1)
    theta_values: list[int] = param(factory=lambda: [1, 2, 3, 4, 6, 8, 10, 12],
                                    help="NMDA thresholds", min=0)
    mc_trials: int = param(200_000, "random SDRs per Monte-Carlo point", min=100)
    mc_min_prob: float = param(1e-4, "simulate only where P_fp >= this", min=0.0, max=1.0)

    def validate(self) -> None:
        if not self.populations:
            raise Invalid("{0} is empty: give at least one [n, a] pair", "populations",
                          fix="e.g. populations: [[1024, 20]]")
        for k, pop in enumerate(self.populations):
            if len(pop) != 2:
                raise Invalid(f"{{0}} = {pop} must be an [n, a] pair: n cells, a of them active",
                              f"populations[{k}]", fix="write e.g. populations: [[1024, 20]]")
            n, a = pop
            if not 1 <= a <= n:
                raise Invalid(f"{{0}} = [{n}, {a}]: the active cells a must be between 1 and the "
                              f"cells n", f"populations[{k}]",
                              fix="choose 1 ≤ a ≤ n (Ahmad & Hawkins: a ≈ 2% of n)")


@register("dendrites_false_match", FalseMatchParams)
def run_false_match(cfg, ctx) -> dict:
    """Exact false-match probability vs Monte Carlo over (n, a, s, theta)."""
    p = cfg.params
    rows = []
    t0 = time.perf_counter()
    seed = int(ctx.rng.integers(2**31 - 1))
    grid = [(n, a, s, th) for n, a in p.populations for s in p.s_values for th in p.theta_values
            if s <= n and a <= n and th <= s]
    bar = ctx.progress(len(grid), "false match", unit="pt")
    for i, (n, a, s, th) in enumerate(grid):
        exact = dd.false_match_probability(n, a, s, th)
        row = {"n": n, "a": a, "s": s, "theta": th, "p_exact": exact,
               "p_mc": "", "ci_lo": "", "ci_hi": "", "in_ci": ""}
        if _mc_ok(exact, p.mc_trials, p.mc_min_prob):
            est = dd.false_match_mc(n, a, s, th, p.mc_trials, seed + i)
            row.update(p_mc=est.p, ci_lo=est.lo, ci_hi=est.hi, in_ci=est.contains(exact))
        rows.append(row)
        bar.update(1)
    bar.close()
    _write_csv(ctx.path("false_match.csv"), rows)

    import matplotlib.pyplot as plt

    pops = [tuple(x) for x in p.populations]
    fig, axes = plt.subplots(1, len(pops), figsize=(4.2 * len(pops), 3.6), squeeze=False)
    for ax, (n, a) in zip(axes[0], pops, strict=True):
        for s in p.s_values:
            sel = [r for r in rows if r["n"] == n and r["a"] == a and r["s"] == s
                   and r["p_exact"] > 0]
            if not sel:
                continue
            th = [r["theta"] for r in sel]
            line, = ax.semilogy(th, [max(r["p_exact"], 1e-300) for r in sel], label=f"s={s}")
            mc = [r for r in sel if r["p_mc"] != ""]
            if mc:
                y = np.array([r["p_mc"] for r in mc])
                err = np.array([[r["p_mc"] - r["ci_lo"] for r in mc],
                                [r["ci_hi"] - r["p_mc"] for r in mc]])
                ax.errorbar([r["theta"] for r in mc], y, yerr=err, fmt="o", ms=3,
                            color=line.get_color())
        ax.set_title(f"n={n}, a={a}")
        ax.set_xlabel("threshold θ")
    axes[0, 0].set_ylabel("P(false match)")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle("Closed form (lines) vs Monte Carlo (dots, 95% CI)")
    ctx.save_figure(fig, "false_match")

    published = []
    for (n, a, s, th), ref in PUBLISHED:
        val = dd.false_match_probability(n, a, s, th)
        published.append({"n": n, "a": a, "s": s, "theta": th, "published": ref, "exact": val,
                          "rel_err": abs(val - ref) / ref})
    mc_rows = [r for r in rows if r["in_ci"] != ""]
    return {
        "n_points": len(rows),
        "n_mc_points": len(mc_rows),
        "mc_within_95ci_fraction": (float(np.mean([r["in_ci"] for r in mc_rows]))
                                    if mc_rows else None),
        "published_max_rel_err": max(r["rel_err"] for r in published),
        "published": published,
        "table": rows,
        "seconds": time.perf_counter() - t0,
    }


# ----------------------------------------------------------------------------- union
@dataclass
class UnionParams:
    n: int = param(2048, "cells in the population", min=1)
    a: int = param(40, "active cells per SDR", min=1)
    s: int = param(20, "synapses per stored pattern", min=1)
    theta: int = param(10, "NMDA threshold of the union segment", min=0)
    M_values: list[int] = param(factory=lambda: [1, 2, 5, 10, 20, 50, 100, 200],
                                help="patterns stored on one segment", min=1)
    size_trials: int = param(2000, "simulated unions per M (union size)", min=10)
    mc_trials: int = param(100_000, "random SDRs per M (false-match rate)", min=100)
    mc_min_prob: float = param(1e-4, "simulate the false-match rate only above this", min=0.0)

    def validate(self) -> None:
        require_below(self, "a", "n", strict=False, why="a of the n cells are active")
        require_below(self, "s", "n", strict=False,
                      why="a pattern's s synapses sit on distinct cells")
        if not self.M_values:
            raise Invalid("{0} is empty: give at least one number of patterns", "M_values",
                          fix="e.g. M_values: [1, 10, 100]")


@register("dendrites_union", UnionParams)
def run_union(cfg, ctx) -> dict:
    """Union property: effective synapses and false-match rate of a segment storing M patterns."""
    p = cfg.params
    seed = int(ctx.rng.integers(2**31 - 1))
    rows = []
    t0 = time.perf_counter()
    for i, M in enumerate(p.M_values):
        formula = float(dd.union_effective_synapses(p.n, p.s, M))
        sizes = dd.union_size_mc(p.n, p.s, M, p.size_trials, seed + 2 * i)
        fp = dd.union_false_match_probability(p.n, p.a, p.s, M, p.theta)
        row = {"M": M, "s_eff_formula": formula, "s_eff_sim": float(sizes.mean()),
               "s_eff_sim_se": float(sizes.std(ddof=1) / np.sqrt(sizes.size)),
               "p_fp_exact": fp, "p_fp_mc": "", "ci_lo": "", "ci_hi": "", "in_ci": ""}
        if _mc_ok(fp, p.mc_trials, p.mc_min_prob):
            est = dd.union_false_match_mc(p.n, p.a, p.s, M, p.theta, p.mc_trials, seed + 2 * i + 1)
            row.update(p_fp_mc=est.p, ci_lo=est.lo, ci_hi=est.hi, in_ci=est.contains(fp))
        rows.append(row)
    _write_csv(ctx.path("union.csv"), rows)

    import matplotlib.pyplot as plt

    Ms = np.array(p.M_values)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.6))
    m_fine = np.unique(np.geomspace(1, Ms.max(), 200).round())
    a1.plot(m_fine, dd.union_effective_synapses(p.n, p.s, m_fine), label="n(1-(1-s/n)^M)")
    a1.errorbar(Ms, [r["s_eff_sim"] for r in rows], yerr=[2 * r["s_eff_sim_se"] for r in rows],
                fmt="o", ms=4, label="simulation")
    a1.plot(Ms, np.minimum(Ms * p.s, p.n), ":", label="M·s (no overlap)")
    a1.set_xscale("log")
    a1.set_xlabel("patterns per segment M")
    a1.set_ylabel("distinct synapses s'")
    a1.legend(fontsize=7)
    a2.semilogy(Ms, [max(r["p_fp_exact"], 1e-300) for r in rows], "-", label="exact")
    mc = [r for r in rows if r["p_fp_mc"] != ""]
    if mc:
        a2.errorbar([r["M"] for r in mc], [r["p_fp_mc"] for r in mc],
                    yerr=[[r["p_fp_mc"] - r["ci_lo"] for r in mc],
                          [r["ci_hi"] - r["p_fp_mc"] for r in mc]], fmt="o", ms=4, label="MC")
    a2.set_xscale("log")
    a2.set_xlabel("patterns per segment M")
    a2.set_ylabel(f"P(false match), θ={p.theta}")
    a2.legend(fontsize=7)
    fig.suptitle(f"Union property, n={p.n}, a={p.a}, s={p.s}")
    fig.tight_layout()
    ctx.save_figure(fig, "union")
    rel = [abs(r["s_eff_sim"] - r["s_eff_formula"]) / r["s_eff_formula"] for r in rows]
    mc_rows = [r for r in rows if r["in_ci"] != ""]
    return {
        "s_eff_max_rel_err": float(max(rel)),
        "mc_within_95ci_fraction": (float(np.mean([r["in_ci"] for r in mc_rows]))
                                    if mc_rows else None),
        "table": rows,
        "seconds": time.perf_counter() - t0,
    }


# ----------------------------------------------------------------------------- noise
@dataclass
class NoiseParams:
    n: int = param(2048, "cells in the population", min=1)
    a: int = param(40, "active cells per SDR", min=1)
    s: int = param(24, "synapses per segment (all on the stored pattern)", min=1)
    theta_values: list[int] = param(factory=lambda: [6, 10, 14, 18],
                                    help="NMDA thresholds", min=0)
    fractions: list[float] = param(factory=lambda: [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8],
                                   help="fraction of active bits removed / added", min=0.0,
                                   max=1.0)
    mc_trials: int = param(20_000, "Monte-Carlo trials per point", min=100)

    def validate(self) -> None:
        require_below(self, "a", "n", strict=False, why="a of the n cells are active")
        require_below(self, "s", "a", strict=False,
                      why="the segment's s synapses sit on the pattern's a active cells")


@register("dendrites_noise", NoiseParams)
def run_noise(cfg, ctx) -> dict:
    """Match probability vs fraction of active bits removed; false matches vs bits added."""
    p = cfg.params
    seed = int(ctx.rng.integers(2**31 - 1))
    rows = []
    t0 = time.perf_counter()
    for ti, th in enumerate(p.theta_values):
        if th > p.s:
            continue
        for fi, f in enumerate(p.fractions):
            k = int(round(f * p.a))
            if k > p.a or p.a + k > p.n:
                continue
            keep = dd.match_prob_after_removal(p.a, p.s, th, k)
            est = dd.match_prob_after_removal_mc(p.n, p.a, p.s, th, k, p.mc_trials,
                                                 seed + 100 * ti + fi)
            fp = dd.false_match_after_addition(p.n, p.a, p.s, th, k)
            rows.append({"theta": th, "fraction": f, "bits": k, "p_match_exact": keep,
                         "p_match_mc": est.p, "match_in_ci": est.contains(keep),
                         "p_fp_added_exact": fp})
    _write_csv(ctx.path("noise.csv"), rows)

    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.6))
    for th in p.theta_values:
        sel = [r for r in rows if r["theta"] == th]
        if not sel:
            continue
        x = [r["fraction"] for r in sel]
        line, = a1.plot(x, [r["p_match_exact"] for r in sel], label=f"θ={th}")
        a1.plot(x, [r["p_match_mc"] for r in sel], "o", ms=3, color=line.get_color())
        a2.semilogy(x, [max(r["p_fp_added_exact"], 1e-300) for r in sel], color=line.get_color(),
                    label=f"θ={th}")
    a1.set_xlabel("fraction of active bits removed")
    a1.set_ylabel("P(segment still matches)")
    a1.legend(fontsize=7)
    a2.set_xlabel("fraction of extra active bits added")
    a2.set_ylabel("P(unrelated segment matches)")
    fig.suptitle(f"Noise robustness, n={p.n}, a={p.a}, s={p.s} (lines exact, dots MC)")
    fig.tight_layout()
    ctx.save_figure(fig, "noise")
    return {
        "mc_within_95ci_fraction": float(np.mean([r["match_in_ci"] for r in rows])),
        "table": rows,
        "seconds": time.perf_counter() - t0,
    }
