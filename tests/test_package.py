"""Packaging: `pip install .` and `pip install -e .` into fresh venvs give a working `biolearn`
command, `biolearn.models` / `biolearn.hardware` / `biolearn.benchmarks` imports, and no generic
top-level names (models, hardware, benchmarks, cli) in site-packages."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GENERIC = ("models", "hardware", "benchmarks", "cli", "configs", "tests")


def _sh(args: list, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    res = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True,
                         timeout=timeout, env=env)
    assert res.returncode == 0, f"{args} failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res


def _copy_source(dst: Path) -> Path:
    """A clean copy of the source tree (as a fresh clone would have it)."""
    ignore = shutil.ignore_patterns(".git", "runs", "build", "dist", "*.egg-info", "__pycache__",
                                    ".pytest_cache", ".ruff_cache", ".hypothesis", ".venv")
    shutil.copytree(ROOT, dst, symlinks=True, ignore=ignore)
    return dst


def _venv(where: Path) -> tuple[Path, Path]:
    # --without-pip: the venv then uses the system's pip and setuptools (a venv's own bundled
    # setuptools can be too old to build wheels), and installing needs no network.
    _sh([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", where],
        cwd=where.parent)
    py = where / "bin" / "python"
    site = Path(_sh([py, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                    cwd=where.parent).stdout.strip())
    return py, site


def _check(py: Path, site: Path, tmp: Path, editable: bool) -> None:
    venv = py.parent.parent
    exe = venv / "bin" / "biolearn"
    assert exe.exists(), "console script not installed"
    out = _sh([exe, "--help"], cwd=tmp).stdout
    assert "Usage: biolearn" in out and "run" in out and "inspect" in out
    assert _sh([exe, "--version"], cwd=tmp).stdout.strip().startswith("biolearn ")
    probe = (
        "import importlib.util as u, biolearn, biolearn.models, biolearn.hardware, "
        "biolearn.benchmarks, biolearn.cli\n"
        "print(biolearn.__file__)\n"
        "print(biolearn.models.__file__)\n"
        f"print([n for n in {GENERIC!r} if u.find_spec(n) is not None])\n"
    )
    lines = _sh([py, "-c", probe], cwd=tmp).stdout.splitlines()
    if editable:
        assert lines[0].startswith(str(tmp / "src")), lines[0]
        assert lines[1].startswith(str(tmp / "src" / "models")), lines[1]
    else:
        assert lines[0].startswith(str(venv)), lines[0]
        assert lines[1].startswith(str(site / "biolearn" / "models")), lines[1]
    assert lines[2] == "[]", f"generic top-level names importable: {lines[2]}"
    top = {p.name.split(".")[0] for p in site.iterdir()}
    assert not top & set(GENERIC), f"generic names in site-packages: {top & set(GENERIC)}"
    # no .pth file may put the source root (with models/, hardware/, cli.py) on sys.path
    for pth in site.glob("*.pth"):
        for line in pth.read_text().splitlines():
            assert Path(line.strip()) != tmp / "src", f"{pth.name} adds the source root"


TREES = {"biolearn": "biolearn", "biolearn.models": "models", "biolearn.hardware": "hardware",
         "biolearn.benchmarks": "benchmarks"}


def _source_packages() -> set[str]:
    """Every package on disk under the four source trees, by its installed name."""
    found = set()
    for name, folder in TREES.items():
        base = ROOT / folder
        for init in base.rglob("__init__.py"):
            rel = init.parent.relative_to(base)
            found.add(".".join([name, *rel.parts]) if rel.parts else name)
    return found


def test_pyproject_lists_every_package_under_biolearn():
    tomllib = pytest.importorskip("tomllib")
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(conf["packages"])
    missing = _source_packages() - listed
    assert not missing, f"on disk but not in pyproject (would not install): {missing}"
    assert all(p == "biolearn" or p.startswith("biolearn.") for p in listed)
    for name, folder in TREES.items():
        assert conf["package-dir"][name] == folder
    assert tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"] == {
        "biolearn": "biolearn.cli:main"}


@pytest.mark.slow
def test_install_and_editable_install_in_fresh_venvs(tmp_path):
    src = _copy_source(tmp_path / "src")
    for editable in (False, True):
        venv = tmp_path / ("venv_editable" if editable else "venv")
        py, site = _venv(venv)
        cmd = [py, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "-q"]
        _sh(cmd + (["-e", "."] if editable else ["."]), cwd=src)
        _check(py, site, tmp_path, editable)
        if not editable:
            # the wheel must carry the CLI module itself, not a dangling link to ../cli.py
            cli_file = site / "biolearn" / "cli.py"
            assert cli_file.is_file() and not cli_file.is_symlink()
            # every source module landed under biolearn/
            for name, folder in TREES.items():
                dst = site.joinpath(*name.split("."))
                for f in (src / folder).rglob("*.py"):
                    rel = f.relative_to(src / folder)
                    assert (dst / rel).is_file(), f"{folder}/{rel} missing from the install"
