"""Checkpoints of a protocol run for ``--resume``: the whole simulation state
(:meth:`biolearn.engine.Simulation.state_dict`, RNG included) and the loop position, in one
``.npz`` file written atomically."""

from __future__ import annotations

import json
import zipfile
from typing import Any

import numpy as np

_UNREADABLE = (OSError, EOFError, ValueError, KeyError, TypeError, zipfile.BadZipFile,
               zipfile.LargeZipFile, AttributeError)
"""What reading a file that is not a complete checkpoint raises."""


def save_checkpoint(path: Any, sim: Any, extra: dict) -> None:
    """Atomically write the simulation state and loop position (a failed write leaves the previous
    checkpoint and no temporary file)."""
    from pathlib import Path

    from biolearn.io.store import atomic_path

    path = Path(path)
    state = sim.state_dict()
    rng = json.dumps(state.pop("rng"))
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, _rng=np.array(rng), _extra=np.array(json.dumps(extra)),
                     t=state.pop("t"), **state)
    except OSError as e:  # name the checkpoint, not its temporary file
        raise OSError(e.errno, e.strerror or str(e), str(path)) from e


def load_checkpoint(path: Any, sim: Any) -> dict:
    """Restore a :func:`save_checkpoint` file into ``sim``; returns the loop position.

    A file that is not a complete checkpoint (cut short, overwritten, another format) gives a
    one-line :class:`BiolearnError` saying how to start again."""
    from biolearn.errors import BiolearnError

    try:
        with np.load(path, allow_pickle=False) as z:
            d = {k: z[k] for k in z.files if not k.startswith("_")}
            d["rng"] = json.loads(str(z["_rng"]))
            d["t"] = int(d["t"])
            extra = json.loads(str(z["_extra"]))
        if not isinstance(extra, dict) or "pos" not in extra:
            raise ValueError("no loop position")
    except _UNREADABLE as e:
        reason = " ".join(str(e).split())[:120] or type(e).__name__
        if "allow_pickle" in reason or "pickle" in reason:
            reason = "not a checkpoint written by biolearn"
        raise BiolearnError(
            f"the checkpoint is unreadable ({type(e).__name__}: {reason})", f"file {path}",
            "the run cannot continue from it: start it again with --overwrite (same --out), or "
            "restore the file") from None
    sim.load_state_dict(d)
    return extra


def saved_extra(path: Any) -> dict | None:
    """The loop position and the rest that :func:`save_checkpoint` saved beside the state, read
    without the state; None when there is no readable checkpoint."""
    try:
        with np.load(path, allow_pickle=False) as z:
            extra = json.loads(str(z["_extra"]))
    except _UNREADABLE:
        return None
    return extra if isinstance(extra, dict) else None
