"""SONATA spike files, written as a stream during a run and read back as NumPy arrays.

Layout (SONATA data format, Dai et al. 2020, PLoS Comput Biol 16:e1007696; "Spike file" section of
the SONATA specification): root attributes ``magic`` = 0x0A7A (uint32) and ``version`` = [0, 1]
(uint32); one group ``/spikes/<population>`` per population with the attribute ``sorting`` (HDF5
enum ``none``=0, ``by_id``=1, ``by_time``=2 over int8) and two datasets of equal length,
``timestamps`` (float64, attribute ``units`` = "ms") and ``node_ids`` (uint64).

Streaming: spikes are collected in one fixed-size NumPy buffer per population and appended to
chunked, resizable datasets whenever a buffer fills, so memory stays bounded however long the run.
Every append is followed by an HDF5 flush, and :meth:`SpikeWriter.flush` (called at least every
``flush_every_s`` seconds from :meth:`SpikeWriter.write`) also writes partly filled buffers; a job
killed even with SIGKILL leaves a file that h5py and libsonata open, holding every spike up to its
last flush.

Crash safety without SWMR: SWMR would need a version-3 superblock, which after a crash refuses
plain (non-SWMR) opens until ``h5clear`` is run, and libsonata cannot open it at all. Instead the
file keeps the version-0 superblock (see ``biolearn.io._h5.LIBVER``), HDF5 is touched only when a
buffer is appended and is flushed right after, and the datasets' fill values (NaN, 2**64-1) mark
rows a killed writer reserved but never wrote. :func:`read_spikes` drops such an unfinished tail;
:func:`recover_spike_file` (run automatically by ``SpikeWriter(mode="a")`` on resume) repairs the
file in place so that third-party readers see a clean file too.

Stimulus metadata (presentation start times, labels, ...) lives under ``/presentations/<group>``,
outside ``/spikes`` so that SONATA readers (libsonata, bmtk, pysonata) see a pure spike file.
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import h5py
import numpy as np

from biolearn.errors import BiolearnError
from biolearn.io._h5 import (
    as_os_error,
    close_write,
    decode_attr,
    libver,
    open_read,
    open_write,
    write_error,
    writing,
)

SONATA_MAGIC = 0x0A7A
SONATA_VERSION = (0, 1)
SORTING_VALUES: dict[str, int] = {"none": 0, "by_id": 1, "by_time": 2}
#: The SONATA ``sorting`` attribute type: an HDF5 enum over int8.
SORTING_DTYPE = h5py.enum_dtype(SORTING_VALUES, basetype=np.int8)
PRESENTATIONS = "presentations"
#: Fill values of the spike datasets. They are never valid spikes (times are finite, ids are
#: checked), so a reader can tell the written prefix from space a killed writer had reserved.
FILL_TIME = np.nan
FILL_ID = np.iinfo(np.uint64).max
_PRES_CHUNK = 4096


@dataclass
class _Stream:
    """Write state of one population: its datasets and its in-memory tail buffer."""

    group: h5py.Group
    ts: h5py.Dataset
    ids: h5py.Dataset
    buf_t: np.ndarray
    buf_n: np.ndarray
    fill: int = 0
    stored: int = 0
    n_nodes: int | None = None
    time_sorted: bool = True
    last_t: float = -np.inf


def _sorting_attr(value: str) -> np.ndarray:
    return np.array(SORTING_VALUES[value], dtype=SORTING_DTYPE)


def _set_sorting(group: h5py.Group, value: str) -> None:
    group.attrs.create("sorting", _sorting_attr(value), dtype=SORTING_DTYPE)


def sorting_name(group: h5py.Group) -> str | None:
    """The ``sorting`` attribute of a spike population as a name (None when absent)."""
    if "sorting" not in group.attrs:
        return None
    raw = int(group.attrs["sorting"])
    for name, code in SORTING_VALUES.items():
        if code == raw:
            return name
    return f"unknown({raw})"


_F = TypeVar("_F", bound=Callable[..., Any])


def _io_guarded(method: _F) -> _F:
    """A failed write (full disk, size limit, I/O error) closes the file, keeps it only if it is
    still a sound spike file (everything up to the failed write; see
    :class:`biolearn.io._h5.FailSoftFile`) and else removes it, then raises one :class:`OSError`
    naming the file, with the system's reason."""

    @functools.wraps(method)
    def wrapper(self: SpikeWriter, *args: Any, **kw: Any) -> Any:
        try:
            out = method(self, *args, **kw)
        except BiolearnError:
            raise
        except (OSError, RuntimeError) as exc:
            self._abort()
            raise as_os_error(exc, self.path) from exc
        err = write_error(self._f) if self._f is not None and not self._aborted else None
        if err is not None:
            self._abort()
            raise as_os_error(err, self.path) from err
        return out

    return wrapper  # type: ignore[return-value]


