"""NWB export: spikes (Units), presentations (trials), weights and provenance; checked by pynwb
reading the file back and by nwbinspector."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

pynwb = pytest.importorskip("pynwb")

from biolearn.io.nwb import write_nwb  # noqa: E402
from biolearn.io.sonata import SpikeWriter, read_spikes  # noqa: E402
from biolearn.io.store import save_weights, write_json_atomic  # noqa: E402

SIZES = {"exc": 30, "inh": 7, "silent": 4}


def _make_run(root: Path, seed: int = 0, sorting: str = "none") -> dict:
    """A run directory as a recipe leaves it: spikes.h5 (written in time-ordered batches, like a
    simulation), weights.h5 and results.json."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    truth = {}
    with SpikeWriter(root / "spikes.h5", SIZES, sorting=sorting, chunk=16) as wr:
        for pop, n in SIZES.items():
            k = 0 if pop == "silent" else int(rng.integers(50, 200))
            t = np.sort(rng.uniform(0.0, 1000.0, k)).round(1)  # 0.1 ms steps: ties happen
            ids = rng.integers(0, n - 1, k)  # the last neuron of each population stays silent
            for a in range(0, k, 37):
                wr.write(pop, t[a:a + 37], ids[a:a + 37])
            truth[pop] = (t, ids)
        wr.write_presentations("test", np.arange(4) * 250.0, np.array([3, 1, 4, 1]),
                               {"duration_ms": np.full(4, 200.0)})
    save_weights(root / "weights.h5", {"w_in": rng.random((5, SIZES["exc"])),
                                       "exc_inh/w": rng.random(12),
                                       "exc_inh/i": np.arange(12), "exc_inh/j": np.arange(12) % 7,
                                       "theta": rng.random(SIZES["exc"])},
                 {"model": "test", "dt_ms": 0.1})
    config = {"model": "network", "name": "nwb_test", "seed": seed, "params": {"dt_ms": 0.1}}
    write_json_atomic(root / "results.json", {
        "config": config, "metrics": {"spikes.exc": 1}, "seed": seed, "status": "completed",
        "provenance": {"start_utc": "2024-05-06T07:08:09Z", "git_commit": "abc",
                       "argv": ["biolearn", "run", "x.yaml"]}})
    return {"truth": truth, "config": config}


def _units(path: Path) -> dict:
    with pynwb.NWBHDF5IO(str(path), "r") as io:
        f = io.read()
        u = f.units
        out = {}
        for k in range(len(u)):
            pop, nid = u["population"][k], int(u["node_id"][k])
            out[(pop, nid)] = np.asarray(u["spike_times"][k])
        return out


@pytest.mark.parametrize("max_spikes,chunk_rows", [(1 << 22, 1 << 20), (5, 3)])
def test_nwb_spikes_exact(tmp_path, max_spikes, chunk_rows):
    run = _make_run(tmp_path / "run")
    out = write_nwb(tmp_path / "run", tmp_path / "out.nwb", max_spikes=max_spikes,
                    chunk_rows=chunk_rows)
    units = _units(out)
    assert len(units) == sum(SIZES.values())  # silent neurons are units too
    back = read_spikes(tmp_path / "run" / "spikes.h5")
    for pop, n in SIZES.items():
        t, ids = back[pop]
        np.testing.assert_array_equal(t, run["truth"][pop][0])
        for k in range(n):
            got = units[(pop, k)]
            mine = np.sort(t[ids == k]) / 1000.0
            assert got.dtype == np.float64 and len(got) == len(mine)
            np.testing.assert_array_equal(got, mine)  # the same float64 values: ms / 1000
            assert np.all(np.diff(got) >= 0)
    total = sum(len(v) for v in units.values())
    assert total == sum(len(run["truth"][p][0]) for p in SIZES)


