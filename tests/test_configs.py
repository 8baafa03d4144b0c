"""Every shipped config validates against its recipe's parameters."""

from __future__ import annotations

from pathlib import Path

import pytest

from biolearn.config import load_config

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_config_validates(path):
    cfg = load_config(path, [])
    assert cfg.model and cfg.name == path.stem


def test_readme_lists_every_config():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    missing = [p.name for p in CONFIGS if f"configs/{p.name}" not in readme]
    assert not missing, f"README does not mention: {missing}"