class SpikeWriter:
    """Stream spikes into a SONATA spike file (see the module docstring for the layout).

    Args:
        path: the ``.h5`` file to create (``mode="w"``) or extend (``mode="a"``, e.g. on resume).
        populations: population names, or a mapping name → number of nodes (node ids are then
            checked to lie in ``[0, n)`` and the size is stored as the group attribute ``n_nodes``).
        sorting: order promised on close: ``"none"``, ``"by_time"`` or ``"by_id"``. A stream that
            arrived in time order is marked ``by_time`` at no cost; anything else is sorted on
            :meth:`close`, which then holds that population in memory (16 bytes per spike) and
            rewrites the file atomically.
        chunk: spikes per HDF5 chunk and per in-memory buffer (buffer = 16 bytes × chunk per
            population).
        flush_every_s: longest wall time between flushes of buffered spikes to disk.
        compression: optional HDF5 filter for the spike datasets (e.g. ``"gzip"``); off by default
            because it costs CPU during the run.
        mode: ``"w"`` truncates, ``"a"`` appends to the populations of an existing spike file.

    Use as a context manager, or call :meth:`close`; spikes still buffered when the process dies
    without a flush are lost (at most ``flush_every_s`` seconds' worth).
    """

    def __init__(self, path: str | os.PathLike,
                 populations: Mapping[str, int | None] | Sequence[str], sorting: str = "none",
                 chunk: int = 65536, flush_every_s: float = 2.0,
                 compression: str | None = None, mode: str = "w"):
        if sorting not in SORTING_VALUES:
            raise BiolearnError(f"unknown spike sorting {sorting!r}", "SpikeWriter(sorting=...)",
                                f"use one of {sorted(SORTING_VALUES)}")
        if mode not in ("w", "a"):
            raise BiolearnError(f"unknown mode {mode!r}", "SpikeWriter(mode=...)", "use 'w' or 'a'")
        if int(chunk) < 1:
            raise BiolearnError(f"chunk must be >= 1, got {chunk}", "SpikeWriter(chunk=...)",
                                "use a few thousand to a few hundred thousand spikes")
        self.path = Path(path)
        self.sorting = sorting
        self.chunk = int(chunk)
        self.flush_every_s = float(flush_every_s)
        self.compression = compression
        self._streams: dict[str, _Stream] = {}
        self._closed = False
        self._aborted = False  # closed after a failed write (already reported)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f: Any = None
        try:
            self._open(mode, populations)
        except BiolearnError:  # a wrong or damaged file: leave it as it is
            self._closed = True
            if self._f is not None:
                with contextlib.suppress(Exception):
                    close_write(self._f)
            raise
        except (OSError, RuntimeError) as exc:
            self._abort(remove=mode == "w")
            raise as_os_error(exc, self.path) from exc

    def _open(self, mode: str, populations: Mapping[str, int | None] | Sequence[str]) -> None:
        if mode == "a" and self.path.exists():
            recover_spike_file(self.path)  # a resumed run continues after its last flush
            self._f = open_write(self.path, "r+")
            if int(self._f.attrs.get("magic", -1)) != SONATA_MAGIC:
                raise BiolearnError("not a SONATA spike file (root attribute magic != 0x0A7A)",
                                    f"file {self.path}", "append only to spike files biolearn "
                                    "wrote, or start a new file with mode='w'")
        else:
            self._f = open_write(self.path, "w", libver=libver())
            self._f.attrs.create("magic", SONATA_MAGIC, dtype=np.uint32)
            self._f.attrs.create("version", np.array(SONATA_VERSION, dtype=np.uint32))
        self._f.require_group("spikes")
        items = populations.items() if isinstance(populations, Mapping) else (
            (p, None) for p in populations)
        for name, n in items:
            self.add_population(name, n)
        self._f.flush()
        err = write_error(self._f)
        if err is not None:
            raise err
        self._last_flush = time.monotonic()

    def _abort(self, remove: bool = False) -> None:
        """Close after a failed write: keep the file if it is still a sound spike file (its
        content up to the last flush), else remove it (always with ``remove``)."""
        if self._closed:
            return
        self._closed = self._aborted = True
        if self._f is not None:
            with contextlib.suppress(Exception):
                close_write(self._f)
        if not remove:
            try:
                recover_spike_file(self.path)
                return
            except Exception:  # noqa: BLE001 - any failure: the file cannot be trusted
                pass
        with contextlib.suppress(OSError):
            self.path.unlink()

    # ------------------------------------------------------------------ populations
    @property
    def populations(self) -> list[str]:
        """Names of the populations being written."""
        return list(self._streams)

    @_io_guarded
    def add_population(self, name: str, n_nodes: int | None = None) -> None:
        """Declare another population (before or after writing has started)."""
        self._check_open()
        if not isinstance(name, str) or not name or "/" in name:
            raise BiolearnError(f"invalid population name {name!r}", "SpikeWriter populations",
                                "use a non-empty name without '/'")
        if name in self._streams:
            raise BiolearnError(f"population {name!r} declared twice", "SpikeWriter populations",
                                "give each population one unique name")
        spikes = self._f["spikes"]
        if name in spikes:  # mode="a": continue an existing population
            g = spikes[name]
            ts, ids = g.get("timestamps"), g.get("node_ids")
            if not isinstance(ts, h5py.Dataset) or not isinstance(ids, h5py.Dataset) or \
                    ts.maxshape[0] is not None or ids.maxshape[0] is not None:
                raise BiolearnError(f"population {name!r} cannot be appended to (datasets missing "
                                    "or not resizable)", f"file {self.path}",
                                    "write to a new file with mode='w'")
            stored = min(ts.shape[0], ids.shape[0])
            last = float(ts[stored - 1]) if stored else -np.inf
            was_sorted = sorting_name(g) == "by_time"
            if n_nodes is None and "n_nodes" in g.attrs:
                n_nodes = int(g.attrs["n_nodes"])
        else:
            g = spikes.create_group(name)
            kw: dict[str, Any] = {"maxshape": (None,), "chunks": (self.chunk,)}
            if self.compression:
                kw["compression"] = self.compression
            ts = g.create_dataset("timestamps", shape=(0,), dtype=np.float64,
                                  fillvalue=FILL_TIME, **kw)
            ts.attrs["units"] = "ms"
            ids = g.create_dataset("node_ids", shape=(0,), dtype=np.uint64, fillvalue=FILL_ID,
                                   **kw)
            stored, last, was_sorted = 0, -np.inf, True
        if n_nodes is not None:
            n_nodes = int(n_nodes)
            if n_nodes < 0:
                raise BiolearnError(f"population {name!r} has a negative size {n_nodes}",
                                    "SpikeWriter populations", "give the number of nodes (>= 0)")
            g.attrs.create("n_nodes", n_nodes, dtype=np.uint64)
        _set_sorting(g, "none")  # truthful while the stream is open
        self._streams[name] = _Stream(
            group=g, ts=ts, ids=ids, buf_t=np.empty(self.chunk, np.float64),
            buf_n=np.empty(self.chunk, np.uint64), stored=stored, n_nodes=n_nodes,
            time_sorted=was_sorted, last_t=last)

    # ------------------------------------------------------------------ writing
    @_io_guarded
    def write(self, population: str, times_ms: np.ndarray, node_ids: np.ndarray) -> None:
        """Append spikes (times in ms, integer node ids ≥ 0) of one population.

        Call it once per batch of steps (e.g. once per presented image), not once per spike.
        """
        s = self._stream(population)
        t = np.asarray(times_ms, dtype=np.float64).reshape(-1)
        n = np.asarray(node_ids).reshape(-1)
        if t.shape[0] != n.shape[0]:
            raise BiolearnError(f"{t.shape[0]} spike times but {n.shape[0]} node ids",
                                f"SpikeWriter.write({population!r})",
                                "pass one node id per spike time")
        m = t.shape[0]
        if m:
            self._validate(population, s, t, n)
            n = n.astype(np.uint64, copy=False)
            if s.time_sorted and (t[0] < s.last_t or (m > 1 and bool(np.any(t[1:] < t[:-1])))):
                s.time_sorted = False
            if s.time_sorted:
                s.last_t = float(t[-1])
            self._append(s, t, n)
        if time.monotonic() - self._last_flush >= self.flush_every_s:
            self.flush()

    def _validate(self, population: str, s: _Stream, t: np.ndarray, n: np.ndarray) -> None:
        where = f"SpikeWriter.write({population!r})"
        if n.dtype.kind not in "iu":
            raise BiolearnError(f"node ids must be integers, got dtype {n.dtype}", where,
                                "pass an integer array of node ids")
        if not np.isfinite(t).all():
            raise BiolearnError("spike times contain NaN or infinity", where,
                                "pass finite spike times in ms")
        if n.dtype.kind == "i" and n.min() < 0:
            raise BiolearnError(f"negative node id {int(n.min())}", where,
                                "node ids count from 0 within their population")
        if n.dtype == np.uint64 and n.max() == FILL_ID:
            raise BiolearnError(f"node id {FILL_ID} is reserved", where,
                                "node ids count from 0 within their population")
        if s.n_nodes is not None and int(n.max()) >= s.n_nodes:
            raise BiolearnError(f"node id {int(n.max())} outside population {population!r} "
                                f"of {s.n_nodes} nodes", where,
                                "declare the right population size or fix the node ids")

    def _append(self, s: _Stream, t: np.ndarray, n: np.ndarray) -> None:
        m, pos, wrote = t.shape[0], 0, False
        while pos < m:
            if s.fill == 0 and m - pos >= self.chunk:  # whole chunks go straight to disk
                k = (m - pos) // self.chunk * self.chunk
                self._extend(s, t[pos:pos + k], n[pos:pos + k])
                pos += k
                wrote = True
                continue
            k = min(self.chunk - s.fill, m - pos)
            s.buf_t[s.fill:s.fill + k] = t[pos:pos + k]
            s.buf_n[s.fill:s.fill + k] = n[pos:pos + k]
            s.fill += k
            pos += k
            if s.fill == self.chunk:
                self._drain(s)
                wrote = True
        if wrote:
            self._f.flush()

    def _extend(self, s: _Stream, t: np.ndarray, n: np.ndarray) -> None:
        a, b = s.stored, s.stored + t.shape[0]
        s.ts.resize((b,))
        s.ids.resize((b,))
        s.ts[a:b] = t
        s.ids[a:b] = n
        s.stored = b

    def _drain(self, s: _Stream) -> None:
        if s.fill:
            self._extend(s, s.buf_t[:s.fill], s.buf_n[:s.fill])
            s.fill = 0

    @_io_guarded
    def flush(self) -> None:
        """Write every buffered spike and flush HDF5 metadata, leaving a complete file on disk."""
        self._check_open()
        for s in self._streams.values():
            self._drain(s)
        self._f.flush()
        self._last_flush = time.monotonic()

    def n_spikes(self, population: str) -> int:
        """Spikes written so far to ``population`` (stored plus buffered)."""
        s = self._stream(population)
        return s.stored + s.fill

    # ------------------------------------------------------------------ presentations
    @_io_guarded
    def write_presentations(self, group: str, start_ms: np.ndarray, labels: np.ndarray,
                            extra: Mapping[str, Any] | None = None) -> None:
        """Append stimulus presentations to ``/presentations/<group>``.

        ``start_ms`` (float64, ms) and ``labels`` (integers or strings) have one entry per
        presentation. Each ``extra`` value of the same length (e.g. ``duration_ms``, ``predicted``)
        becomes a dataset appended alongside; scalars and strings become group attributes.
        Repeated calls append; later calls must give the same per-presentation keys.
        """
        self._check_open()
        where = f"SpikeWriter.write_presentations({group!r})"
        if not isinstance(group, str) or not group or "/" in group:
            raise BiolearnError(f"invalid presentation group {group!r}", where,
                                "use a population or stimulus name without '/'")
        start = np.asarray(start_ms, dtype=np.float64).reshape(-1)
        columns: dict[str, np.ndarray] = {"start_ms": start, "labels": _column(labels, where)}
        attrs: dict[str, Any] = {}
        for key, value in (extra or {}).items():
            if key in columns:
                raise BiolearnError(f"extra key {key!r} clashes with a built-in column", where,
                                    "rename it")
            if np.ndim(value) == 0:
                attrs[key] = value
            else:
                columns[key] = _column(value, where)
        for key, col in columns.items():
            if col.ndim != 1 or col.shape[0] != start.shape[0]:
                raise BiolearnError(f"column {key!r} has shape {col.shape}, expected "
                                    f"({start.shape[0]},) like start_ms", where,
                                    "give one value per presentation")
        g = self._f.require_group(PRESENTATIONS).require_group(group)
        existing = {k for k, v in g.items() if isinstance(v, h5py.Dataset)}
        if existing and existing != set(columns):
            raise BiolearnError(f"columns {sorted(columns)} differ from the stored "
                                f"{sorted(existing)}", where,
                                "pass the same extra keys on every call")
        for key, col in columns.items():
            if key not in g:
                ds = g.create_dataset(key, shape=(0,), maxshape=(None,), chunks=(_PRES_CHUNK,),
                                      dtype=col.dtype)
                if key.endswith("_ms"):
                    ds.attrs["units"] = "ms"
            ds = g[key]
            a = ds.shape[0]
            ds.resize((a + col.shape[0],))
            ds[a:] = col
        for key, value in attrs.items():
            g.attrs[key] = value
        if time.monotonic() - self._last_flush >= self.flush_every_s:
            self.flush()

    # ------------------------------------------------------------------ closing
    @_io_guarded
    def close(self) -> None:
        """Flush, mark the sort order and close. Sorts (and rewrites) only when needed."""
        if self._closed:
            return
        self.flush()
        need_sort = []
        for name, s in self._streams.items():
            if self.sorting == "by_time" and s.time_sorted:
                _set_sorting(s.group, "by_time")
            elif self.sorting != "none":
                need_sort.append(name)
        self._f.flush()
        close_write(self._f)  # raises a failed write (the guard then repairs or removes)
        self._closed = True
        if need_sort:
            _rewrite_sorted(self.path, need_sort, self.sorting)

    def __enter__(self) -> SpikeWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _stream(self, population: str) -> _Stream:
        self._check_open()
        try:
            return self._streams[population]
        except KeyError:
            raise BiolearnError(f"unknown population {population!r}", "SpikeWriter.write",
                                f"declared populations: {sorted(self._streams)}") from None

    def _check_open(self) -> None:
        if self._closed:
            raise BiolearnError("spike file is already closed", f"file {self.path}",
                                "write before calling close()")


