"""biolearn.backends: one interface chosen by name, the same spikes from every backend, and the
`biolearn run --backend NAME` dispatch. NEST runs in tests/nest_cases.py (its own process: NEST
and torch cannot share one)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from spike_cases import grid_source, trains

from biolearn.backends import Backend, backends, evaluation_for, get_backend
from biolearn.engine import LIF, Network, SpikeMonitor, SpikeSource, connect
from biolearn.errors import BiolearnError

ROOT = Path(__file__).resolve().parents[1]
DT = 0.5


def small_network(seed: int = 2) -> Network:
    """On-grid input spikes → exact current-based LIF → Euler conductance LIF with delays."""
    rng = np.random.default_rng(seed)
    net = Network(dt=DT)
    idx, tim = grid_source(rng, 30, 20.0, 300.0, DT)
    net.add(SpikeSource("in", 30, idx, tim))
    net.add(LIF("a", 12, synapse="current", integration="exact", t_ref=2.0, i_bias=6.0))
    net.add(LIF("b", 8, synapse="conductance", integration="euler", t_ref=3.0, i_bias=8.0))
    net.connect(connect.dense("in_a", "in", "a", rng.uniform(0, 2.5, (30, 12)), delay=1.0))
    net.connect(connect.dense("a_b", "a", "b", rng.uniform(0, 0.5, (12, 8)), delay=1.5))
    net.monitor(SpikeMonitor())
    return net


def test_builtin_backends_by_name():
    table = backends()
    assert {"biolearn", "brian2", "nest"} <= set(table)
    for name, be in table.items():
        assert isinstance(be, Backend) and be.name == name and get_backend(name) is be
    assert get_backend("biolearn").available()


def test_unknown_backend_is_a_one_line_error():
    with pytest.raises(BiolearnError) as e:
        get_backend("nets")
    msg = str(e.value)
    assert "\n" not in msg and "unknown backend 'nets'" in msg and "did you mean 'nest'" in msg


def test_engine_backend_is_the_engine_and_writes_the_spike_file(tmp_path):
    from biolearn.io.sonata import read_spikes

    net = small_network()
    ref = net.compile(seed=4).run(300.0)["spikes"]
    res = get_backend("biolearn").run(net, 300.0, seed=4, out_spikes_path=tmp_path / "s.h5")
    assert res["timing"]["simulate_s"] > 0
    back = read_spikes(tmp_path / "s.h5")
    assert len(ref["b"][0]) > 10
    for pop, (t, i) in ref.items():
        assert np.array_equal(res["spikes"][pop][0], t) and np.array_equal(res["spikes"][pop][1], i)
        assert np.array_equal(back[pop][0], t) and np.array_equal(back[pop][1], i)


@pytest.mark.brian2
def test_brian2_backend_gives_the_engines_spikes():
    """The same deterministic network through the interface: identical spike trains (Brian2's
    numpy target integrates the same equations on the same grid)."""
    pytest.importorskip("brian2")
    net = small_network()
    ours = get_backend("biolearn").run(net, 300.0)["spikes"]
    theirs = get_backend("brian2").run(net, 300.0, target="numpy")["spikes"]
    assert trains(theirs, DT) == trains(ours, DT)
    assert len(ours["a"][0]) > 10


def test_cli_evaluation_is_chosen_by_backend_and_model(monkeypatch):
    assert evaluation_for("biolearn", "sym_stdp") is None  # the engine's own test phase
    with pytest.raises(BiolearnError) as e:
        evaluation_for("nest", "oja_pca")
    assert "--backend nest evaluates sym_stdp runs, not 'oja_pca'" in str(e.value)
    with pytest.raises(BiolearnError) as e:
        evaluation_for("brian2", "sym_stdp")
    assert "or use --backend nest" in str(e.value)
    monkeypatch.setattr(type(get_backend("nest")), "module", "nest_is_not_installed")
    with pytest.raises(BiolearnError) as e:
        evaluation_for("nest", "sym_stdp")
    msg = str(e.value)
    assert "\n" not in msg and "nest-simulator is not installed" in msg
    assert "pip install 'biolearn[nest]'" in msg


def test_cli_rejects_an_unknown_backend_before_training(tmp_path, monkeypatch, capsys):
    from biolearn import runner
    from biolearn.cli import cli

    def no_training(*a, **kw):
        raise AssertionError("training started before the backend was checked")

    monkeypatch.setattr(runner, "execute", no_training)
    code = cli.main(["run", str(ROOT / "configs" / "stdp_mnist_smoke.yaml"), "--out",
                     str(tmp_path / "run"), "--quiet", "--backend", "brain2"],
                    standalone_mode=False)
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "unknown backend 'brain2'" in err and "did you mean 'brian2'" in err
    assert not (tmp_path / "run").exists()
