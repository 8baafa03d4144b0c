"""Figures of learned networks (matplotlib, Agg backend): receptive fields, confusion matrix,
accuracy curves and spike rasters."""

from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def receptive_fields(w: np.ndarray, side: int = 28, max_tiles: int = 400,
                     title: str = "") -> Any:
    """Tile the columns of an [side², n] weight matrix as side×side images."""
    n = min(w.shape[1], max_tiles)
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    canvas = np.full((rows * side, cols * side), np.nan)
    for k in range(n):
        r, c = divmod(k, cols)
        canvas[r * side:(r + 1) * side, c * side:(c + 1) * side] = w[:, k].reshape(side, side)
    fig, ax = plt.subplots(figsize=(min(12, 1 + cols * 0.5), min(12, 1 + rows * 0.5)))
    im = ax.imshow(canvas, cmap="hot_r", interpolation="nearest")
    ax.set_axis_off()
    ax.set_title(title or f"receptive fields ({n} of {w.shape[1]} neurons)")
    fig.colorbar(im, ax=ax, fraction=0.03)
    return fig


def confusion_matrix(cm: np.ndarray, title: str = "confusion matrix") -> Any:
    cm = np.asarray(cm)
    fig, ax = plt.subplots(figsize=(5.5, 5))
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_xticks(range(cm.shape[1]))
    ax.set_yticks(range(cm.shape[0]))
    ax.set_title(title)
    return fig


