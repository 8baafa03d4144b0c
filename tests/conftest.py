"""Shared pytest setup: headless plotting and hypothesis profiles suited to shared CI machines."""

from __future__ import annotations

import os

os.environ.setdefault("MPLBACKEND", "Agg")  # never open a window, also without a display

try:
    from hypothesis import HealthCheck, settings
except ImportError:  # hypothesis is a dev extra; tests that need it import it themselves
    pass
else:
    # Timing on a busy 2-core machine is noisy: no per-example deadline. In CI, derandomize so
    # a run is reproducible from its log.
    settings.register_profile("default", deadline=None)
    settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True,
                              suppress_health_check=[HealthCheck.too_slow])
    settings.load_profile("ci" if os.environ.get("CI") else "default")


import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _no_system_datasets(monkeypatch, tmp_path_factory):
    """Tests see only the data roots they set: Debian's /usr/share/datasets is replaced by an
    empty folder (tests of that search place point it elsewhere themselves)."""
    from biolearn.data import mnist

    monkeypatch.setattr(mnist, "SYSTEM_DATASETS", tmp_path_factory.getbasetemp() / "no-system")