def _column(values: Any, where: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype.kind in "USO":
        return np.asarray([str(v) for v in arr.reshape(-1)], dtype=object).astype(
            h5py.string_dtype())
    if arr.dtype.kind == "b":
        return arr.astype(np.bool_)
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64)
    if arr.dtype.kind == "f":
        return arr.astype(np.float64)
    raise BiolearnError(f"cannot store values of dtype {arr.dtype}", where,
                        "pass numbers, booleans or strings")


def _sort_order(t: np.ndarray, n: np.ndarray, sorting: str) -> np.ndarray:
    if sorting == "by_time":
        return np.lexsort((n, t))  # by time, ties by node id
    return np.lexsort((t, n))  # by node id, then time


def _rewrite_sorted(path: Path, names: Iterable[str], sorting: str) -> None:
    """Rewrite ``path`` with the given populations sorted; atomic via a temporary file."""
    names = set(names)
    tmp = path.with_name(path.name + ".sorting.tmp")
    try:
        with h5py.File(path, "r") as src, writing(tmp, "w", libver=libver()) as dst:
            for k, v in src.attrs.items():
                dst.attrs.create(k, v, dtype=src.attrs.get_id(k).dtype)
            for key in src:
                if key != "spikes":
                    src.copy(src[key], dst, name=key)
            spikes = dst.create_group("spikes")
            for pop, g in src["spikes"].items():
                if pop not in names:
                    src.copy(g, spikes, name=pop)
                    continue
                out = spikes.create_group(pop)
                for k, v in g.attrs.items():
                    out.attrs.create(k, v, dtype=g.attrs.get_id(k).dtype)
                t, n = g["timestamps"][()], g["node_ids"][()]
                order = _sort_order(t, n, sorting)
                for key, data in (("timestamps", t[order]), ("node_ids", n[order])):
                    old = g[key]
                    ds = out.create_dataset(key, data=data, maxshape=(None,),
                                            chunks=old.chunks or None, compression=old.compression)
                    for k, v in old.attrs.items():
                        ds.attrs[k] = v
                del t, n, order
                _set_sorting(out, sorting)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    os.replace(tmp, path)


