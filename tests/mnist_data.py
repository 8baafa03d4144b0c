"""Where the tests find the full MNIST copy: ``$BIOLEARN_DATA`` or ``../shared/data`` beside the
checkout; tests that need it are skipped with a reason otherwise."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def mnist_root() -> str | None:
    """The folder holding ``mnist/`` with the IDX files, or ``None``."""
    env = os.environ.get("BIOLEARN_DATA")
    for cand in ([env] if env else []) + [str(ROOT.parent / "shared" / "data")]:
        if cand and (Path(cand) / "mnist" / "train-labels-idx1-ubyte.gz").exists():
            return cand
    return None


needs_mnist = pytest.mark.skipif(mnist_root() is None,
                                 reason="full MNIST copy not found (set BIOLEARN_DATA)")
