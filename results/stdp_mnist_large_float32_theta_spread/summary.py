"""Collect the θ-spread tests kept here into summary.json and draw theta_spread.png.

    python summary.py

Each test folder is named RUN_kK (θ' = mean(θ) + K·(θ − mean(θ))) or RUN_floor40 (θ below
40 mV raised to 40 mV); RUN is seed0, seed1 (float32 θ) or float64_seed0_pass2.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

HERE = Path(__file__).parent
LABELS = {"seed0": "float32 θ, seed 0, after pass 6", "seed1": "float32 θ, seed 1, after pass 5",
          "float64_seed0_pass2": "float64 θ (decaying), seed 0, after pass 2"}


def collect() -> list[dict]:
    rows = []
    for d in sorted(HERE.iterdir()):
        m = re.fullmatch(r"(seed0|seed1|float64_seed0_pass2)_(?:k([\d.]+)|floor40)", d.name)
        if not m or not (d / "results.json").exists():
            continue
        r = json.loads((d / "results.json").read_text())["metrics"]
        a = r["hidden_allocation"]
        rows.append({"probe": d.name, "run": m[1], "factor": float(m[2] or 1.0),
                     "floor_mv": None if m[2] else 40.0,
                     "test_accuracy": r["test_accuracy"],
                     "test_accuracy_vote": r["test_accuracy_vote"],
                     "test_accuracy_vote_in_sample": r["test_accuracy_vote_in_sample"],
                     "n_test_images": r["n_test_images"],
                     "hidden_neurons_that_fire": sum(a["neurons_per_class"])
                     - sum(a["silent_per_class"])})
    return sorted(rows, key=lambda r: (r["run"], r["floor_mv"] is not None, -r["factor"]))


def draw(rows: list[dict]) -> None:
    fig, ax = plt.subplots(figsize=(9.5, 4.3))
    for i, (run, label) in enumerate(LABELS.items()):
        pts = sorted((r["factor"], 100 * r["test_accuracy"], 100 * r["test_accuracy_vote"])
                     for r in rows if r["run"] == run and r["floor_mv"] is None)
        if not pts:
            continue
        k, acc, vote = zip(*pts, strict=True)
        ax.plot(k, acc, "o-", color=f"C{i}", label=f"{label}: class neurons")
        ax.plot(k, vote, "s:", color=f"C{i}", ms=4, label="    hidden-layer vote")
        for r in rows:
            if r["run"] == run and r["floor_mv"]:
                ax.plot([1.02], [100 * r["test_accuracy"]], "*", ms=11, color=f"C{i}",
                        label="    θ below 40 mV raised to 40 mV (class neurons)")
    ax.set_xlabel("k: the spread of θ kept at test, θ' = mean(θ) + k·(θ − mean(θ))")
    ax.set_ylabel("accuracy, first 2000 test images (%)")
    ax.set_ylim(65, 95)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    ax.set_title("MNIST, 6400 hidden: the same trained weights, θ changed at test", fontsize=9)
    fig.tight_layout()
    fig.savefig(HERE / "theta_spread.png", dpi=110)


if __name__ == "__main__":
    rows = collect()
    (HERE / "summary.json").write_text(json.dumps(rows, indent=1) + "\n")
    draw(rows)