def test_nwb_metadata_trials_weights(tmp_path):
    run = _make_run(tmp_path / "run")
    out = write_nwb(tmp_path / "run" / "spikes.h5")  # siblings found; default name spikes.nwb
    assert out == tmp_path / "run" / "spikes.nwb"
    with pynwb.NWBHDF5IO(str(out), "r") as io:
        f = io.read()
        assert json.loads(f.experiment_description) == run["config"]
        notes = json.loads(f.notes)
        assert notes["provenance"]["git_commit"] == "abc" and notes["status"] == "completed"
        assert f.session_start_time.isoformat() == "2024-05-06T07:08:09+00:00"
        assert f.units.resolution == pytest.approx(1e-4)
        tr = f.trials.to_dataframe()
        np.testing.assert_allclose(tr["start_time"], [0.0, 0.25, 0.5, 0.75])
        np.testing.assert_allclose(tr["stop_time"], [0.2, 0.45, 0.7, 0.95])
        assert list(tr["label"]) == [3, 1, 4, 1]
        assert np.isnan(tr["intensity"]).all()
        assert set(tr["presentation_group"]) == {"test"}
        mod = f.processing["weights"]
        assert set(mod.data_interfaces) == {"w_in", "exc_inh", "theta"}
        syn = mod["exc_inh"].to_dataframe()
        np.testing.assert_array_equal(syn["j"], np.arange(12) % 7)
        assert np.asarray(mod["w_in"]["values"].data).shape == (5, SIZES["exc"])
        assert '"dt_ms": 0.1' in mod.description


def test_nwbinspector_no_critical(tmp_path):
    from nwbinspector import Importance, inspect_nwbfile

    _make_run(tmp_path / "run", sorting="by_time")
    out = write_nwb(tmp_path / "run", tmp_path / "x.nwb")
    bad = [m for m in inspect_nwbfile(nwbfile_path=str(out))
           if m is not None and m.importance.value >= Importance.CRITICAL.value]
    assert not bad, [(m.importance, m.check_function_name, m.message) for m in bad]


def test_nwb_killed_writer_tail_and_bare_file(tmp_path):
    """Rows a killed writer reserved but never wrote (NaN / 2**64-1) are not exported; a spike
    file with no results.json next to it still exports (start time from the file)."""
    p = tmp_path / "spikes.h5"
    with SpikeWriter(p, {"a": 3}) as wr:
        wr.write("a", [1.0, 2.0, 3.0], [0, 1, 0])
    with h5py.File(p, "r+") as f:
        for key in ("timestamps", "node_ids"):
            f["spikes/a"][key].resize((5,))
    out = write_nwb(p, tmp_path / "a.nwb", weights=False)
    units = _units(out)
    np.testing.assert_array_equal(units[("a", 0)], [0.001, 0.003])
    np.testing.assert_array_equal(units[("a", 1)], [0.002])
    assert len(units[("a", 2)]) == 0


@pytest.mark.parametrize("short", ["timestamps", "node_ids"])
def test_nwb_datasets_of_unequal_length(tmp_path, short):
    """A writer killed between extending its two datasets leaves them unequal: the common
    prefix is exported."""
    p = tmp_path / "spikes.h5"
    with SpikeWriter(p, {"a": 3}) as wr:
        wr.write("a", np.arange(10) * 1.0, np.arange(10) % 3)
    with h5py.File(p, "r+") as f:
        f[f"spikes/a/{short}"].resize((7,))
    units = _units(write_nwb(p, tmp_path / "a.nwb", weights=False, chunk_rows=4))
    for k in range(3):
        np.testing.assert_array_equal(units[("a", k)], np.arange(k, 7, 3) / 1000.0)


def test_nwb_errors(tmp_path):
    from biolearn.errors import BiolearnError

    with pytest.raises(BiolearnError, match="does not exist"):
        write_nwb(tmp_path / "nope")
    with pytest.raises(BiolearnError, match="no spikes.h5"):
        write_nwb(tmp_path)


def test_cli_export_nwb(tmp_path):
    from biolearn.cli import main

    _make_run(tmp_path / "run")
    with pytest.raises(SystemExit) as e:
        main(["export", "nwb", str(tmp_path / "run"), "-o", str(tmp_path / "cli.nwb")])
    assert e.value.code == 0
    assert len(_units(tmp_path / "cli.nwb")) == sum(SIZES.values())
