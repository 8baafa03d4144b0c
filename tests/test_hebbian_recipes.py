"""The Hebbian-family configs run end to end through ``biolearn run`` (shortened with --set)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from biolearn.cli import cli

ROOT = Path(__file__).resolve().parents[1]


def _run(tmp_path, monkeypatch, config: str, sets: list[str]) -> dict:
    monkeypatch.chdir(tmp_path)
    args = ["run", str(ROOT / "configs" / config), "--out", "o", "--quiet"]
    for s in sets:
        args += ["--set", s]
    res = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert list(Path("o").glob("*.png")), "no figure written"
    return json.loads(Path("o/results.json").read_text())["metrics"]


def test_oja_pca_recipe(tmp_path, monkeypatch):
    m = _run(tmp_path, monkeypatch, "oja_pca.yaml", ["params.bcm_samples=30000"])
    assert m["oja_abs_cos_top_pc"] > 0.99 and abs(m["oja_norm"] - 1) < 0.02
    assert m["gha_min_abs_cos"] > 0.99
    assert m["bcm_selected_response"] == pytest.approx(m["bcm_selected_response_theory"],
                                                       abs=0.2)


def test_foldiak_recipe(tmp_path, monkeypatch):
    m = _run(tmp_path, monkeypatch, "foldiak_bars.yaml", ["params.n_test=1000"])
    assert m["n_bars_covered"] >= 14
    assert m["firing_probability_mean"] == pytest.approx(0.125, abs=0.02)


def test_similarity_matching_recipe(tmp_path, monkeypatch):
    m = _run(tmp_path, monkeypatch, "similarity_matching.yaml",
             ["params.dim=100", "params.k=10", "params.n_samples=8000"])
    assert m["psp_final_subspace_error"] < 1e-2
    assert m["psw_final_whitening_error"] < 0.15


def test_curl_descent_recipe(tmp_path, monkeypatch):
    m = _run(tmp_path, monkeypatch, "curl_descent.yaml",
             ["params.n_in=40", "params.n_hidden=8", "params.n_out=4", "params.n_train=80",
              "params.activations=[linear]", "params.fractions=[0.0, 0.125, 1.0]",
              "params.n_steps=800"])
    assert m["linear_hidden_max_fraction_reaching_gd"] >= 0.125
    assert 0.125 < m["linear_hidden_min_fraction_failing"] <= 1.0
    assert Path("o/phase_diagram.json").exists()
