"""Data: IDX format, dataset lookup/verification/download, Poisson encoders.

Expected values come from the IDX specification (header bytes packed here with ``struct``), the
published MNIST label counts, closed-form Poisson/Bernoulli statistics and SciPy's KS test.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import http.server
import struct
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from mnist_data import mnist_root

from biolearn.data import (
    DATASETS,
    crop,
    kernel_rng_state,
    load_fashion_mnist,
    load_mnist,
    poisson_events,
    poisson_rates,
    poisson_spikes,
    poisson_step,
    read_idx,
    scale_to_mean,
    spike_probability,
    to_float,
    uniform01,
    write_idx,
)
from biolearn.data import mnist as mnist_mod
from biolearn.data.idx import idx_bytes
from biolearn.errors import BiolearnError

NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
_REAL_MNIST = mnist_root()  # looked up before the fixture below clears BIOLEARN_DATA and HOME


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    """No real home cache, no inherited data roots or mirrors, no retry sleeps."""
    monkeypatch.setenv("BIOLEARN_CACHE", str(tmp_path / "arrays"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for var in ("BIOLEARN_DATA", "BIOLEARN_MNIST_MIRRORS", "BIOLEARN_FASHION_MNIST_MIRRORS",
                "http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy",
                "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(mnist_mod, "RETRY_BACKOFF_S", 0.0)
    monkeypatch.setattr(mnist_mod, "TIMEOUT_S", 5.0)


def make_arrays(seed: int = 0, n_train: int = 30, n_test: int = 10) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": (np.arange(n_train) % 10).astype(np.uint8),
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, n_test).astype(np.uint8),
    }


def write_set(folder: Path, arrays: dict[str, np.ndarray], gz: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for key, arr in arrays.items():
        write_idx(folder / (NAMES[key] + (".gz" if gz else "")), arr)
    return folder


def patch_digests(monkeypatch, arrays: dict[str, np.ndarray], dataset: str = "mnist",
                  **extra) -> None:
    """Point the checksum table of ``dataset`` at the generated arrays."""
    spec = DATASETS[dataset]
    files = tuple(dataclasses.replace(
        f, sha256=hashlib.sha256(idx_bytes(arrays[f.key])).hexdigest(), **extra)
        for f in spec.files)
    monkeypatch.setitem(DATASETS, dataset, dataclasses.replace(spec, files=files))


def assert_same(loaded, arrays):
    for got, key in zip(loaded, ("train_images", "train_labels", "test_images", "test_labels"),
                        strict=True):
        np.testing.assert_array_equal(got, arrays[key])
        assert got.dtype == np.uint8


# ------------------------------------------------------------------------------------------- IDX
@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("arr", [
    np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28),
    np.array([3, 1, 4, 1, 5], dtype=np.uint8),
    np.arange(-6, 6, dtype=np.int32).reshape(3, 4),
    np.linspace(-1, 1, 7),
])
def test_idx_round_trip(tmp_path, arr, suffix):
    path = tmp_path / f"a{suffix}"
    write_idx(path, arr)
    back = read_idx(path)
    assert back.dtype == arr.dtype.newbyteorder("=") and back.shape == arr.shape
    np.testing.assert_array_equal(back, arr)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == (suffix == ".gz")


def test_idx_reads_hand_packed_mnist_header(tmp_path):
    """Bytes laid out by the IDX spec: magic 2051 / 2049, big-endian uint32 dims, uint8 payload."""
    pixels = bytes(range(2 * 3 * 4))
    (tmp_path / "img").write_bytes(struct.pack(">IIII", 2051, 2, 3, 4) + pixels)
    (tmp_path / "lab").write_bytes(struct.pack(">II", 2049, 3) + bytes([7, 0, 9]))
    img = read_idx(tmp_path / "img", expected_magic=2051)
    assert img.shape == (2, 3, 4) and img[1, 2, 3] == 23
    np.testing.assert_array_equal(read_idx(tmp_path / "lab", expected_magic=2049), [7, 0, 9])
    # and the writer produces exactly those bytes
    assert idx_bytes(img) == struct.pack(">IIII", 2051, 2, 3, 4) + pixels
    # multi-byte types are big-endian on disk
    i4 = struct.pack(">BBBBI", 0, 0, 0x0C, 1, 2) + struct.pack(">ii", -2, 7)
    (tmp_path / "i4").write_bytes(i4)
    np.testing.assert_array_equal(read_idx(tmp_path / "i4"), [-2, 7])


def _err(excinfo) -> str:
    return str(excinfo.value)


@pytest.mark.parametrize("gz", [False, True])
def test_truncated_payload_is_a_clear_error(tmp_path, gz):
    path = tmp_path / ("t.gz" if gz else "t")
    data = struct.pack(">IIII", 2051, 10, 28, 28) + bytes(10 * 784 - 100)
    path.write_bytes(gzip.compress(data) if gz else data)
    with pytest.raises(BiolearnError) as ei:
        read_idx(path)
    msg = _err(ei)
    assert "truncated" in msg and str(path) in msg and "delete" in msg
    assert "7840" in msg and "7740" in msg


def test_cut_gzip_stream_is_a_clear_error(tmp_path):
    path = tmp_path / "x.gz"
    write_idx(path, np.random.default_rng(0).integers(0, 256, (50, 28, 28), dtype=np.uint8))
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(BiolearnError) as ei:
        read_idx(path)
    assert "gzip" in _err(ei) and str(path) in _err(ei) and "$BIOLEARN_DATA" in _err(ei)


def test_trailing_bytes_and_garbage_and_wrong_magic(tmp_path):
    p = tmp_path / "trail"
    p.write_bytes(struct.pack(">II", 2049, 3) + bytes(4))
    with pytest.raises(BiolearnError, match="trailing"):
        read_idx(p)
    g = tmp_path / "garbage"
    g.write_bytes(b"<html>not found</html>")
    with pytest.raises(BiolearnError, match="bad magic") as ei:
        read_idx(g)
    assert str(g) in _err(ei)
    lab = tmp_path / "labels.gz"
    write_idx(lab, np.zeros(5, np.uint8))
    with pytest.raises(BiolearnError) as ei:
        read_idx(lab, expected_magic=2051)
    assert "2049" in _err(ei) and "2051" in _err(ei) and str(lab) in _err(ei)
    with pytest.raises(BiolearnError, match="too short"):
        (tmp_path / "empty").write_bytes(b"")
        read_idx(tmp_path / "empty")


# ---------------------------------------------------------------------------- lookup and checks
@pytest.mark.parametrize("gz", [True, False])
def test_load_from_explicit_root_subfolder(tmp_path, monkeypatch, gz):
    arrays = make_arrays()
    patch_digests(monkeypatch, arrays)
    write_set(tmp_path / "data" / "mnist", arrays, gz=gz)
    assert_same(load_mnist(tmp_path / "data", download=False), arrays)
    x, y, xt, yt = load_mnist(tmp_path / "data", n_train=7, n_test=3, download=False)
    assert x.shape == (7, 28, 28) and y.shape == (7,) and xt.shape == (3, 28, 28)
    np.testing.assert_array_equal(y, arrays["train_labels"][:7])


def test_search_order_root_then_env_then_home(tmp_path, monkeypatch):
    a, b, c = make_arrays(1), make_arrays(2), make_arrays(3)
    # digests are unknown here (header validation only): replace them with None
    spec = DATASETS["mnist"]
    monkeypatch.setitem(DATASETS, "mnist", dataclasses.replace(
        spec, files=tuple(dataclasses.replace(f, sha256=None) for f in spec.files)))
    write_set(tmp_path / "explicit", a)  # files directly in the root
    write_set(tmp_path / "env" / "mnist", b)  # $BIOLEARN_DATA holds a mnist/ folder
    write_set(tmp_path / "home" / ".cache" / "biolearn" / "mnist", c)  # the user cache
    assert_same(load_mnist(download=False), c)
    monkeypatch.setenv("BIOLEARN_DATA", str(tmp_path / "env"))
    assert_same(load_mnist(download=False), b)
    assert_same(load_mnist(tmp_path / "explicit", download=False), a)


def test_checksum_mismatch_on_local_file(tmp_path, monkeypatch):
    arrays = make_arrays()
    patch_digests(monkeypatch, make_arrays(seed=9))
    write_set(tmp_path / "mnist", arrays)
    with pytest.raises(BiolearnError) as ei:
        load_mnist(tmp_path, download=False)
    msg = _err(ei)
    assert "checksum mismatch" in msg and "train-images-idx3-ubyte.gz" in msg and "delete" in msg


def test_image_label_count_mismatch(tmp_path, monkeypatch):
    arrays = make_arrays()
    arrays["train_labels"] = arrays["train_labels"][:-1]
    patch_digests(monkeypatch, arrays)
    write_set(tmp_path / "mnist", arrays)
    with pytest.raises(BiolearnError) as ei:
        load_mnist(tmp_path, download=False)
    assert "30 images but 29 labels" in _err(ei) and "train-labels-idx1-ubyte" in _err(ei)


def test_bad_labels_shapes_and_counts(tmp_path, monkeypatch):
    arrays = make_arrays()
    arrays["test_labels"][0] = 10
    patch_digests(monkeypatch, arrays)
    write_set(tmp_path / "mnist", arrays)
    with pytest.raises(BiolearnError, match="out of range 0..9"):
        load_mnist(tmp_path, download=False)
    arrays = make_arrays()
    arrays["test_images"] = arrays["test_images"][:, :20, :20].copy()
    patch_digests(monkeypatch, arrays)
    write_set(tmp_path / "mnist", arrays)
    with pytest.raises(BiolearnError, match="20x20"):
        load_mnist(tmp_path, download=False)
    arrays = make_arrays()
    patch_digests(monkeypatch, arrays)
    write_set(tmp_path / "mnist", arrays)
    with pytest.raises(BiolearnError, match="n_train=31 exceeds the 30"):
        load_mnist(tmp_path, n_train=31, download=False)
    with pytest.raises(BiolearnError, match="unknown dataset 'fashion_mnst'.*fashion_mnist"):
        load_mnist(tmp_path, dataset="fashion_mnst", download=False)


def test_array_cache_is_used_and_invalidated(tmp_path, monkeypatch):
    arrays = make_arrays()
    patch_digests(monkeypatch, arrays)
    folder = write_set(tmp_path / "mnist", arrays)
    assert_same(load_mnist(tmp_path, download=False), arrays)
    cache = tmp_path / "arrays"
    assert len(list(cache.glob("*.npy"))) == 4
    # replacing a file (new size/mtime) invalidates its entry: the new content is re-verified
    new = make_arrays(seed=5)
    patch_digests(monkeypatch, new)
    time.sleep(0.01)
    write_set(folder, new)
    assert_same(load_mnist(tmp_path, download=False), new)
    assert len(list(cache.glob("*.npy"))) == 4  # stale entries were replaced, not accumulated


def test_offline_missing_error_lists_files_and_places(tmp_path, monkeypatch):
    monkeypatch.setenv("BIOLEARN_DATA", str(tmp_path / "envdata"))
    with pytest.raises(BiolearnError) as ei:
        load_mnist(tmp_path / "nowhere", download=False)
    msg = _err(ei)
    for name in NAMES.values():
        assert name + ".gz" in msg
    assert str(tmp_path / "nowhere") in msg and str(tmp_path / "envdata") in msg
    assert str(tmp_path / "home" / ".cache" / "biolearn") in msg
    assert "$BIOLEARN_DATA" in msg and "data.root" in msg
    assert "\n" not in msg


def test_partial_copy_is_reported(tmp_path):
    arrays = make_arrays()
    (tmp_path / "mnist").mkdir()
    write_idx(tmp_path / "mnist" / "train-images-idx3-ubyte.gz", arrays["train_images"])
    with pytest.raises(BiolearnError) as ei:
        load_mnist(tmp_path, download=False)
    assert "1 of the 4 files" in _err(ei) and "t10k-labels-idx1-ubyte" in _err(ei)


def test_fashion_folder_holding_mnist_is_refused(tmp_path, monkeypatch):
    """With unknown Fashion-MNIST digests, a copy of (patched-known) MNIST files is recognised."""
    arrays = make_arrays()
    patch_digests(monkeypatch, arrays)  # these bytes are now "MNIST" in the table
    write_set(tmp_path / "fashion_mnist", arrays)
    with pytest.raises(BiolearnError, match="MNIST's train-images-idx3-ubyte, not Fashion-MNIST"):
        load_fashion_mnist(tmp_path, download=False)


# ----------------------------------------------------------------------------- download (loopback)
class _Server:
    """http.server on 127.0.0.1 serving ``routes`` (path -> bytes); ``fail`` path -> HTTP codes
    to answer first (consumed one per request)."""

    def __init__(self):
        self.routes: dict[str, bytes] = {}
        self.fail: dict[str, list[int]] = {}
        self.log: list[tuple[str, int]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server API)
                codes = outer.fail.get(self.path)
                if codes:
                    code = codes.pop(0)
                elif self.path in outer.routes:
                    code = 200
                else:
                    code = 404
                outer.log.append((self.path, code))
                if code != 200:
                    self.send_error(code)
                    return
                body = outer.routes[self.path]
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def serve(self, prefix: str, arrays: dict[str, np.ndarray]) -> None:
        for key, arr in arrays.items():
            self.routes[f"{prefix}/{NAMES[key]}.gz"] = gzip.compress(idx_bytes(arr), mtime=0)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = _Server()
    yield s
    s.close()


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def test_download_404_then_second_mirror(tmp_path, monkeypatch, server):
    arrays = make_arrays()
    patch_digests(monkeypatch, arrays)
    server.serve("/good", arrays)
    mirrors = [server.url + "/missing", server.url + "/good/"]
    got = load_mnist(tmp_path / "root", mirrors=mirrors, quiet=True)
    assert_same(got, arrays)
    dest = tmp_path / "root" / "mnist"
    assert _leftovers(dest) == sorted(n + ".gz" for n in NAMES.values())
    for name in NAMES.values():  # first mirror answered 404 once, never asked again
        assert [c for p, c in server.log if p == f"/missing/{name}.gz"] == [404]
        assert [c for p, c in server.log if p == f"/good/{name}.gz"] == [200]
    # second load is local: no new requests
    n = len(server.log)
    assert_same(load_mnist(tmp_path / "root", mirrors=mirrors, quiet=True), arrays)
    assert len(server.log) == n


def test_download_retries_transient_errors_via_env_mirrors(tmp_path, monkeypatch, server):
    arrays = make_arrays()
    patch_digests(monkeypatch, arrays)
    server.serve("/m", arrays)
    server.fail["/m/train-images-idx3-ubyte.gz"] = [503, 500]
    monkeypatch.setenv("BIOLEARN_MNIST_MIRRORS", server.url + "/m")
    monkeypatch.setenv("BIOLEARN_DATA", str(tmp_path / "env"))
    assert_same(load_mnist(quiet=True), arrays)
    codes = [c for p, c in server.log if p == "/m/train-images-idx3-ubyte.gz"]
    assert codes == [503, 500, 200]
    assert (tmp_path / "env" / "mnist" / "train-images-idx3-ubyte.gz").is_file()


def test_download_checksum_mismatch_leaves_nothing(tmp_path, monkeypatch, server):
    patch_digests(monkeypatch, make_arrays(seed=1))
    server.serve("/a", make_arrays(seed=2))
    server.serve("/b", make_arrays(seed=3))
    with pytest.raises(BiolearnError) as ei:
        load_mnist(tmp_path, mirrors=[server.url + "/a", server.url + "/b"], quiet=True)
    msg = _err(ei)
    assert "checksum mismatch" in msg and "download failed" in msg
    for name in NAMES.values():
        assert name + ".gz" in msg
    assert _leftovers(tmp_path) == []
    assert "/b/train-images-idx3-ubyte.gz" in {p for p, _ in server.log}  # tried both mirrors


def test_download_of_corrupt_payload_is_rejected(tmp_path, monkeypatch, server):
    arrays = make_arrays()
    patch_digests(monkeypatch, arrays)
    server.serve("/m", arrays)
    good = server.routes["/m/train-images-idx3-ubyte.gz"]
    server.routes["/m/train-images-idx3-ubyte.gz"] = good[: len(good) // 2]
    with pytest.raises(BiolearnError, match="gzip stream is truncated"):
        load_mnist(tmp_path, mirrors=server.url + "/m", quiet=True)
    assert "train-images-idx3-ubyte.gz" not in _leftovers(tmp_path)
    assert not [n for n in _leftovers(tmp_path) if n.endswith(".part")]


def test_offline_download_fails_with_one_clear_error(tmp_path):
    import socket

    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(BiolearnError) as ei:
        load_mnist(tmp_path, mirrors=[f"http://127.0.0.1:{port}/"], quiet=True)
    msg = _err(ei)
    assert "MNIST not found" in msg and "download failed" in msg
    assert "$BIOLEARN_MNIST_MIRRORS" in msg
    for name in NAMES.values():
        assert name + ".gz" in msg
    assert not [n for n in _leftovers(tmp_path) if n.endswith(".part")]
    assert not (tmp_path / "mnist").exists()  # no empty download folder left behind


def test_fashion_download_checked_by_official_gzip_md5(tmp_path, monkeypatch, server):
    """Without an uncompressed digest, the gzip MD5 guards the download; a wrong one refuses it."""
    arrays = make_arrays(seed=4)
    server.serve("/f", arrays)
    spec = DATASETS["fashion_mnist"]
    files = tuple(dataclasses.replace(
        f, sha256=None, gz_md5=hashlib.md5(server.routes[f"/f/{f.name}.gz"]).hexdigest())
        for f in spec.files)
    monkeypatch.setitem(DATASETS, "fashion_mnist", dataclasses.replace(spec, files=files))
    monkeypatch.setenv("BIOLEARN_FASHION_MNIST_MIRRORS", server.url + "/f")
    assert_same(load_fashion_mnist(tmp_path, quiet=True), arrays)
    assert (tmp_path / "fashion_mnist" / "t10k-labels-idx1-ubyte.gz").is_file()

    other = tmp_path / "other"
    bad = tuple(dataclasses.replace(f, gz_md5="0" * 32) for f in files)
    monkeypatch.setitem(DATASETS, "fashion_mnist", dataclasses.replace(spec, files=bad))
    with pytest.raises(BiolearnError, match="gzip MD5"):
        load_fashion_mnist(other, quiet=True)
    assert _leftovers(other) == []


def test_debian_dataset_folder_is_searched_last_and_never_written(tmp_path, monkeypatch):
    """``apt-get install dataset-fashion-mnist`` files (``/usr/share/datasets/fashion-mnist``)
    are found without any setting; a copy in an explicit root wins over them."""
    system, mine = make_arrays(seed=5), make_arrays(seed=6)
    write_set(tmp_path / "system" / "fashion-mnist", system)
    monkeypatch.setattr(mnist_mod, "SYSTEM_DATASETS", tmp_path / "system")
    monkeypatch.setenv("BIOLEARN_FASHION_MNIST_MIRRORS", "http://127.0.0.1:9/none")
    assert_same(load_fashion_mnist(tmp_path / "empty", quiet=True), system)
    assert not (tmp_path / "empty" / "fashion_mnist").exists()
    write_set(tmp_path / "mine" / "fashion_mnist", mine)
    assert_same(load_fashion_mnist(tmp_path / "mine", quiet=True), mine)


def test_canonical_tables_are_complete():
    for spec in DATASETS.values():
        assert [f.name for f in spec.files] == list(NAMES.values())
        assert spec.mirrors and all(m.startswith("http") for m in spec.mirrors)
        assert all(f.gz_md5 and len(f.gz_md5) == 32 for f in spec.files)
    assert all(f.sha256 and len(f.sha256) == 64 for f in DATASETS["mnist"].files)


# ------------------------------------------------------------------------------------ real MNIST
@pytest.mark.skipif(_REAL_MNIST is None, reason="full MNIST copy not found (set BIOLEARN_DATA)")
def test_real_mnist_label_counts():
    root = _REAL_MNIST
    t0 = time.perf_counter()
    x, y, xt, yt = load_mnist(root, download=False, quiet=True)
    first = time.perf_counter() - t0
    assert x.shape == (60000, 28, 28) and xt.shape == (10000, 28, 28)
    assert x.dtype == np.uint8 and y.dtype == np.uint8
    # MNIST's per-class counts (LeCun, Bottou, Bengio & Haffner 1998; 60 000 / 10 000 images)
    assert np.bincount(y, minlength=10).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918,
                                                     6265, 5851, 5949]
    assert np.bincount(yt, minlength=10).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028,
                                                      974, 1009]
    assert x.max() == 255 and x.min() == 0
    t0 = time.perf_counter()
    x2, y2, _, _ = load_mnist(root, download=False, quiet=True)
    second = time.perf_counter() - t0
    np.testing.assert_array_equal(y2, y)
    assert second < 2.0, f"cached load took {second:.2f} s (first {first:.2f} s)"


# -------------------------------------------------------------------------------------- encoders
def test_poisson_rates_closed_forms():
    px = np.array([0, 4, 128, 255], dtype=np.uint8)
    np.testing.assert_allclose(poisson_rates(px), [0.0, 1.0, 32.0, 63.75])  # Diehl & Cook pixel/4
    np.testing.assert_allclose(poisson_rates(px, 255 / 8, intensity=2.0), px / 8 * 2.0)  # Hao
    np.testing.assert_allclose(poisson_rates(to_float(px), 63.75), px / 4, rtol=1e-6)
    with pytest.raises(ValueError):
        poisson_rates(np.array([2.0]))


def test_poisson_spike_counts_match_rate_times_duration():
    rates = np.array([0.0, 5.0, 20.0, 63.75, 200.0])
    dt, n_steps = 0.5, 200_000  # 100 s
    spikes = poisson_spikes(rates, n_steps, dt, np.random.default_rng(1))
    assert spikes.shape == (n_steps, 5) and spikes.dtype == bool
    p = rates * dt / 1000
    counts = spikes.sum(axis=0)
    sd = np.sqrt(n_steps * p * (1 - p))
    assert counts[0] == 0
    assert np.all(np.abs(counts - n_steps * p) <= 5 * np.maximum(sd, 1e-9))


def test_poisson_spikes_seeded_and_checked():
    r = poisson_rates(np.random.default_rng(0).integers(0, 256, 784, dtype=np.uint8))
    a = poisson_spikes(r, 700, 0.5, 42)
    b = poisson_spikes(r, 700, 0.5, np.random.default_rng(42))
    c = poisson_spikes(r, 700, 0.5, 43)
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()
    with pytest.raises(ValueError, match="rate"):
        spike_probability(np.array([3000.0]), 0.5)


def test_poisson_events_are_a_poisson_process():
    rate, T = 50.0, 200_000.0  # Hz, ms -> 10 000 expected spikes per input
    t, i = poisson_events(np.full(4, rate), T, 7)
    assert np.all(np.diff(t) >= 0) and t.min() >= 0 and t.max() < T
    counts = np.bincount(i, minlength=4)
    assert np.all(np.abs(counts - rate * T / 1000) < 5 * np.sqrt(rate * T / 1000))
    isi = np.diff(t[i == 0])
    cv = isi.std() / isi.mean()
    assert abs(cv - 1.0) < 0.05  # exponential ISIs have CV 1
    t2, i2 = poisson_events(np.full(4, rate), T, 7)
    np.testing.assert_array_equal(t, t2)
    np.testing.assert_array_equal(i, i2)


def test_numba_kernel_generator_and_step():
    state = kernel_rng_state(3)
    u = np.array([uniform01(state) for _ in range(20_000)])
    assert u.min() >= 0.0 and u.max() < 1.0
    assert abs(u.mean() - 0.5) < 5 * np.sqrt(1 / 12 / u.size)
    hist = np.bincount((u * 20).astype(int), minlength=20)
    chi2 = ((hist - 1000) ** 2 / 1000).sum()
    assert chi2 < 50  # chi-square, 19 dof: P(chi2 > 50) ~ 1e-4 for a uniform generator
    p = spike_probability(np.array([0.0, 10.0, 100.0, 1000.0]), 0.5)
    out = np.zeros(4, dtype=np.bool_)
    counts = np.zeros(4)
    s1 = kernel_rng_state(11)
    seq = []
    for k in range(40_000):
        poisson_step(p, s1, out)
        counts += out
        if k < 100:
            seq.append(out.copy())
    sd = np.sqrt(40_000 * p * (1 - p))
    assert counts[0] == 0
    assert np.all(np.abs(counts - 40_000 * p) <= 5 * np.maximum(sd, 1e-9))
    s2 = kernel_rng_state(11)
    for k in range(100):
        poisson_step(p, s2, out)
        np.testing.assert_array_equal(out, seq[k])


def test_crop_and_to_float():
    img = np.arange(28 * 28).reshape(28, 28)
    c = crop(np.stack([img, img]), 20)
    assert c.shape == (2, 20, 20) and c[0, 0, 0] == 4 * 28 + 4 and c[1, -1, -1] == 23 * 28 + 23
    assert crop(img, (27, 26)).shape == (27, 26)
    with pytest.raises(ValueError):
        crop(img, 29)
    x = np.array([0, 51, 255], dtype=np.uint8)
    np.testing.assert_allclose(to_float(x), [0.0, 0.2, 1.0], rtol=1e-6)
    np.testing.assert_allclose(to_float(x, signed=True), [-1.0, -0.6, 1.0], rtol=1e-6)
    assert to_float(x).dtype == np.float32


def test_scale_to_mean_matches_the_authors_fashion_preprocessing():
    """Hao et al.'s create_normalized_mnist.m: pixel · 30 / mean(image), rounded half away from
    zero and saturated at 255 when written back as uint8."""
    img = np.zeros((2, 28, 28), np.uint8)
    img[0, :4, :4] = 49            # mean 49·16/784 = 1 → gain 30 → 1470 saturates at 255
    img[1].flat[:392] = 1          # mean 0.5 → gain 60 → 60
    img[1].flat[392] = 0
    out = scale_to_mean(img, 30.0)
    assert out.dtype == np.uint8 and out.shape == img.shape
    assert (out[0, :4, :4] == 255).all() and out[0].sum() == 255 * 16
    assert (out[1].flat[:392] == 60).all() and out[1].flat[392:].sum() == 0
    # no saturation: the mean lands on the target up to rounding; half rounds away from zero
    rng = np.random.default_rng(0)
    soft = rng.integers(0, 60, (5, 28, 28)).astype(np.uint8)
    np.testing.assert_allclose(scale_to_mean(soft, 30.0).reshape(5, -1).mean(1), 30.0, atol=0.5)
    half = np.zeros((1, 2, 2), np.uint8)
    half[0, 0, 0], half[0, 0, 1] = 1, 3     # mean 1 → gain 2.5 → 2.5, 7.5 round up to 3, 8
    np.testing.assert_array_equal(scale_to_mean(half, 2.5)[0, 0], [3, 8])
    assert scale_to_mean(np.zeros((1, 2, 2), np.uint8), 30.0).sum() == 0
    with pytest.raises(ValueError):
        scale_to_mean(img.astype(float), 30.0)