def accuracy_curve(images: list, acc: list, label: str | None = None,
                   test_points: list | None = None) -> Any:
    """Accuracy against training images seen; ``test_points`` [(images, accuracy)] are drawn as
    test-set markers (e.g. a test after every pass)."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(images, np.asarray(acc) * 100, marker=".", label="running train (hidden vote)")
    if test_points:
        tx, ty = zip(*test_points, strict=True)
        ax.plot(tx, np.asarray(ty) * 100, "s-", color="C3", label="test set")
        ax.legend(loc="lower right")
    if label is None:
        label = "accuracy during training" if test_points else "running train accuracy"
    ax.set_xlabel("training images seen")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.set_title(label)
    return fig


#: The θ percentiles ``training_tests`` draws (the bands and the median): those that the
#: image protocols record (``hidden_theta``); records without all of them are left out.
THETA_BANDS = (5, 25, 50, 75, 95)


def training_tests(tests: list, pass_length: int | None = None) -> Any:
    """Tests during training (``epoch_tests`` and the final test): the class neurons' and the
    hidden-layer vote's accuracy (one line per test size), the hidden neurons assigned to each
    class and (where ``silent_per_class`` is recorded, on the right axis, one line per test size)
    those that fire on any test image, and (where ``hidden_theta`` holds the
    :data:`THETA_BANDS` percentiles) the spread of the hidden neurons' θ, against the training
    images seen. ``pass_length`` (training images per pass) draws the ends of the passes as
    dotted lines."""
    x = [r["images_trained"] for r in tests]
    theta = [(xi, r["hidden_theta"]) for xi, r in zip(x, tests, strict=True)
             if r.get("hidden_theta") and set(THETA_BANDS) <= set(r["hidden_theta"]["percentiles"])]
    fig, axes = plt.subplots(3 if theta else 2, 1, figsize=(6.5, 8.5 if theta else 6),
                             sharex=True)
    a1, a2 = axes[:2]
    if pass_length and x:
        for k, end in enumerate(range(pass_length, max(x), pass_length)):
            for ax in axes:
                ax.axvline(end, color="0.5", ls=":", lw=1,
                           label="end of a pass" if k == 0 and ax is a1 else None)
    # one line per read-out and test size: a final test on all test images is not joined to
    # tests on fewer
    for colour, (key, name) in enumerate((("test_accuracy", "class neurons"),
                                          ("test_accuracy_vote", "hidden vote"))):
        by_size: dict = {}
        for xi, r in zip(x, tests, strict=True):
            if r.get(key) is not None:
                by_size.setdefault(r.get("n_test_images"), []).append((xi, r[key] * 100))
        for n_img, pts in by_size.items():
            size = f" ({n_img} images)" if n_img and len(by_size) > 1 else ""
            a1.plot(*zip(*pts, strict=True), "o-" if len(pts) > 1 else "*",
                    ms=3 if len(pts) > 1 else 8, color=f"C{colour}", label=name + size)
    a1.set_ylabel("test accuracy (%)")
    a1.grid(alpha=0.3)
    a1.legend(loc="lower right")
    a1.set_title("tests during training")
    alloc = [(xi, r["hidden_allocation"]["neurons_per_class"])
             for xi, r in zip(x, tests, strict=True) if r.get("hidden_allocation")]
    if alloc:
        xs, n = zip(*alloc, strict=True)
        n = np.asarray(n)
        for c in range(n.shape[1]):
            a2.plot(xs, n[:, c], ".-", color=plt.cm.tab10(c), label=str(c))
        a2.legend(fontsize=7, title="class", title_fontsize=7, loc="center left",
                  bbox_to_anchor=(1.13, 0.5))
        # neurons that fire on any test image, one line per test size (more images, more fire)
        firing: dict = {}
        for xi, r in zip(x, tests, strict=True):
            a = r.get("hidden_allocation") or {}
            if a.get("silent_per_class") is not None:
                firing.setdefault(r.get("n_test_images"), []).append(
                    (xi, sum(a["neurons_per_class"]) - sum(a["silent_per_class"])))
        if firing:
            tw = a2.twinx()
            for n_img, pts in firing.items():
                size = f" ({n_img} images)" if n_img else ""
                tw.plot(*zip(*pts, strict=True), ("k--" if len(pts) > 1 else "k*"), lw=1.2,
                        ms=7, label=f"fire in the test{size}")
            tw.set_ylabel("hidden neurons that fire")
            tw.set_ylim(bottom=0)
            tw.legend(fontsize=7, loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=2,
                      frameon=False)
    a2.set_ylabel("hidden neurons assigned")
    a2.grid(alpha=0.3)
    if theta:
        a3 = axes[2]
        xs = [xi for xi, _ in theta]
        q = {p: [t["theta_mv"][t["percentiles"].index(p)] for _, t in theta]
             for p in THETA_BANDS}
        a3.fill_between(xs, q[5], q[95], color="C0", alpha=0.15, label="5–95 %")
        a3.fill_between(xs, q[25], q[75], color="C0", alpha=0.35, label="25–75 %")
        a3.plot(xs, q[50], "o-", ms=3, color="C0", label="median")
        a3.set_ylabel("hidden θ (mV)")
        a3.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
        a3.grid(alpha=0.3)
    axes[-1].set_xlabel("training images seen")
    return fig


#: Populations up to this size get one labelled y tick per neuron (e.g. the 10 class neurons).
TICK_EVERY_NEURON = 20


def raster(spikes: dict, title: str = "", t0: float = 0.0, sizes: dict | None = None,
           duration: float | None = None) -> Any:
    """``spikes``: {population: (times_ms, ids)} → one panel per population.

    Times are drawn from ``t0`` (e.g. the start of the presentation shown: 0 on the axis), over
    ``[0, duration]`` if given. ``sizes`` ({population: n}) sets each panel's y range to all ``n``
    neurons, so silent ones keep their row; populations of at most :data:`TICK_EVERY_NEURON`
    neurons get a tick per neuron. Without ``sizes`` only the populations that spiked are drawn.
    """
    pops = ([p for p in spikes if (sizes and p in sizes) or len(spikes[p][0])]
            or list(spikes))
    fig, axes = plt.subplots(len(pops), 1, figsize=(7, 1.6 * len(pops) + 0.6), sharex=True,
                             squeeze=False)
    for ax, p in zip(axes[:, 0], pops, strict=True):
        t, i = spikes[p]
        ax.plot(np.asarray(t, float) - t0, i, "|", ms=3, color="k")
        ax.set_ylabel(p)
        n = (sizes or {}).get(p)
        if n:
            ax.set_ylim(-0.5, n - 0.5)
            if n <= TICK_EVERY_NEURON:
                ax.set_yticks(range(n))
                ax.tick_params(axis="y", labelsize=6)
    if duration is not None:
        axes[-1, 0].set_xlim(0.0, duration)
    axes[-1, 0].set_xlabel("time from the start of the presentation (ms)" if t0 or duration
                           else "time (ms)")
    axes[0, 0].set_title(title)
    return fig
