"""SONATA spike files: layout, third-party reading, streaming, crash safety, memory, inspection.

The layout checks follow the SONATA spike-file specification (Dai et al. 2020, PLoS Comput Biol
16:e1007696) and read the file through h5py's low-level type API, independently of the writer's
own constants; libsonata (the SONATA reference reader) is the independent implementation.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import tracemalloc
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest

import biolearn
from biolearn.errors import BiolearnError
from biolearn.io import (
    SpikeWriter,
    describe,
    populations,
    read_presentations,
    read_spikes,
    recover_spike_file,
    save_weights,
)

REPO = Path(biolearn.__file__).resolve().parent.parent


def _random_spikes(rng: np.random.Generator, n: int, n_nodes: int, t_max: float = 1000.0):
    t = np.sort(rng.uniform(0.0, t_max, n))
    ids = rng.integers(0, n_nodes, n)
    return t, ids


def _write(path: Path, spikes: dict, sorting: str = "none", **kw) -> None:
    sizes = {p: int(ids.max()) + 1 if ids.size else 0 for p, (_, ids) in spikes.items()}
    with SpikeWriter(path, sizes, sorting=sorting, **kw) as w:
        for pop, (t, ids) in spikes.items():
            w.write(pop, t, ids)


# ---------------------------------------------------------------------- layout
def test_file_has_exact_sonata_layout(tmp_path):
    rng = np.random.default_rng(1)
    spikes = {"exc": _random_spikes(rng, 500, 40), "inh": _random_spikes(rng, 120, 10)}
    p = tmp_path / "spikes.h5"
    _write(p, spikes, sorting="by_time")
    with h5py.File(p, "r") as f:
        magic = f.attrs.get_id("magic")
        assert magic.dtype == np.dtype("uint32") and magic.shape == ()
        assert int(f.attrs["magic"]) == 0x0A7A
        version = f.attrs.get_id("version")
        assert version.dtype == np.dtype("uint32")
        assert list(f.attrs["version"]) == [0, 1]
        assert set(f["spikes"]) == {"exc", "inh"}
        for pop, (t, ids) in spikes.items():
            g = f["spikes"][pop]
            # `sorting` must be an HDF5 ENUM over int8 with members none=0, by_id=1, by_time=2.
            tid = g.attrs.get_id("sorting").get_type()
            assert tid.get_class() == h5py.h5t.ENUM
            base = tid.get_super()
            assert base.get_class() == h5py.h5t.INTEGER and base.get_size() == 1
            assert base.get_sign() == h5py.h5t.SGN_2
            members = {tid.get_member_name(i).decode(): tid.get_member_value(i)
                       for i in range(tid.get_nmembers())}
            assert members == {"none": 0, "by_id": 1, "by_time": 2}
            assert int(g.attrs["sorting"]) == 2
            ts, ns = g["timestamps"], g["node_ids"]
            assert ts.dtype == np.dtype("float64") and ns.dtype == np.dtype("uint64")
            assert ts.ndim == ns.ndim == 1 and ts.shape == ns.shape == t.shape
            units = ts.attrs["units"]
            assert (units.decode() if isinstance(units, bytes) else units) == "ms"
            np.testing.assert_array_equal(ts[()], t)
            np.testing.assert_array_equal(ns[()], ids.astype(np.uint64))
    assert populations(p) == ["exc", "inh"]


def test_presentations_live_outside_spikes(tmp_path):
    p = tmp_path / "spikes.h5"
    with SpikeWriter(p, ["exc"]) as w:
        w.write("exc", [1.0], [0])
        w.write_presentations("input", [0.0, 350.0], [3, 7], {"duration_ms": [350.0, 350.0],
                                                              "intensity": 2.0})
        w.write_presentations("input", [700.0], [1], {"duration_ms": [350.0]})
        w.write_presentations("words", [0.0], ["cat"], {})
    with h5py.File(p, "r") as f:
        assert set(f["spikes"]) == {"exc"}
        assert set(f["spikes/exc"]) == {"timestamps", "node_ids"}
    pres = read_presentations(p)
    np.testing.assert_array_equal(pres["input"]["start_ms"], [0.0, 350.0, 700.0])
    np.testing.assert_array_equal(pres["input"]["labels"], [3, 7, 1])
    np.testing.assert_array_equal(pres["input"]["duration_ms"], [350.0] * 3)
    assert pres["input"]["intensity"] == 2.0
    assert list(pres["words"]["labels"]) == ["cat"]
    with SpikeWriter(tmp_path / "b.h5", ["exc"]) as w, pytest.raises(BiolearnError):
        w.write_presentations("input", [0.0, 1.0], [3], {})


# ---------------------------------------------------------------------- libsonata
@pytest.mark.parametrize("sorting", ["by_time", "by_id", "none"])
def test_libsonata_reads_identical_spikes(tmp_path, sorting):
    libsonata = pytest.importorskip("libsonata")
    rng = np.random.default_rng(2)
    t = np.round(rng.uniform(0, 500, 3000), 1)  # rounding creates equal-time ties
    ids = rng.integers(0, 200, 3000)
    p = tmp_path / "spikes.h5"
    with SpikeWriter(p, {"V1": 200}, sorting=sorting, chunk=256) as w:
        for a in range(0, 3000, 700):
            w.write("V1", t[a:a + 700], ids[a:a + 700])
    reader = libsonata.SpikeReader(str(p))
    assert reader.get_population_names() == ["V1"]
    pop = reader["V1"]
    assert pop.sorting == sorting
    got = pop.get()
    assert sorted(got) == sorted(zip(ids.tolist(), t.tolist(), strict=True))
    if sorting == "by_time":
        times = [s[1] for s in got]
        assert times == sorted(times)
    if sorting == "by_id":
        assert got == sorted(got)  # node id, then time
    if sorting != "none":
        # libsonata's node-id and time-window selection must agree with a plain filter
        sel = pop.get(node_ids=[3, 17], tstart=100.0, tstop=300.0)
        want = [(int(i), float(x)) for i, x in zip(ids, t, strict=True)
                if i in (3, 17) and 100.0 <= x <= 300.0]
        assert sorted(sel) == sorted(want)


def test_sorting_on_close_matches_python_sort(tmp_path):
    rng = np.random.default_rng(3)
    t = rng.uniform(0, 100, 5000)
    ids = rng.integers(0, 50, 5000)
    for sorting, key in (("by_time", lambda s: (s[0], s[1])), ("by_id", lambda s: (s[1], s[0]))):
        p = tmp_path / f"{sorting}.h5"
        with SpikeWriter(p, ["a"], sorting=sorting, chunk=512) as w:
            w.write("a", t[:2500], ids[:2500])
            w.write_presentations("a", [0.0], [1])
            w.write("a", t[2500:], ids[2500:])
        got_t, got_ids = read_spikes(p)["a"]
        expect = sorted(zip(t.tolist(), ids.tolist(), strict=True), key=key)
        assert list(zip(got_t.tolist(), got_ids.tolist(), strict=True)) == expect
        assert read_presentations(p)["a"]["labels"].tolist() == [1]  # survives the rewrite
        with h5py.File(p, "r") as f:
            assert int(f.attrs["magic"]) == 0x0A7A
            assert h5py.check_enum_dtype(f["spikes/a"].attrs.get_id("sorting").dtype)
        assert not list(tmp_path.glob("*.tmp"))


def test_unsorted_stream_is_marked_none(tmp_path):
    p = tmp_path / "s.h5"
    with SpikeWriter(p, ["a"], sorting="none") as w:
        w.write("a", [5.0, 1.0], [0, 1])
    with h5py.File(p, "r") as f:
        assert int(f["spikes/a"].attrs["sorting"]) == 0
        np.testing.assert_array_equal(f["spikes/a/timestamps"][()], [5.0, 1.0])


# ---------------------------------------------------------------------- streaming
def test_many_small_writes_equal_one_big_write(tmp_path):
    rng = np.random.default_rng(4)
    t, ids = _random_spikes(rng, 20_000, 300)
    one = tmp_path / "one.h5"
    many = tmp_path / "many.h5"
    _write(one, {"p": (t, ids)}, chunk=1000)
    cuts = np.sort(rng.integers(0, t.size, 400))
    cuts = np.concatenate([[0], cuts, cuts[:5], [t.size]])  # includes empty pieces
    cuts.sort()
    with SpikeWriter(many, {"p": 300}, chunk=1000) as w:
        for a, b in zip(cuts[:-1], cuts[1:], strict=True):
            w.write("p", t[a:b], ids[a:b])
        w.write("p", t[cuts[-1]:], ids[cuts[-1]:])
        assert w.n_spikes("p") == t.size
    with h5py.File(one, "r") as f1, h5py.File(many, "r") as f2:
        for key in ("timestamps", "node_ids"):
            np.testing.assert_array_equal(f1["spikes/p"][key][()], f2["spikes/p"][key][()])
    np.testing.assert_array_equal(read_spikes(many)["p"][0], t)
    np.testing.assert_array_equal(read_spikes(many)["p"][1], ids)


def test_append_mode_continues_a_file(tmp_path):
    p = tmp_path / "s.h5"
    with SpikeWriter(p, {"a": 10}, sorting="by_time") as w:
        w.write("a", [1.0, 2.0], [1, 2])
    with SpikeWriter(p, {"a": 10}, sorting="by_time", mode="a") as w:
        w.write("a", [3.0], [3])
    t, ids = read_spikes(p)["a"]
    np.testing.assert_array_equal(t, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(ids, [1, 2, 3])


def test_bad_writes_raise_clean_errors(tmp_path):
    with SpikeWriter(tmp_path / "s.h5", {"a": 10}) as w:
        with pytest.raises(BiolearnError, match="node ids"):
            w.write("a", [1.0, 2.0], [1])
        with pytest.raises(BiolearnError, match="negative"):
            w.write("a", [1.0], [-1])
        with pytest.raises(BiolearnError, match="outside population"):
            w.write("a", [1.0], [10])
        with pytest.raises(BiolearnError, match="NaN"):
            w.write("a", [np.nan], [1])
        with pytest.raises(BiolearnError, match="integers"):
            w.write("a", [1.0], [1.5])
        with pytest.raises(BiolearnError, match="unknown population"):
            w.write("b", [1.0], [1])
    with pytest.raises(BiolearnError, match="sorting"):
        SpikeWriter(tmp_path / "t.h5", ["a"], sorting="by_magic")


# ---------------------------------------------------------------------- crash safety
_KILLED_WRITER = """
import sys, time
import numpy as np
from biolearn.io import SpikeWriter

