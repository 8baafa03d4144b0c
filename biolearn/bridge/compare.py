"""``biolearn compare``: local learning rules vs backprop vs surrogate gradients, side by side.

One config lists the methods; all see the same images (``data``), the same hidden-layer size
(``n_hidden``) and the same presentation (``t_present_ms`` at step ``dt_ms`` for the STDP networks;
the surrogate SNN spends the same presentation in ``num_steps`` coarser steps with the same mean
number of input spikes). The STDP recipes run unchanged through :func:`biolearn.runner.execute`
into sub-directories; the gradient baselines are in :mod:`biolearn.bridge.baselines`.

The table (method, test accuracy, train wall time, images/s, synaptic events or MACs per image,
parameters) goes into ``results.json`` (``metrics.methods``), ``compare.csv`` and
``compare.png``. Costs per image are at inference, on the same first ``energy_images`` test
images: STDP networks count ``spikes × fan-out`` on the test presentations written to their
``spikes.h5``, the surrogate SNN counts its input and hidden spikes × fan-out; ANNs count MACs
(:mod:`.energy`).
"""

from __future__ import annotations

import copy
import csv
import os
import time
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from biolearn.bridge import energy
from biolearn.bridge.baselines import MLPParams, SNNParams
from biolearn.config import param, wrap_error

METHODS = ("sym_stdp", "diehl_cook", "bp_mlp", "surrogate_snn")
LABELS = {"sym_stdp": "sym-STDP (Hao 2020)", "diehl_cook": "Diehl & Cook 2015",
          "bp_mlp": "BP-MLP", "surrogate_snn": "surrogate SNN"}
COLUMNS = ("method", "test_accuracy", "train_time_s", "train_images_per_s",
           "test_images_per_s", "ops_per_image", "ops_kind", "parameters", "n_train_images",
           "n_test_images", "method_wall_s", "method_cpu_s")


@dataclass
class CompareParams:
    """What to compare and on which shared task definition."""

    methods: list[str] = param(factory=lambda: list(METHODS), help="methods to run, in order",
                               choices=list(METHODS))
    n_hidden: int = param(400, "hidden neurons of every method (STDP: excitatory neurons)",
                          min=1)
    t_present_ms: float = param(350.0, "presentation per image (ms), Diehl & Cook 2015", min=1.0)
    dt_ms: float = param(0.5, "STDP simulation step (ms)", min=0.01, max=1.0)
    max_rate_hz: float = param(63.75, "input rate of a white pixel (Hz): pixel/4, Diehl & Cook "
                               "2015; sets the surrogate SNN's input spike probability when "
                               "surrogate_snn.p_max is null", min=0.0)
    sym_stdp: dict = param(factory=dict, help="overrides of the sym_stdp params, e.g. "
                           "{epochs: 1}")
    diehl_cook: dict = param(factory=dict, help="overrides of the diehl_cook params")
    bp_mlp: MLPParams = param(factory=MLPParams)
    surrogate_snn: SNNParams = param(factory=SNNParams)
    snn_num_steps: int = param(25, "surrogate SNN steps per presentation when "
                               "surrogate_snn.num_steps is null (25: snntorch tutorial)", min=1)
    energy_images: int = param(100, "first test images on which synaptic events are counted "
                               "(STDP runs and surrogate SNN alike)", min=1)
    bridge_images: int = param(100, "test images on which the trained surrogate SNN, converted "
                               "to the biolearn engine, is checked against snntorch (0 = off; "
                               "needs surrogate_snn.reset: zero)", min=0)
    figures: bool = param(True, "write compare.png")

    def validate(self) -> None:
        """The STDP methods' params are checked now, not when their turn comes."""
        from biolearn.config import build_dataclass
        from biolearn.errors import BiolearnError
        from biolearn.registry import get_recipe

        for method in self.methods:
            if method not in ("sym_stdp", "diehl_cook"):
                continue
            try:
                build_dataclass(get_recipe(method).params, stdp_params(method, self),
                                f"params.{method}")
            except BiolearnError as e:
                keys, notes = [method], []
                own = getattr(self, method)
                for sub, src in SHARED.items():
                    head, _, leaf = sub.rpartition(".")
                    mine = own.get(head, {}) if head else own
                    if f"'params.{method}.{sub}'" in e.what and not (
                            isinstance(mine, dict) and leaf in mine):
                        keys.append(src)
                        notes.append(f"'params.{method}.{sub}' comes from 'params.{src}'")
                note = f" ({'; '.join(notes)})" if notes else ""
                raise wrap_error(e, *keys, named=False, note=note) from None


#: params of the STDP methods set from the shared settings (their key → the compare key)
SHARED = {"n_exc": "n_hidden", "presentation.t_present_ms": "t_present_ms",
          "presentation.dt": "dt_ms", "presentation.intensity0": "max_rate_hz",
          "output.spikes_test_images": "energy_images"}


