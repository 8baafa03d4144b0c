"""Continual learning side by side: fine-tuned MLP, EWC, CLASSP, metaplastic BNN, active dendrites.

Recipe ``continual``: one task sequence, every method trained on it with the same epochs per task,
batch size, mini-batch order, hidden sizes and seed, without replay
(:mod:`biolearn.bridge.continual`).

* ``benchmark: permuted`` — permuted MNIST (task 0 = MNIST, task t = a fixed random pixel
  permutation), one 10-way output shared by all tasks, no task label at test (``domain``).
* ``benchmark: split`` — split MNIST, five two-class tasks {0,1}, {2,3}, {4,5}, {6,7}, {8,9};
  ``task``-incremental (the task label is known: logits masked to the task's two classes) and
  ``class``-incremental (no task label: every class seen so far competes).

Methods: ``mlp`` (dense ReLU MLP fine-tuned with Adam: the forgetting baseline), ``ewc``
(Kirkpatrick et al. 2017), ``classp`` (Ludwig 2024), ``metaplastic_bnn`` (Laborieux et al. 2021),
``active_dendrites`` (Iyer et al. 2022). Outputs: ``results.json`` with, per scenario and method,
the accuracy matrix (task trained × task tested), average accuracy and average forgetting
(Chaudhry et al. 2018), bytes of the state each method carries between tasks, wall times;
``accuracy_matrices_<scenario>.png`` (one heatmap per method), ``accuracy_vs_tasks_<scenario>.png``
and ``accuracy_matrix.csv``.
"""

from __future__ import annotations

import csv
import json
import sys
import time
import unicodedata
from dataclasses import dataclass
from typing import Any

import numpy as np

from biolearn.config import Invalid, param
from biolearn.errors import BiolearnError, require_torch
from biolearn.registry import register

METHOD_NAMES = ["mlp", "ewc", "classp", "metaplastic_bnn", "active_dendrites"]
SPLIT_GROUPS = [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9)]
LABELS = {"mlp": "MLP (fine-tuning)", "ewc": "EWC", "classp": "CLASSP",
          "metaplastic_bnn": "metaplastic BNN", "active_dendrites": "active dendrites"}


@dataclass
class MLPSection:
    """Dense ReLU MLP fine-tuned on each task: the catastrophic-forgetting baseline."""

    lr: float = param(1e-3, "Adam learning rate, optimiser re-created at each task", min=0.0)


@dataclass
class EWCSection:
    """Elastic weight consolidation (Kirkpatrick et al. 2017) on the dense MLP."""

    lr: float = param(1e-3, "Adam learning rate, optimiser re-created at each task", min=0.0)
    lam: float = param(100.0, "penalty strength λ in (λ/2) Σ_t Σ_i F_t,i (θ_i − θ*_t,i)²",
                       min=0.0)
    fisher: str = param("expected", "class distribution of the Fisher: expected = the model's "
                        "predictive distribution summed exactly over classes; labels = the data "
                        "labels (empirical Fisher); predicted = the most probable class",
                        choices=["expected", "labels", "predicted"])
    n_samples: int = param(1000, "training images of each task used for its Fisher diagonal",
                           min=1)


@dataclass
class CLASSPSection:
    """CLASSP optimiser (Ludwig 2024, arXiv:2405.09637) on the dense MLP; state never reset."""

    lr: float = param(0.01, "base learning rate α", min=0.0)
    threshold: float = param(1e-6, "a weight is updated only if its squared loss gradient "
                             "exceeds this (paper's θ; scale depends on batch size and loss)",
                             min=0.0)
    epsilon: float = param(1e-8, "ε in α g / (ε + S)^(1/p)", min=0.0)
    power: float = param(2.0, "p: S accumulates |g|^p; p = 2 and θ = 0 is AdaGrad", min=0.1)
    accumulate: str = param("size", "size: S += |g|^p (paper); count: S += 1 per update",
                            choices=["size", "count"])