# ---------------------------------------------------------------------- reading
def _require_spikes(f: h5py.File, path: str | os.PathLike) -> h5py.Group:
    g = f.get("spikes")
    if not isinstance(g, h5py.Group):
        raise BiolearnError("not a SONATA spike file (no /spikes group)", f"file {path}",
                            "pass the spikes.h5 of a run (weights.h5 holds no spikes)")
    return g


def populations(path: str | os.PathLike) -> list[str]:
    """Names of the spike populations in a SONATA spike file."""
    with open_read(path, "spike file") as f:
        return list(_require_spikes(f, path))


def paired_blocks(ts: h5py.Dataset, ids: h5py.Dataset, step: int
                  ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """A population's ``timestamps`` and ``node_ids`` in blocks of at most ``step`` rows, over
    their common length (a writer killed between extending the two leaves them unequal); ends at
    the first block that cannot be read (a chunk past a killed writer's last flush)."""
    m = min(ts.shape[0], ids.shape[0])
    for a in range(0, m, step):
        b = min(a + step, m)
        try:
            block = ts[a:b], ids[a:b]
        except (OSError, RuntimeError):
            return
        yield block


def _read_population(g: h5py.Group) -> tuple[np.ndarray, np.ndarray, int]:
    """Valid spikes of one population and the number of stored rows they were taken from.

    A file whose writer was killed can hold rows past the last flush that were reserved but never
    written (fill values NaN / 2**64-1), datasets of unequal length, or a newest chunk that lies
    beyond the end of the file recorded in the superblock; all of these are cut off here.
    """
    ts, ids = g["timestamps"], g["node_ids"]
    stored = max(ts.shape[0], ids.shape[0])
    m = min(ts.shape[0], ids.shape[0])
    try:
        t, n = ts[:m], ids[:m]
    except (OSError, RuntimeError):
        parts = list(paired_blocks(ts, ids, ts.chunks[0] if ts.chunks else max(m, 1)))
        t = np.concatenate([p[0] for p in parts]) if parts else np.empty(0, ts.dtype)
        n = np.concatenate([p[1] for p in parts]) if parts else np.empty(0, ids.dtype)
    k = t.shape[0]
    if ts.dtype.kind == "f" and ts.fillvalue is not None and np.isnan(ts.fillvalue):
        bad = np.flatnonzero(np.isnan(t))
        k = min(k, int(bad[0])) if bad.size else k
    if ids.dtype == np.uint64 and ids.fillvalue == FILL_ID:
        bad = np.flatnonzero(n == FILL_ID)
        k = min(k, int(bad[0])) if bad.size else k
    return t[:k].astype(np.float64, copy=False), n[:k].astype(np.uint64, copy=False), stored


def read_spikes(path: str | os.PathLike, population: str | Sequence[str] | None = None
                ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Read spikes as ``{population: (timestamps_ms float64, node_ids uint64)}``.

    ``population`` selects one name or a list of names (default: all). From a file whose writer
    was killed, every spike up to the last flush is returned and the unfinished tail is dropped
    with a warning (:func:`recover_spike_file` repairs such a file in place).
    """
    with open_read(path, "spike file") as f:
        spikes = _require_spikes(f, path)
        names = list(spikes) if population is None else (
            [population] if isinstance(population, str) else list(population))
        out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for name in names:
            g = spikes.get(name)
            if not isinstance(g, h5py.Group) or "timestamps" not in g or "node_ids" not in g:
                raise BiolearnError(f"no spike population {name!r}", f"file {path}",
                                    f"available populations: {sorted(spikes)}")
            t, n, stored = _read_population(g)
            if t.shape[0] != stored:
                warnings.warn(f"{path}: population {name!r} ends in an unfinished write "
                              f"(killed writer?); keeping the first {t.shape[0]} of {stored} "
                              "rows", stacklevel=2)
            out[name] = (t, n)
        return out


_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _patch_eoa(path: Path) -> bool:
    """Raise the end-of-allocation address in a version 0/1 superblock to the file size.

    A writer killed during a flush can leave metadata that points past the end address recorded
    in the superblock (HDF5 File Format Specification, "Superblock": the "End of File Address"
    field). Raising it to the file's size makes that data reachable; space past it is unused.
    Returns True when the file was changed.
    """
    size = path.stat().st_size
    with open(path, "r+b") as fh:
        offsets = [0] + [512 << k for k in range(48) if (512 << k) < size]
        for base in offsets:
            fh.seek(base)
            if fh.read(8) == _HDF5_SIGNATURE:
                break
        else:
            return False
        head = fh.read(16)
        version, width = head[0], head[5]
        if version > 1 or width not in (2, 4, 8):  # v2/v3 superblocks carry a checksum
            return False
        field = base + (24 if version == 0 else 28)
        fh.seek(field)
        base_addr = int.from_bytes(fh.read(width), "little")
        fh.seek(field + 2 * width)
        eoa = int.from_bytes(fh.read(width), "little")
        if eoa == (1 << (8 * width)) - 1 or base_addr + eoa >= size:
            return False
        fh.seek(field + 2 * width)
        fh.write((size - base_addr).to_bytes(width, "little"))
        fh.flush()
        os.fsync(fh.fileno())
    return True


def recover_spike_file(path: str | os.PathLike) -> dict[str, int]:
    """Repair, in place, a spike file whose writer died; returns spikes kept per population.

    Fixes the superblock's end address (see :func:`_patch_eoa`) and truncates every population to
    its complete prefix, after which any SONATA reader (libsonata, bmtk) reads the file cleanly.
    A file that was closed normally is left unchanged.
    """
    p = Path(path)
    open_read(p, "spike file").close()  # existence / signature checks with clear errors
    try:
        # A shared lock fails while a writer holds the file. (Opening it for writing here would
        # truncate it to the stale end address before the patch below.)
        h5py.File(p, "r", locking=True).close()
    except OSError as exc:
        what = ("spike file is open for writing in another process" if "lock" in str(exc)
                else f"spike file cannot be opened for repair ({exc})")
        raise BiolearnError(what, f"file {p}", "wait until the job writing it has ended") \
            from None
    try:
        _patch_eoa(p)
        counts: dict[str, int] = {}
        with writing(p, "r+") as f:
            for name, g in _require_spikes(f, p).items():
                t, _, stored = _read_population(g)
                k = t.shape[0]
                if k != g["timestamps"].shape[0] or k != g["node_ids"].shape[0]:
                    g["timestamps"].resize((k,))
                    g["node_ids"].resize((k,))
                    _set_sorting(g, "none")
                counts[name] = k
        return counts
    except BiolearnError:
        raise
    except (OSError, RuntimeError, KeyError, ValueError, TypeError) as exc:
        raise BiolearnError(f"spike file cannot be repaired ({exc})", f"file {p}",
                            "the damage is beyond the last flush's metadata; re-run the job") \
            from None


def read_presentations(path: str | os.PathLike, group: str | None = None
                       ) -> dict[str, dict[str, Any]]:
    """Read ``/presentations``: ``{group: {column or attribute: values}}`` (strings as ``str``)."""
    with open_read(path, "spike file") as f:
        root = f.get(PRESENTATIONS)
        if not isinstance(root, h5py.Group):
            root = {}
        names = list(root) if group is None else [group]
        out: dict[str, dict[str, Any]] = {}
        for name in names:
            g = root.get(name) if root else None
            if not isinstance(g, h5py.Group):
                raise BiolearnError(f"no presentation group {name!r}", f"file {path}",
                                    f"available groups: {sorted(root)}")
            cols: dict[str, Any] = {k: decode_attr(v) for k, v in g.attrs.items()}
            for key, ds in g.items():
                if h5py.check_string_dtype(ds.dtype) is not None:
                    cols[key] = ds.asstr()[()]
                else:
                    cols[key] = ds[()]
            out[name] = cols
        return out
