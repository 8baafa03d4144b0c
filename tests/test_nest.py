"""NEST backend tests, run in a child process: NEST and torch each bring an OpenMP runtime and
crash when loaded into one process, and other test modules import torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("nest")


def test_nest_backend_cases():
    here = Path(__file__).resolve().parent
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        str(here / "nest_cases.py")], capture_output=True, text=True,
                       timeout=900, cwd=here.parent)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