@dataclass
class MetaSection:
    """Binarized MLP with metaplastic hidden weights (Laborieux et al. 2021)."""

    lr: float = param(0.005, "Adam learning rate (their code: 0.005), re-created at each task",
                      min=0.0)
    meta: float = param(20.0, "metaplasticity m in f_meta = 1 − tanh²(m W_h) (paper: 1.35 with "
                        "40 epochs per task; fewer steps per task need a larger m)", min=0.0)
    width: float = param(0.1, "hidden weights start U(−width/2, width/2) (their code: 0.1)",
                         min=0.0)
    norm: str = param("batch_per_task", "normalisation after each layer: sample = per-sample, no "
                      "parameters (their task-free runs); batch = BatchNorm with scale and shift; "
                      "batch_fixed = BatchNorm without them; batch_per_task = one BatchNorm "
                      "state per task (their permuted-MNIST protocol), chosen at test like the "
                      "active-dendrites context (true task if given, else nearest prototype)",
                      choices=["sample", "batch", "batch_fixed", "batch_per_task"])
    weight_decay: float = param(0.0, "L2 added to the gradient (their runs: 1e-7)", min=0.0)


@dataclass
class DendritesSection:
    """Active-dendrites network (Iyer et al. 2022), prototype contexts."""

    lr: float = param(5e-4, "Adam learning rate (Iyer et al.), re-created at each task", min=0.0)
    kw_fraction: float = param(0.05, "fraction of units kept by k-WTA", min=1e-4, max=1.0)
    ff_sparsity: float = param(0.5, "fraction of feed-forward weights fixed at zero",
                               min=0.0, max=0.99)
    n_segments: int = param(0, "dendritic segments per unit; 0 = one per task", min=0)
    context_density: float = param(0.1, "context density of the segment init", min=1e-3,
                                   max=1.0)
    selection: str = param("absmax", "segment that gates: absmax (their code) or max",
                           choices=["absmax", "max"])
    context: str = param("prototype", "context input: prototype = the task's mean training "
                         "input (Iyer et al.); onehot = the task's one-hot code",
                         choices=["prototype", "onehot"])
    test_context: str = param("infer", "context at test when no task label is given: infer = "
                              "the task whose stored prototype is nearest to the input, oracle "
                              "= the true task", choices=["infer", "oracle"])


@dataclass
class ContinualParams:
    benchmark: str = param("permuted", "permuted: permuted MNIST; split: five two-class tasks",
                           choices=["permuted", "split"])
    n_tasks: int = param(10, "tasks learned in sequence (split MNIST: at most 5)", min=1,
                         max=100)
    scenarios: list[str] = param(factory=lambda: ["domain"],
                                 help="domain (shared head, no task label; permuted), task "
                                      "(task label known, masked logits; split), class (no task "
                                      "label, all seen classes compete; split)",
                                 choices=["domain", "task", "class"])
    methods: list[str] = param(factory=lambda: list(METHOD_NAMES),
                               help="methods to run, each on the same tasks",
                               choices=METHOD_NAMES)
    hidden: list[int] = param(factory=lambda: [400, 400],
                              help="hidden layer sizes, the same for every method", min=1)
    epochs: int = param(1, "epochs per task, the same for every method", min=1)
    batch_size: int = param(128, "training batch size, the same for every method", min=2)
    eval_batch: int = param(1000, "test batch size", min=1)
    validation: int = param(0, "0: train on the training set, evaluate on the test set. N > 0: "
                            "hold out the last N training images, train on the others and "
                            "evaluate on the held-out ones (the test set is not used): choose "
                            "hyperparameters this way, then report the test set", min=0)
    threads: int = param(1, "torch CPU threads", min=1, max=64)
    figures: bool = param(True, "write the PNG figures")
    mlp: MLPSection = param(factory=MLPSection)
    ewc: EWCSection = param(factory=EWCSection)
    classp: CLASSPSection = param(factory=CLASSPSection)
    metaplastic_bnn: MetaSection = param(factory=MetaSection)
    active_dendrites: DendritesSection = param(factory=DendritesSection)

    def validate(self) -> None:
        if not self.hidden:
            raise Invalid("{0} is empty: the networks need at least one hidden layer", "hidden",
                          fix="e.g. hidden: [400, 400]")
        if not self.methods:
            raise Invalid("{0} is empty", "methods", fix="list at least one method")
        if len(set(self.methods)) != len(self.methods):
            raise Invalid("{0} names a method twice", "methods", fix="list each method once")
        if not self.scenarios or len(set(self.scenarios)) != len(self.scenarios):
            raise Invalid("{0} must list each scenario once", "scenarios",
                          fix="e.g. scenarios: [task, class]")
        if self.benchmark == "permuted" and self.scenarios != ["domain"]:
            raise Invalid("{0} must be [domain] for {1} = permuted (every task has the same "
                          "ten classes)", "scenarios", "benchmark", fix="scenarios: [domain]")
        if self.benchmark == "split":
            if "domain" in self.scenarios:
                raise Invalid("{0}: split MNIST runs the task and class scenarios", "scenarios",
                              fix="scenarios: [task, class]")
            if self.n_tasks > len(SPLIT_GROUPS):
                raise Invalid(f"{{0}} = {self.n_tasks} but split MNIST has "
                              f"{len(SPLIT_GROUPS)} tasks", "n_tasks", fix="n_tasks: 5")