def stdp_params(method: str, p: CompareParams) -> dict:
    """The params of an STDP method: the shared settings, then its own overrides."""
    base = {"n_exc": p.n_hidden,
            "presentation": {"t_present_ms": p.t_present_ms, "dt": p.dt_ms,
                             "intensity0": p.max_rate_hz / 255.0 * 8.0},
            "output": {"spikes_test_images": p.energy_images}}
    return _merge(base, getattr(p, method))


def _merge(base: dict, extra: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in extra.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _run_stdp(method: str, cfg: Any, ctx: Any, p: CompareParams) -> dict:
    """Run an STDP recipe with the shared settings into ``<run dir>/<method>``."""
    from biolearn.config import config_from_dict
    from biolearn.io.sonata import read_spikes
    from biolearn.registry import get_recipe
    from biolearn.runner import execute

    params = stdp_params(method, p)
    data = {k: v for k, v in asdict(cfg.data).items() if v is not None}
    sub = config_from_dict({"model": method, "name": f"{cfg.name}-{method}", "seed": cfg.seed,
                            "data": data, "params": params})
    res = execute(sub, out_dir=ctx.path(method), quiet=ctx.quiet, data_root=ctx.data_root)
    m = dict(res["metrics"])
    # synaptic events per test image: spikes on the written presentations × fan-out
    net = get_recipe(method).build(sub.params, np.random.default_rng(0))
    fan = energy.fan_out(net)
    spikes = read_spikes(ctx.path(method) / "spikes.h5")
    counts = {pop: np.bincount(ids.astype(np.int64), minlength=len(fan[pop]))
              for pop, (_, ids) in spikes.items() if pop in fan}
    k = max(1, min(p.energy_images, int(m.get("n_test_images", 1))))
    learned = sum(q.w.size for q in net.projections if q.rule is not None)
    learned += sum(pop.n for pop in net.populations if getattr(pop, "theta_rule", "none") != "none")
    return {**m, "ops_per_image": energy.network_events(counts, fan) / k, "ops_images": k,
            "ops_kind": "synaptic events", "parameters": int(learned),
            "run_dir": str(ctx.path(method))}


def _bridge_check(model: Any, x_te: np.ndarray, p: CompareParams, num_steps: int,
                  p_max: float, seed: int) -> dict:
    """Evaluate the trained surrogate SNN in the biolearn engine (via from_snntorch) on the same
    input spikes as snntorch (float64); report how often the output spike counts agree."""
    import torch

    from biolearn.bridge.baselines import rate_code
    from biolearn.bridge.conversion import from_snntorch, run_snntorch_stack

    n = min(p.bridge_images, len(x_te))
    dt_snn = p.t_present_ms / num_steps
    m64 = copy.deepcopy(model).double()
    gen = torch.Generator().manual_seed(seed + 1)
    x = rate_code(x_te[:n], num_steps, p_max, gen)  # [T, n, 784]
    ref = run_snntorch_stack(m64, x.double())[-1].sum(0).numpy()  # [n, 10]
    net = from_snntorch(m64, dt=dt_snn, names=["hidden", "output"])
    period = num_steps + 3
    st, b, i = np.nonzero(x.numpy())
    src = net.population("input")
    src.indices, src.times = i, (b * period + st) * dt_snn
    sim = net.compile(seed)
    got = np.zeros((n, 10))
    for k in range(n):
        sim.reset_state()
        sim.reset_counts()
        sim.run(steps=period)
        got[k] = sim.spike_counts("output")
    same = np.all(got == ref, axis=1)
    return {"bridge_images": int(n), "bridge_output_counts_identical": float(np.mean(same)),
            "bridge_prediction_agreement": float(np.mean(got.argmax(1) == ref.argmax(1)))}


def _cpu_s() -> float:
    """User + system CPU seconds of this process and its finished children."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def run_compare(cfg: Any, ctx: Any) -> dict:
    """The ``compare`` recipe: run every listed method, write compare.csv / compare.png."""
    from biolearn.bridge import baselines
    from biolearn.data import load_mnist

    p: CompareParams = cfg.params
    rows, details = [], {}
    need_data = any(m in ("bp_mlp", "surrogate_snn") for m in p.methods)
    if need_data:
        x_tr, y_tr, x_te, y_te = load_mnist(root=ctx.data_root, dataset=cfg.data.dataset,
                                            n_train=cfg.data.n_train, n_test=cfg.data.n_test,
                                            quiet=ctx.quiet)
    for method in p.methods:
        wall0, cpu0 = time.perf_counter(), _cpu_s()
        if method in ("sym_stdp", "diehl_cook"):
            m = _run_stdp(method, cfg, ctx, p)
        elif method == "bp_mlp":
            _, m = baselines.train_mlp(x_tr, y_tr, x_te, y_te, p.n_hidden, p.bp_mlp, cfg.seed, ctx)
        else:
            sp = p.surrogate_snn
            steps = sp.num_steps or p.snn_num_steps
            # same mean input spike count per image as the STDP presentation
            p_max = min(1.0, p.max_rate_hz * p.t_present_ms / 1000.0 / steps) \
                if sp.p_max is None else sp.p_max
            sp = replace(sp, p_max=p_max)
            model, m = baselines.train_surrogate_snn(x_tr, y_tr, x_te, y_te, p.n_hidden, sp,
                                                     steps, cfg.seed, ctx, p.energy_images)
            m["p_max"] = p_max
            m["step_ms"] = p.t_present_ms / steps
            if p.bridge_images and sp.reset == "zero":
                m.update(_bridge_check(model, x_te, p, steps, p_max, cfg.seed))
            elif p.bridge_images:
                m["bridge_skipped"] = ("reset by subtraction has no engine equivalent; set "
                                       "surrogate_snn.reset: zero to check the conversion")
        # whole method (build, train, label, test, energy count): wall and CPU of this process
        m["method_wall_s"] = time.perf_counter() - wall0
        m["method_cpu_s"] = _cpu_s() - cpu0
        details[method] = {k: v for k, v in m.items()
                           if k not in ("confusion_matrix", "per_class_accuracy", "train_curve")}
        rows.append({"method": method, **{c: m.get(c) for c in COLUMNS[1:]}})
        ctx.metrics["methods"] = rows  # partial results survive an interruption
    write_csv(ctx.path("compare.csv"), rows)
    if p.figures:
        ctx.save_figure(bar_chart(rows), "compare")
    return {"methods": rows, "details": details, "table": format_table(rows)}


def write_csv(path: Any, rows: list[dict]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(COLUMNS))
        w.writeheader()
        for r in rows:
            w.writerow({c: r.get(c) for c in COLUMNS})


def _num(v: Any, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def format_table(rows: list[dict]) -> str:
    """A fixed-width text table of the comparison."""
    head = ("method", "accuracy", "train s", "train img/s", "test img/s", "ops/image",
            "ops", "params", "total s")
    lines = [(LABELS.get(r["method"], r["method"]),
              _num(None if r.get("test_accuracy") is None else 100 * r["test_accuracy"], ".2f")
              + ("%" if r.get("test_accuracy") is not None else ""),
              _num(r.get("train_time_s"), ".1f"), _num(r.get("train_images_per_s"), ".1f"),
              _num(r.get("test_images_per_s"), ".1f"), _num(r.get("ops_per_image"), ".3g"),
              "events" if r.get("ops_kind") == "synaptic events" else (r.get("ops_kind") or "-"),
              _num(r.get("parameters"), "d"), _num(r.get("method_wall_s"), ".0f"))
             for r in rows]
    widths = [max(len(x) for x in col) for col in zip(head, *lines, strict=True)]
    fmt = "  ".join(f"{{:<{w}}}" if k == 0 else f"{{:>{w}}}" for k, w in enumerate(widths))
    out = [fmt.format(*head), "  ".join("-" * w for w in widths)]
    out += [fmt.format(*line) for line in lines]
    return "\n".join(out)


def bar_chart(rows: list[dict]) -> Any:
    """Accuracy, training throughput and cost per image, one panel each (log scale for costs)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [LABELS.get(r["method"], r["method"]) for r in rows]
    panels = [("test accuracy (%)", [100 * (r.get("test_accuracy") or 0) for r in rows], False),
              ("train images / s", [r.get("train_images_per_s") or 0 for r in rows], True),
              ("synaptic events (plain) or MACs (hatched) / image",
               [r.get("ops_per_image") or 0 for r in rows], True)]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    colors = ["#4c72b0", "#55a868", "#c44e52", "#8172b2", "#ccb974"]
    macs = [r.get("ops_kind") == "MACs" for r in rows]
    for k, (ax, (title, vals, log)) in enumerate(zip(axes, panels, strict=True)):
        bars = ax.bar(range(len(vals)), vals, color=colors[:len(vals)])
        if k == 2:  # ANN MACs hatched, SNN synaptic events plain
            for b, is_mac in zip(bars, macs, strict=True):
                b.set_hatch("//" if is_mac else "")
        ax.set_xticks(range(len(vals)), names, rotation=25, ha="right", fontsize=8)
        ax.set_title(title, fontsize=10)
        if log and any(v > 0 for v in vals):
            ax.set_yscale("log")
        for k, v in enumerate(vals):
            ax.text(k, v, f"{v:.3g}", ha="center", va="bottom", fontsize=7)
    fig.tight_layout()
    return fig