path, pause = sys.argv[1], float(sys.argv[2])
w = SpikeWriter(path, {"exc": 1000, "inh": 250}, chunk=2048, flush_every_s=3600.0)
k = 0
i = 0
while True:
    idx = np.arange(k, k + 700)
    w.write("exc", idx * 0.5, idx % 1000)
    w.write("inh", idx * 0.25, idx % 250)
    w.write_presentations("input", [k * 0.5], [i % 10])
    k += 700
    i += 1
    if i % 4 == 0:
        w.flush()
        print(k, flush=True)  # tell the parent how many spikes per population are on disk
    time.sleep(pause)  # stands in for simulation work between batches
"""


@pytest.mark.parametrize("flushes,pause,delay", [(3, 0.0, 0.0), (6, 0.002, 0.013),
                                                 (9, 0.0, 0.007)])
def test_sigkilled_writer_leaves_readable_file(tmp_path, flushes, pause, delay):
    script = tmp_path / "writer.py"
    script.write_text(textwrap.dedent(_KILLED_WRITER))
    p = tmp_path / "spikes.h5"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(REPO), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen([sys.executable, str(script), str(p), str(pause)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        flushed = 0
        for _ in range(flushes):
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            flushed = int(line)
        time.sleep(delay)  # the writer keeps writing: the kill lands mid-stream
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    with h5py.File(p, "r") as f:  # plain h5py opens it
        for pop in ("exc", "inh"):
            assert f[f"spikes/{pop}/timestamps"].shape[0] >= flushed
            assert f[f"spikes/{pop}/node_ids"].shape[0] >= flushed
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        spikes = read_spikes(p)
    for pop, dt, n in (("exc", 0.5, 1000), ("inh", 0.25, 250)):
        t, ids = spikes[pop]
        assert t.size >= flushed  # every flushed spike, and only genuine spikes
        idx = np.arange(t.size)
        np.testing.assert_array_equal(t, idx * dt)
        np.testing.assert_array_equal(ids, idx % n)
    assert "exc" in describe(p)
    kept = recover_spike_file(p)  # afterwards any SONATA reader sees a clean file
    assert kept["exc"] == spikes["exc"][0].size
    with SpikeWriter(p, {"exc": 1000, "inh": 250}, mode="a", sorting="by_time") as w:
        w.write("exc", [1e9], [0])  # a resumed run continues the file
    t, _ = read_spikes(p, "exc")["exc"]
    assert t.size == kept["exc"] + 1 and np.all(np.diff(t) >= 0)
    libsonata = pytest.importorskip("libsonata")
    assert len(libsonata.SpikeReader(str(p))["exc"].get()) == t.size


def test_recover_fixes_stale_end_address_and_fill_tail(tmp_path):
    p = tmp_path / "s.h5"
    rng = np.random.default_rng(5)
    t, ids = _random_spikes(rng, 5000, 100)
    _write(p, {"a": (t, ids)}, chunk=1024)
    # What a writer killed mid-flush can leave: rows reserved past the last write (fill values)...
    with h5py.File(p, "r+") as f:
        f["spikes/a/timestamps"].resize((6000,))
        f["spikes/a/node_ids"].resize((5500,))
    with pytest.warns(UserWarning, match="unfinished"):
        got_t, got_ids = read_spikes(p)["a"]
    np.testing.assert_array_equal(got_t, t)
    np.testing.assert_array_equal(got_ids, ids)
    # ... and a superblock whose end-of-allocation address lags behind the data. In a version-0
    # superblock with 8-byte addresses, the "End of File Address" field sits at byte 40
    # (HDF5 File Format Specification, section II.A).
    with open(p, "rb") as fh:
        head = fh.read(48)
    assert head[:8] == b"\x89HDF\r\n\x1a\n" and head[8] == 0 and head[13] == 8
    size = p.stat().st_size
    assert int.from_bytes(head[40:48], "little") == size
    with h5py.File(p, "r") as f:  # cut the recorded end inside the newest data chunk
        ds = f["spikes/a/timestamps"]
        last_chunk = ds.id.get_chunk_info(ds.id.get_num_chunks() - 1).byte_offset
    with open(p, "r+b") as fh:
        fh.seek(40)
        fh.write((last_chunk + 16).to_bytes(8, "little"))
    with pytest.raises((OSError, BiolearnError)), h5py.File(p, "r") as f:
        f["spikes/a/timestamps"][()]
    assert recover_spike_file(p) == {"a": 5000}
    with h5py.File(p, "r") as f:
        assert f["spikes/a/timestamps"].shape == f["spikes/a/node_ids"].shape == (5000,)
        np.testing.assert_array_equal(f["spikes/a/timestamps"][()], t)


@pytest.mark.parametrize("block", [1 << 20, 1000])
def test_describe_summarises_datasets_of_unequal_length(tmp_path, monkeypatch, block):
    # A writer killed between extending timestamps and node_ids leaves them unequal; the summary
    # counts the common prefix, block by block, and flags the unfinished tail.
    from biolearn.io import inspect

    monkeypatch.setattr(inspect, "_BLOCK", block)
    p = tmp_path / "s.h5"
    with SpikeWriter(p, {"a": 100}, sorting="by_time") as w:
        w.write("a", np.arange(5000) * 0.1, np.arange(5000) % 100)
    with h5py.File(p, "r+") as f:
        f["spikes/a/node_ids"].resize((4200,))
    text = describe(p)
    assert "4,200 spikes" in text and "UNFINISHED TAIL" in text


# ---------------------------------------------------------------------- memory
def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs Linux /proc")
def test_memory_stays_flat_streaming_10_million_spikes(tmp_path):
    n_total, batch = 10_000_000, 10_000  # holding them would take 16 B x 1e7 = 160 MB
    rng = np.random.default_rng(6)
    t_batch = np.sort(rng.uniform(0.0, 10.0, batch))
    id_batch = rng.integers(0, 1000, batch)
    p = tmp_path / "big.h5"
    tracemalloc.start()
    try:
        with SpikeWriter(p, {"exc": 1000}, sorting="by_time") as w:
            for i in range(20):  # warm up buffers and HDF5 caches
                w.write("exc", t_batch + 10.0 * i, id_batch)
            rss0 = _rss_bytes()
            traced0 = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            for i in range(20, n_total // batch):
                w.write("exc", t_batch + 10.0 * i, id_batch)
            rss1 = _rss_bytes()
            peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (rss1 - rss0) < 40e6, f"RSS grew by {(rss1 - rss0) / 1e6:.1f} MB"
    assert (peak - traced0) < 10e6, f"Python allocations peaked {(peak - traced0) / 1e6:.1f} MB"
    with h5py.File(p, "r") as f:
        assert f["spikes/exc/timestamps"].shape == (n_total,)
        assert float(f["spikes/exc/timestamps"][-1]) == 10.0 * (n_total // batch - 1) + t_batch[-1]
        assert int(f["spikes/exc"].attrs["sorting"]) == 2


# ---------------------------------------------------------------------- inspect
def test_describe_spike_file(tmp_path):
    p = tmp_path / "spikes.h5"
    t_exc = np.array([0.5, 1.5, 2.0, 7.25])
    id_exc = np.array([3, 3, 9, 4])
    with SpikeWriter(p, {"exc": 400, "inh": 100}, sorting="by_time") as w:
        w.write("exc", t_exc, id_exc)
        w.write("inh", [10.0, 30.0], [0, 99])
        w.write_presentations("input", [0.0, 350.0], [5, 0])
    text = describe(p)
    assert "SONATA" in text and "6 spikes" in text
    exc = next(line for line in text.splitlines() if "population exc" in line)
    assert "4 spikes" in exc and "node ids 3..9" in exc and "3 distinct of 400" in exc
    assert "0.5..7.25 ms" in exc and "span 6.75 ms" in exc and "by_time" in exc
    inh = next(line for line in text.splitlines() if "population inh" in line)
    assert "2 spikes" in inh and "0..99" in inh and "span 20 ms" in inh
    assert "presentations input: 2 rows" in text


def test_describe_weights_and_run_dir(tmp_path):
    w = np.arange(12, dtype=np.float32).reshape(3, 4)
    save_weights(tmp_path / "weights.h5", {"exc/w": w, "theta": np.ones(5)}, {"seed": 7})
    text = describe(tmp_path / "weights.h5")
    assert "w: float32 (3, 4) gzip min 0 max 11 mean 5.5" in text
    assert "theta: float64 (5,)" in text and "seed=7" in text
    (tmp_path / "results.json").write_text('{"metrics": {"test_accuracy": 0.91}, "seed": 7}')
    text = describe(tmp_path)
    assert "test_accuracy: 0.91" in text and "weights.h5" in text


def test_describe_nwb_units_table(tmp_path):
    p = tmp_path / "x.nwb"
    with h5py.File(p, "w") as f:
        f["units/spike_times"] = np.array([0.1, 0.2, 1.5, 0.3])  # seconds
        f["units/spike_times_index"] = np.array([2, 4])
    text = describe(p)
    assert "NWB units table: 2 units, 4 spikes, time 0.1..1.5 s" in text


def test_unreadable_files_raise_biolearn_error(tmp_path):
    with pytest.raises(BiolearnError, match="not found") as e:
        describe(tmp_path / "nope.h5")
    assert "nope.h5" in str(e.value)
    text = tmp_path / "notes.h5"
    text.write_text("this is not HDF5\n")
    with pytest.raises(BiolearnError, match="not an HDF5 file") as e:
        describe(text)
    assert "notes.h5" in str(e.value)
    good = tmp_path / "good.h5"
    _write(good, {"a": (np.arange(100.0), np.arange(100))})
    cut = tmp_path / "cut.h5"
    cut.write_bytes(good.read_bytes()[:600])  # a copy cut short
    with pytest.raises(BiolearnError) as e:
        describe(cut)
    assert "cut.h5" in str(e.value)
    with pytest.raises(BiolearnError):
        read_spikes(cut)
    save_weights(tmp_path / "weights.h5", {"w": np.ones(3)})
    with pytest.raises(BiolearnError, match="no /spikes group"):
        read_spikes(tmp_path / "weights.h5")
    with pytest.raises(BiolearnError, match="available populations"):
        read_spikes(good, "b")