def _load(cfg: Any, ctx: Any) -> tuple[np.ndarray, ...]:
    from biolearn.data import load_for_run

    return load_for_run(cfg, ctx, ("mnist",))


def _tasks(p: ContinualParams, cfg: Any, ctx: Any) -> list:
    from biolearn.bridge import continual as cl
    from biolearn.memory import active_dendrites_net as adn

    xtr, ytr, xte, yte = _load(cfg, ctx)
    if p.validation:
        if p.validation >= len(xtr):
            raise BiolearnError(
                f"params.validation = {p.validation} holds out every training image "
                f"({len(xtr)} loaded)", "params.validation",
                f"use fewer than {len(xtr)} (e.g. 10000 of the 60000 MNIST training images)")
        xtr, ytr, xte, yte = (xtr[:-p.validation], ytr[:-p.validation], xtr[-p.validation:],
                              ytr[-p.validation:])
    xtr_f, xte_f = adn.normalize_mnist(xtr), adn.normalize_mnist(xte)
    if p.benchmark == "permuted":
        perms = adn.permutations(p.n_tasks, xtr_f.shape[1], ctx.rng)
        return cl.permuted_tasks(xtr_f, ytr, xte_f, yte, perms)
    return cl.split_tasks(xtr_f, ytr, xte_f, yte, SPLIT_GROUPS[:p.n_tasks])


def _opts(p: ContinualParams, name: str) -> dict:
    import dataclasses

    return dataclasses.asdict(getattr(p, name))


def _matrix(a: np.ndarray) -> list[list[float | None]]:
    return [[None if np.isnan(v) else round(float(v), 5) for v in row] for row in a]


def _summary(r: Any) -> dict:
    from biolearn.bridge import continual as cl

    a = r.accuracy
    out = {
        "average_accuracy": round(r.average_accuracy, 5),
        "average_forgetting": round(r.average_forgetting, 5),
        "forgetting_per_task": [round(float(v), 5) for v in cl.forgetting_per_task(a)],
        "just_learned_accuracy": round(float(np.mean(np.diag(a))), 5),
        "first_task_final_accuracy": round(float(a[-1, 0]), 5),
        "accuracy_matrix": _matrix(a),
        "mean_accuracy_vs_tasks": [round(float(np.mean(a[i, :i + 1])), 5)
                                   for i in range(len(a))],
        "extra_state_bytes": int(r.extra_state_bytes),
        "model_bytes": int(r.model_bytes),
        "n_parameters": int(r.n_parameters),
        "train_time_s": round(r.train_time_s, 3),
        "consolidation_time_s": round(r.consolidation_time_s, 3),
        "eval_time_s": round(r.eval_time_s, 3),
        "wall_time_s": round(r.train_time_s + r.eval_time_s, 3),
        "train_loss_per_task": [round(v, 5) for v in r.losses],
    }
    if not np.all(np.isnan(r.task_inference)):
        out["task_inference_accuracy"] = round(float(r.task_inference[-1]), 5)
    out.update(r.info)
    return out


