"""Copy a finished sym-STDP run with the spread of its hidden neurons' θ scaled about its mean.

    python rescale_theta.py RUN_DIR OUT_DIR [--factor K] [--floor F] [--n-test N]

writes OUT_DIR/checkpoint.npz, RUN_DIR's with θ' = max(mean(θ) + K·(θ − mean(θ)), F) for the
hidden neurons (K 1 and no F by default), and OUT_DIR/config.resolved.yaml, RUN_DIR's with
``data.n_test`` set to N. ``biolearn run OUT_DIR/config.resolved.yaml --out OUT_DIR --resume``
then runs only the final test: the same weights, the same frozen network, another θ. The θ row
of the checkpoint's state is the one that equals ``theta_exc`` in RUN_DIR/weights.h5.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import h5py
import numpy as np
import yaml


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--factor", type=float, default=1.0)
    ap.add_argument("--floor", type=float, default=-np.inf)
    ap.add_argument("--n-test", type=int, default=2000)
    a = ap.parse_args()
    if not (a.run_dir / "weights.h5").exists():
        raise SystemExit(f"{a.run_dir} has no weights.h5: give the folder of a finished run")
    with h5py.File(a.run_dir / "weights.h5", "r") as f:
        theta = f["theta_exc"][:]
    with np.load(a.run_dir / "checkpoint.npz", allow_pickle=False) as f:
        z = dict(f)
    pos = json.loads(str(z["_extra"]))["pos"]
    if pos["phase"] < len(json.loads(str(z["_extra"])).get("phase_epochs", [])):
        raise SystemExit(f"{a.run_dir} has not finished training: its checkpoint would go on "
                         "training with the changed θ")
    n_in = z["S"].shape[1] - 2 * len(theta) - 10  # inputs, hidden, inhibitory, class
    hidden = slice(n_in, n_in + len(theta))
    rows = [r for r in range(z["S"].shape[0]) if np.array_equal(z["S"][r, hidden], theta)]
    if len(rows) != 1:
        raise SystemExit(f"no single state row holds theta_exc in {a.run_dir}")
    z["S"][rows[0], hidden] = np.maximum(theta.mean() + a.factor * (theta - theta.mean()),
                                         a.floor)
    a.out_dir.mkdir(parents=True, exist_ok=True)
    np.savez(a.out_dir / "checkpoint.npz", **z)
    cfg = yaml.safe_load((a.run_dir / "config.resolved.yaml").read_text())
    cfg["data"]["n_test"] = a.n_test
    (a.out_dir / "config.resolved.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))


if __name__ == "__main__":
    main()
