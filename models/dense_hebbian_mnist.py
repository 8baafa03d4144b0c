"""Recipe ``dense_hebbian_mnist``: dense Hebbian (P-spin) classifier built only by Hebbian storage.

Agliari et al. (arXiv 2212.00606): binarised training images of class μ are the examples η^{μ,a}
(M per class); the supervised P-spin couplings J = Σ_μ (η̄^μ)^{⊗P} are never formed — the
network is the DAM E = −Σ_μ (x^μ·σ)^P over the class means x^μ = η̄^μ (``patterns: mean``;
``unit`` rescales each class mean to unit norm, a per-class weight of the rank-one terms,
``sign`` stores the archetype estimates sign(η̄^μ)). A test image (binarised, ±1) is the initial
state; zero-temperature asynchronous dynamics (Krotov & Hopfield 2016, Eq. 2) runs to a fixed
point, and the class is the stored vector with the largest overlap with that fixed point.
Baseline: nearest class mean on the same binarised pixels. The unsupervised construction (all
examples as patterns, weight 1/M) is evaluated on a test subset because its cost grows with K·M;
its read-out is the label of the stored example with the largest overlap with the fixed point
(labels are used only to name the retrieved state).

A synthetic panel reproduces the archetype-from-examples effect: Mattis overlap of the retrieved
state with a never-shown archetype vs M for quality r, against the closed form
1 − 2 P(Bin(M, (1 − r)/2) > M/2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from biolearn.config import param
from biolearn.registry import register


@dataclass
class DenseHebbianParams:
    P: int = param(160, "interaction order P of the dense Hebbian couplings (Agliari et al.); "
                   "MNIST class means overlap strongly, so retrieval needs a high order", min=2)
    M: int | None = param(None, "examples per class used for storage (None = all available)",
                          min=1)
    threshold: int = param(127, "pixel binarisation threshold: σ = +1 if pixel > threshold",
                           min=0, max=254)
    patterns: str = param("unit", "stored vectors: 'mean' = η̄^μ as in the rule, 'unit' = η̄^μ/‖η̄^μ‖ "
                          "(equal norms), 'sign' = archetype estimates sign(η̄^μ), 'centered' = "
                          "η̄^μ minus the mean over classes", choices=["mean", "unit", "sign",
                                                                   "centered"])
    max_sweeps: int = param(30, "asynchronous sweeps per test image", min=1)
    unsupervised_M: int = param(100, "examples per class for the unsupervised construction "
                                "(0 = skip)", min=0)
    unsupervised_n_test: int = param(1000, "test images for the unsupervised construction", min=1)
    scan_P: list[int] = param(factory=lambda: [4, 20, 80, 160, 320],
                              help="accuracy scan: interaction orders P", min=2)
    scan_M: list[int] = param(factory=lambda: [10, 100, 1000, 6000],
                              help="accuracy scan: examples per class M (capped by availability)",
                              min=1)
    scan_n_test: int = param(2000, "accuracy scan: test images used (0 = skip the scan)", min=0)
    synth_N: int = param(400, "synthetic panel: archetype length N", min=10)
    synth_K: int = param(5, "synthetic panel: number of archetypes", min=1)
    synth_r: list[float] = param(factory=lambda: [0.1, 0.2, 0.3], help="synthetic panel: r values",
                                 min=0.0, max=1.0)
    synth_M: list[int] = param(factory=lambda: [1, 5, 11, 25, 51, 101, 201],
                               help="synthetic panel: odd M values", min=1)


def shape_patterns(means: np.ndarray, kind: str) -> np.ndarray:
    """Stored vectors from class means (see ``DenseHebbianParams.patterns``)."""
    if kind == "unit":
        return means / np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-12)
    if kind == "sign":
        return np.where(means >= 0, 1.0, -1.0)
    if kind == "centered":
        return means - means.mean(0)
    return means


def binarise(x: np.ndarray, threshold: int) -> np.ndarray:
    """uint8 images → ±1 float vectors (N = pixels)."""
    return np.where(np.asarray(x).reshape(len(x), -1) > threshold, 1.0, -1.0)


def class_means(X: np.ndarray, y: np.ndarray, n_cls: int, M: int | None) -> tuple[np.ndarray, list]:
    """η̄^μ from the first M examples of each class; returns (means (n_cls, N), M used per class)."""
    means, used = [], []
    for c in range(n_cls):
        ex = X[y == c][:M] if M else X[y == c]
        means.append(ex.mean(0))
        used.append(int(len(ex)))
    return np.array(means), used


def accuracy_scan(Xtr: np.ndarray, ytr: np.ndarray, Xte: np.ndarray, yte: np.ndarray,
                  Ps: list[int], Ms: list[int], kinds: tuple[str, ...], max_sweeps: int,
                  seed: int) -> dict:
    """Recall accuracy for every (patterns kind, M, P), with r̂ and the NCM baseline per M."""
    from biolearn.memory.dam import recall_async

    n_cls = int(max(ytr.max(), yte.max())) + 1
    out: dict = {"P": list(Ps), "M": [], "r_hat": [], "ncm": [], "accuracy": {k: [] for k in kinds}}
    for M in Ms:
        means, used = class_means(Xtr, ytr, n_cls, M)
        out["M"].append(int(min(used)))
        out["r_hat"].append(float(np.mean(np.abs(means))))
        d2 = ((Xte[:, None, :] - means[None]) ** 2).sum(-1)
        out["ncm"].append(float(np.mean(d2.argmin(1) == yte)))
        for kind in kinds:
            pats = shape_patterns(means, kind)
            row = []
            for P in Ps:
                fin, _ = recall_async(pats, Xte, "poly", P, max_sweeps, seed)
                row.append(float(np.mean((fin @ pats.T).argmax(1) == yte)))
            out["accuracy"][kind].append(row)
    return out


def synthetic_overlaps(N: int, K: int, rs: list[float], Ms: list[int], P: int,
                       rng: np.random.Generator) -> dict:
    """Mattis overlap of retrieved states with hidden archetypes (supervised), with theory."""
    from biolearn.memory.dam import random_patterns, recall_async
    from biolearn.memory.dam_hebbian import expected_sign_overlap, make_examples

    out: dict = {"r": list(rs), "M": list(Ms), "measured": [], "theory": []}
    for r in rs:
        meas, theo = [], []
        for M in Ms:
            xi = random_patterns(K, N, rng)
            ex = make_examples(xi, r, M, rng)
            pats = ex.mean(1)
            cue = ex[:, 0, :]                         # start from one example per class
            fin, _ = recall_async(pats, cue, "poly", P, 30, int(rng.integers(2**31)))
            meas.append(float(np.mean(np.sum(fin * xi, 1) / N)))
            theo.append(expected_sign_overlap(r, M) if M % 2 else float("nan"))
        out["measured"].append(meas)
        out["theory"].append(theo)
    return out


@register("dense_hebbian_mnist", DenseHebbianParams)
def run(cfg, ctx) -> dict:
    """Dense Hebbian (P-spin) supervised classifier, storage only (Agliari et al.)."""
    import matplotlib.pyplot as plt

    from biolearn.memory.dam import recall_async
    from biolearn.models.dam_common import load_images

    p: DenseHebbianParams = cfg.params
    xtr, ytr, xte, yte = load_images(cfg, ctx)
    Xtr, Xte = binarise(xtr, p.threshold), binarise(xte, p.threshold)
    ytr, yte = ytr.astype(np.int64), yte.astype(np.int64)
    n_cls = int(max(ytr.max(), yte.max())) + 1
    means, used = class_means(Xtr, ytr, n_cls, p.M)
    pats = shape_patterns(means, p.patterns)
    r_hat = float(np.mean(np.abs(means)))   # ⟨|η̄_i|⟩ → r for M → ∞ (Agliari et al. quality)

    # nearest-class-mean baseline (Euclidean, binarised pixels)
    d2 = ((Xte[:, None, :] - means[None]) ** 2).sum(-1)
    ncm_acc = float(np.mean(d2.argmin(1) == yte))
    one_step = float(np.mean((Xte @ pats.T).argmax(1) == yte))

    fin, sweeps = recall_async(pats, Xte, "poly", p.P, p.max_sweeps, ctx.seed)
    pred = (fin @ pats.T).argmax(1)
    acc = float(np.mean(pred == yte))
    metrics = {
        "test_accuracy": acc,
        "P": p.P,
        "M_per_class": used,
        "r_hat": r_hat,
        "patterns": p.patterns,
        "one_step_overlap_accuracy": one_step,
        "nearest_class_mean_accuracy": ncm_acc,
        "mean_sweeps": float(sweeps.mean()),
        "n_test": int(len(Xte)),
    }

    if p.unsupervised_M > 0:
        ex, lab = [], []
        for c in range(n_cls):
            e = Xtr[ytr == c][: p.unsupervised_M]
            ex.append(e)
            lab.append(np.full(len(e), c))
        ex_all, lab_all = np.concatenate(ex), np.concatenate(lab)
        nt = min(p.unsupervised_n_test, len(Xte))
        # binary examples all have norm √N: the 1/M weight and any normalisation leave signs alone
        fin_u, _ = recall_async(ex_all, Xte[:nt], "poly", p.P, p.max_sweeps, ctx.seed + 1)
        pred_u = lab_all[(fin_u @ ex_all.T).argmax(1)]
        metrics["unsupervised_M_per_class"] = p.unsupervised_M
        metrics["unsupervised_accuracy"] = float(np.mean(pred_u == yte[:nt]))
        metrics["unsupervised_n_test"] = nt

    if p.scan_n_test > 0 and p.scan_P and p.scan_M:
        nt = min(p.scan_n_test, len(Xte))
        metrics["scan"] = accuracy_scan(Xtr, ytr, Xte[:nt], yte[:nt], p.scan_P, p.scan_M,
                                        ("mean", "unit"), p.max_sweeps, ctx.seed)
        metrics["scan"]["n_test"] = nt

    syn = synthetic_overlaps(p.synth_N, p.synth_K, p.synth_r, p.synth_M, p.P, ctx.rng)
    metrics["synthetic"] = syn

    scan = metrics.get("scan")
    fig, axes = plt.subplots(1, 4 if scan else 3, figsize=(20 if scan else 15, 4.5))
    img = np.zeros((28, 28 * n_cls))
    for c in range(n_cls):
        img[:, 28 * c:28 * (c + 1)] = pats[c].reshape(28, 28)
    lim = np.abs(img).max()
    axes[0].imshow(img, cmap="bwr", vmin=-lim, vmax=lim)
    axes[0].set_title(f"stored vectors ({p.patterns} class means)")
    axes[0].axis("off")
    k = min(10, len(fin))
    axes[1].imshow(np.vstack([np.hstack([Xte[i].reshape(28, 28) for i in range(k)]),
                              np.hstack([fin[i].reshape(28, 28) for i in range(k)])]), cmap="gray")
    axes[1].set_title("test cues (top) and fixed points (bottom)")
    axes[1].axis("off")
    for j, r in enumerate(syn["r"]):
        line, = axes[2].plot(syn["M"], syn["measured"][j], "o", label=f"r = {r}")
        axes[2].plot(syn["M"], syn["theory"][j], "-", color=line.get_color())
    axes[2].set_xscale("log")
    axes[2].set_xlabel("examples per archetype M")
    axes[2].set_ylabel("Mattis overlap with archetype")
    axes[2].set_title(f"synthetic, N={p.synth_N}, K={p.synth_K}, P={p.P} (lines: theory)")
    axes[2].legend()
    if scan:
        for kind, style in (("unit", "-"), ("mean", ":")):
            for j, M in enumerate(scan["M"]):
                axes[3].plot(scan["P"], scan["accuracy"][kind][j], "o" + style, color=f"C{j}",
                             label=f"M = {M}" if kind == "unit" else None)
        for j, _ in enumerate(scan["M"]):
            axes[3].axhline(scan["ncm"][j], color=f"C{j}", lw=0.8, alpha=0.6)
        axes[3].set_xscale("log")
        axes[3].set_xlabel("interaction order P")
        axes[3].set_ylabel("test accuracy")
        axes[3].set_title(f"MNIST (first {scan['n_test']} test images): unit (—) vs raw (··) "
                          "means; lines: NCM", fontsize=9)
        axes[3].legend(fontsize=8)
    ctx.save_figure(fig, "dense_hebbian")
    return metrics