def _plot(ctx: Any, scenario: str, results: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    n_tasks = len(next(iter(results.values())).accuracy)
    fig, axes = plt.subplots(1, len(names), figsize=(3.3 * len(names) + 0.8, 3.6),
                             squeeze=False)
    im = None
    for ax, name in zip(axes[0], names, strict=True):
        a = results[name].accuracy
        im = ax.imshow(100 * np.ma.masked_invalid(a), vmin=0, vmax=100, cmap="viridis")
        if n_tasks <= 10:
            for i in range(n_tasks):
                for j in range(i + 1):
                    v = 100 * a[i, j]
                    ax.text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=7,
                            color="white" if v < 60 else "black")
        ax.set_title(f"{LABELS.get(name, name)}\nĀ {100 * results[name].average_accuracy:.1f} %"
                     f", F̄ {100 * results[name].average_forgetting:.1f} pp", fontsize=9)
        ax.set_xlabel("task tested")
        ax.set_xticks(range(n_tasks))
        ax.set_yticks(range(n_tasks))
        ax.set_xticklabels(range(1, n_tasks + 1))
        ax.set_yticklabels(range(1, n_tasks + 1))
    axes[0][0].set_ylabel("after training task")
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8, label="test accuracy (%)")
    fig.suptitle(f"accuracy matrices, {scenario}-incremental", fontsize=10)
    ctx.save_figure(fig, f"accuracy_matrices_{scenario}")

    fig, (ax, ax1) = plt.subplots(1, 2, figsize=(11, 4))
    t = np.arange(1, n_tasks + 1)
    for name in names:
        a = results[name].accuracy
        ax.plot(t, [100 * np.mean(a[i, :i + 1]) for i in range(n_tasks)], marker="o",
                label=LABELS.get(name, name))
        ax1.plot(t, 100 * a[:, 0], marker="o", label=LABELS.get(name, name))
    ax.set(xlabel="tasks learned", ylabel="mean accuracy over learned tasks (%)",
           title=f"{scenario}-incremental: all learned tasks", ylim=(0, 100))
    ax1.set(xlabel="tasks learned", ylabel="accuracy on task 1 (%)",
            title=f"{scenario}-incremental: task 1 as later tasks are learned", ylim=(0, 100))
    for a_ in (ax, ax1):
        a_.set_xticks(t)
        a_.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    ctx.save_figure(fig, f"accuracy_vs_tasks_{scenario}")


def format_table(scenario: str, m: dict, methods: list[str]) -> str:
    """The side-by-side table of one scenario: Ā, F̄ (Chaudhry et al. 2018), accuracy just after
    learning each task, the first task's at the end, extra state and time per method."""
    head = (f"{scenario}-incremental", "Ā %", "F̄ pp", "just learned %", "task 1 at end %",
            "extra state", "train+test s")
    rows = [head]
    for name in methods:
        r = m[name]
        rows.append((LABELS.get(name, name), f"{100 * r['average_accuracy']:.1f}",
                     f"{100 * r['average_forgetting']:.1f}",
                     f"{100 * r['just_learned_accuracy']:.1f}",
                     f"{100 * r['first_task_final_accuracy']:.1f}",
                     _bytes(r["extra_state_bytes"]),
                     f"{r['train_time_s']:.0f}+{r['eval_time_s']:.0f}"))
    def width(text: str) -> int:  # display width: combining marks (the bar of F̄) take none
        return sum(not unicodedata.combining(c) for c in text)

    widths = [max(width(row[i]) for row in rows) for i in range(len(head))]
    lines = ["  ".join(c + " " * (w - width(c)) if i == 0 else " " * (w - width(c)) + c
                       for i, (c, w) in enumerate(zip(row, widths, strict=True)))
             for row in rows]
    lines.insert(1, "-" * width(lines[0]))
    return "\n".join(lines)


def _bytes(n: int) -> str:
    for unit, k in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= k:
            return f"{n / k:.1f} {unit}"
    return f"{n} B"


def _save_partial(ctx: Any, key: str, i: int, acc: np.ndarray, seconds: float) -> None:
    with open(ctx.path(f"partial_{key}.json"), "w") as f:
        json.dump({"tasks_done": i + 1, "seconds": round(seconds, 1),
                   "accuracy_matrix": _matrix(acc[:i + 1])}, f, indent=1)


@register("continual", ContinualParams)
def run(cfg: Any, ctx: Any) -> dict:
    """CLASSP, EWC, metaplastic BNN, active dendrites and a fine-tuned MLP on one task sequence."""
    torch = require_torch()
    from biolearn.bridge import continual as cl

    p: ContinualParams = cfg.params
    torch.set_num_threads(p.threads)
    t0 = time.perf_counter()
    tasks = _tasks(p, cfg, ctx)
    t_load = time.perf_counter() - t0
    dim = tasks[0].x_train.shape[1]
    metrics: dict[str, Any] = {
        "benchmark": p.benchmark, "n_tasks": len(tasks),
        "train_images_per_task": [int(len(t.x_train)) for t in tasks],
        "test_images_per_task": [int(len(t.x_test)) for t in tasks],
        "task_classes": [list(t.classes) for t in tasks],
        "data_time_s": round(t_load, 3),
        "evaluated_on": "validation" if p.validation else "test",
    }
    rows: list[list] = []
    for scenario in p.scenarios:
        results: dict[str, Any] = {}
        metrics[scenario] = {}
        for name in p.methods:
            learner = cl.build_learner(name, dim, p.hidden, 10, len(tasks), cfg.seed,
                                       _opts(p, name))
            key = f"{scenario}_{name}"
            test_ctx = p.active_dendrites.test_context
            r = cl.train_sequence(
                learner, tasks, scenario, epochs=p.epochs, batch_size=p.batch_size,
                seed=cfg.seed, test_context=test_ctx, eval_batch=p.eval_batch,
                progress=lambda total, desc, s=scenario: ctx.progress(total, f"{s}:{desc}",
                                                                      unit="batch"),
                on_task=lambda i, a, sec, key=key: _save_partial(ctx, key, i, a, sec))
            results[name] = r
            metrics[scenario][name] = _summary(r)
            ctx.metrics.update(metrics)
            n = len(r.accuracy)
            for i in range(n):
                for j in range(i + 1):
                    rows.append([scenario, name, i, j, f"{r.accuracy[i, j]:.5f}"])
        metrics[scenario]["table"] = [
            {"method": m, "average_accuracy": metrics[scenario][m]["average_accuracy"],
             "average_forgetting": metrics[scenario][m]["average_forgetting"],
             "extra_state_bytes": metrics[scenario][m]["extra_state_bytes"],
             "wall_time_s": metrics[scenario][m]["wall_time_s"]} for m in p.methods]
        if p.figures:
            _plot(ctx, scenario, results)
        if not ctx.quiet:
            print(format_table(scenario, metrics[scenario], p.methods), file=sys.stderr)
    with open(ctx.path("accuracy_matrix.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["scenario", "method", "after_task", "task", "accuracy"])
        w.writerows(rows)
    return metrics
