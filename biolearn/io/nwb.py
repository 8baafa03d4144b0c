"""Export a run to Neurodata Without Borders (NWB 2.x): spikes, presentations, weights, metadata.

:func:`write_nwb` turns a run directory (or one SONATA ``spikes.h5``) into one ``.nwb`` file that
pynwb, NWB Widgets, DANDI tools and MATLAB's matnwb read:

* **Units table** (``nwbfile.units``): one unit per neuron of every spike population, in the
  order of the populations in ``spikes.h5`` and, within one, by node id. ``spike_times`` in
  seconds (SONATA stores ms; the only change to the values is the division by 1000, so times
  agree to float64 precision), ascending within each unit. Columns ``population`` (the SONATA
  population name) and ``node_id`` (the SONATA node id). Neurons that never fired are units
  with no spikes when the population's size is known (the ``n_nodes`` attribute biolearn writes).
  ``resolution`` is the simulation step when ``results.json`` names it (``params.dt_ms``,
  ``params.dt`` or one level down, e.g. ``params.presentation.dt``).
* **Trials** (``nwbfile.trials``): every stimulus presentation stored under
  ``/presentations/<group>`` (:meth:`biolearn.io.sonata.SpikeWriter.write_presentations`),
  sorted by start time, with ``start_time``/``stop_time`` in s, ``label``, ``intensity`` (NaN
  where the run did not record one), ``presentation_group`` and every other per-presentation
  column all groups have. ``stop_time`` is ``start + duration_ms`` when the group has
  ``duration_ms`` (column or attribute), else the next presentation's start (the last one ends at
  the last spike, or lasts as long as the median presentation).
* **Processing module** ``weights``: the arrays of ``weights.h5`` as DynamicTables, one per
  group of arrays sharing a prefix and a first dimension (the network recipe's ``<proj>/w``,
  ``<proj>/i``, ``<proj>/j`` become the columns ``w``, ``i``, ``j`` of one synapse table ``<proj>``;
  a 2-D matrix is one table whose rows are its first axis). The file's attributes go into the
  module's description as JSON.
* **File metadata**: ``experiment_description`` is the resolved config (JSON) from
  ``results.json``; ``notes`` holds the provenance, seed, status, warnings, wall time and metrics
  (JSON); ``session_start_time`` is the run's ``provenance.start_utc`` (else the modification time
  of ``spikes.h5``); ``session_id`` is the run directory's name; ``identifier`` a fresh UUID.
  The ``subject`` says that there is no animal (sex ``O``, born at the start of the run, no
  species): DANDI's checks require a subject in every file.

Memory: spikes never have to fit in memory at once. Per population, a first pass over the
datasets (in blocks of ``chunk_rows`` rows) counts spikes per neuron; neurons are then grouped
into blocks holding at most ``max_spikes`` spikes (a single neuron with more is a block of its
own), and each block is collected by one more pass, sorted and written before the next. Peak
memory is about ``40 B × max(max_spikes, spikes of the busiest neuron) + 16 B × chunk_rows +
24 B × neurons``, independent of the run length; a population whose spikes fit into ``max_spikes``
is read twice (count, collect). Trials and weights are held in memory (they are small).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from biolearn.errors import BiolearnError, missing_extra

SPIKES = "spikes.h5"
WEIGHTS = "weights.h5"
RESULTS = "results.json"
#: Rows read from a SONATA dataset at a time.
CHUNK_ROWS = 1 << 20
#: Spikes collected, sorted and written at a time (see the module docstring).
MAX_SPIKES = 1 << 22


def _pynwb() -> Any:
    try:
        import pynwb
    except ImportError as e:
        raise missing_extra("pynwb", "interop") from e
    return pynwb


# ---------------------------------------------------------------------- locating the run
def run_files(path: str | os.PathLike) -> dict[str, Path | None]:
    """``{"spikes", "weights", "results", "run_dir"}`` of a run directory or of a ``spikes.h5``
    (its siblings ``weights.h5`` and ``results.json`` are used when they exist)."""
    p = Path(path)
    if not p.exists():
        raise BiolearnError(f"'{p}' does not exist", "in write_nwb",
                            "pass a run directory or the spikes.h5 inside one")
    if p.is_dir():
        spikes, run_dir = p / SPIKES, p
        if not spikes.exists():
            raise BiolearnError(f"no {SPIKES} in '{p}'", "in write_nwb",
                                "pass a run directory whose recipe wrote spikes (or a spike file)")
    else:
        spikes, run_dir = p, p.parent
    weights, results = run_dir / WEIGHTS, run_dir / RESULTS
    return {"spikes": spikes, "weights": weights if weights.exists() else None,
            "results": results if results.exists() else None, "run_dir": run_dir}


# ---------------------------------------------------------------------- streaming the spikes
class _Population:
    """One SONATA population: valid rows, per-neuron counts and the neuron blocks to write."""

    def __init__(self, name: str, group: Any, chunk_rows: int, max_spikes: int):
        from biolearn.io.sonata import FILL_ID, paired_blocks

        self.name, self.group, self.chunk_rows = name, group, chunk_rows
        counts = np.zeros(int(group.attrs.get("n_nodes", 0)), np.int64)
        end, self.t_max = 0, -np.inf
        # pass 1: valid prefix and spikes per neuron
        for t, n in paired_blocks(group["timestamps"], group["node_ids"], chunk_rows):
            bad = np.flatnonzero(np.isnan(t) | (n == FILL_ID))
            k = int(bad[0]) if bad.size else len(t)
            n = n[:k].astype(np.int64)
            if k and n.max() >= len(counts):
                counts = np.concatenate([counts, np.zeros(int(n.max()) + 1 - len(counts),
                                                          np.int64)])
            counts += np.bincount(n, minlength=len(counts))
            if k:
                self.t_max = max(self.t_max, float(t[:k].max()))
            end += k
            if k < len(t):
                break
        self.rows, self.counts = end, counts
        cum = np.cumsum(counts)
        self.blocks: list[tuple[int, int]] = []
        lo = 0
        while lo < len(counts):
            base = cum[lo - 1] if lo else 0
            hi = max(int(np.searchsorted(cum, base + max_spikes, side="right")), lo + 1)
            self.blocks.append((lo, hi))
            lo = hi

    def block_times(self, lo: int, hi: int) -> np.ndarray:
        """Spike times (s) of neurons ``lo..hi-1``, grouped by neuron, ascending within one."""
        ts, ids = self.group["timestamps"], self.group["node_ids"]
        parts_t, parts_n = [], []
        for a in range(0, self.rows, self.chunk_rows):
            b = min(a + self.chunk_rows, self.rows)
            n = ids[a:b].astype(np.int64)
            keep = (n >= lo) & (n < hi)
            if keep.any():
                parts_t.append(ts[a:b][keep])
                parts_n.append(n[keep])
        if not parts_t:
            return np.zeros(0)
        t, n = np.concatenate(parts_t), np.concatenate(parts_n)
        return t[np.lexsort((t, n))] / 1000.0


def _chunk_iterator(pops: list[_Population], total: int) -> Any:
    from hdmf.data_utils import AbstractDataChunkIterator, DataChunk

    class SpikeTimes(AbstractDataChunkIterator):
        """The Units table's ``spike_times`` column, produced one neuron block at a time."""

        def __init__(self) -> None:
            self._gen = self._chunks()

        def _chunks(self) -> Iterator[Any]:
            pos = 0
            for p in pops:
                for lo, hi in p.blocks:
                    if not p.counts[lo:hi].sum():
                        continue
                    t = p.block_times(lo, hi)
                    yield DataChunk(data=t, selection=np.s_[pos:pos + len(t)])
                    pos += len(t)

        def __iter__(self) -> SpikeTimes:
            return self

        def __next__(self) -> Any:
            return next(self._gen)

        def recommended_chunk_shape(self) -> tuple[int]:
            return (max(1, min(total, 1 << 16)),)

        def recommended_data_shape(self) -> tuple[int]:
            return (total,)

        @property
        def dtype(self) -> np.dtype:
            return np.dtype(np.float64)

        @property
        def maxshape(self) -> tuple[int]:
            return (total,)

    return SpikeTimes()


# ---------------------------------------------------------------------- trials, weights, metadata
def _trials(spikes: Path, last_spike_s: float) -> list[dict] | None:
    from biolearn.io.sonata import read_presentations

    groups = read_presentations(spikes)
    if not groups:
        return None
    per_group, shared = [], None
    for name, cols in groups.items():
        start = np.asarray(cols.get("start_ms", []), np.float64)
        k = len(start)
        arrays = {c: np.asarray(v) for c, v in cols.items()
                  if np.ndim(v) == 1 and len(v) == k and c not in ("start_ms",)}
        scalars = {c: v for c, v in cols.items() if np.ndim(v) == 0}
        dur = arrays.pop("duration_ms", None)
        if dur is None and "duration_ms" in scalars:
            dur = np.full(k, float(scalars["duration_ms"]))
        if dur is not None:
            stop = start + np.asarray(dur, np.float64)
        else:
            order = np.argsort(start, kind="stable")
            s = start[order]
            nxt = np.append(s[1:], np.nan)
            step = float(np.median(np.diff(s))) if k > 1 else 0.0
            nxt[-1:] = max(last_spike_s * 1000.0, s[-1] + step) if k else nxt[-1:]
            stop = np.empty(k)
            stop[order] = nxt
        inten = arrays.pop("intensity", None)
        if inten is None:
            inten = np.full(k, float(scalars["intensity"]) if "intensity" in scalars else np.nan)
        labels = arrays.pop("labels", np.full(k, "", object))
        per_group.append((name, start, stop, labels, np.asarray(inten, np.float64), arrays))
        keys = {c for c, v in arrays.items() if v.dtype.kind in "biuf"}
        shared = keys if shared is None else shared & keys
    int_labels = all(np.asarray(g[3]).dtype.kind in "iu" for g in per_group)
    rows = []
    for name, start, stop, labels, inten, arrays in per_group:
        for r in range(len(start)):
            row = {"start_time": float(start[r]) / 1000.0, "stop_time": float(stop[r]) / 1000.0,
                   "label": int(labels[r]) if int_labels else str(labels[r]),
                   "intensity": float(inten[r]), "presentation_group": name}
            for c in sorted(shared or ()):
                row[c] = arrays[c][r].item()
            rows.append(row)
    rows.sort(key=lambda x: x["start_time"])
    return rows


def _weight_tables(path: Path) -> tuple[list[Any], dict]:
    from hdmf.common import DynamicTable, VectorData

    from biolearn.io.store import load_weights

    arrays, attrs = load_weights(path)
    groups: dict[str, dict[str, np.ndarray]] = {}
    for name, arr in arrays.items():
        prefix, _, leaf = name.rpartition("/")
        groups.setdefault(prefix, {})[leaf] = np.asarray(arr)
    tables = []
    for prefix, cols in groups.items():
        lengths = {(a.shape[0] if a.ndim else 1) for a in cols.values()}
        sets = [cols] if prefix and len(lengths) == 1 else [{k: v} for k, v in cols.items()]
        for part in sets:
            leaf_names = list(part)
            tname = (prefix.replace("/", ".") if len(sets) == 1 and prefix
                     else ".".join(x for x in (prefix.replace("/", "."), leaf_names[0]) if x))
            columns = []
            for leaf, arr in part.items():
                data = arr.reshape(1) if arr.ndim == 0 else arr
                full = f"{prefix}/{leaf}" if prefix else leaf
                columns.append(VectorData(name=leaf if len(part) > 1 or prefix else "values",
                                          description=f"weights.h5 array '{full}', shape "
                                                      f"{list(arr.shape)}, dtype {arr.dtype}",
                                          data=data))
            n_rows = len(columns[0].data)
            tables.append(DynamicTable(name=tname, description=f"weights.h5 '{tname}'",
                                       id=np.arange(n_rows), columns=columns))
    return tables, attrs


def _parse_utc(text: Any) -> _dt.datetime | None:
    if not isinstance(text, str):
        return None
    try:
        t = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=_dt.timezone.utc)


def _dt_s(config: dict) -> float | None:
    """The simulation step (s) of a resolved config: ``params.dt_ms`` / ``params.dt``, or the
    same keys one level down (``params.presentation.dt`` of the MNIST recipes)."""
    params = config.get("params") if isinstance(config, dict) else None
    if not isinstance(params, dict):
        return None
    for d in [params] + [v for v in params.values() if isinstance(v, dict)]:
        for key in ("dt_ms", "dt"):
            v = d.get(key)
            if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0:
                return float(v) / 1000.0
    return None


# ---------------------------------------------------------------------- the writer
def write_nwb(path: str | os.PathLike, out_path: str | os.PathLike | None = None, *,
              weights: bool = True, session_description: str | None = None,
              chunk_rows: int = CHUNK_ROWS, max_spikes: int = MAX_SPIKES) -> Path:
    """Write the NWB file of a run directory or of a SONATA ``spikes.h5`` (module docstring).

    Args:
        path: a run directory (with ``spikes.h5``; ``weights.h5`` and ``results.json`` are used
            when present) or a spike file (its siblings are used likewise).
        out_path: the ``.nwb`` file (default: ``spikes.h5`` with the suffix ``.nwb``). Written to
            a temporary file first and moved into place, so a failed export leaves no half file.
        weights: include ``weights.h5`` as the processing module ``weights``.
        session_description: default ``"biolearn run <name> (model <model>)"``.
        chunk_rows, max_spikes: the memory bound (module docstring).

    Returns the path written.
    """
    pynwb = _pynwb()
    from hdmf.backends.hdf5 import H5DataIO
    from hdmf.common import VectorData, VectorIndex

    from biolearn.io._h5 import open_read
    from biolearn.io.sonata import _require_spikes
    from biolearn.io.store import read_json, to_jsonable

    files = run_files(path)
    spikes = files["spikes"]
    out = Path(out_path) if out_path is not None else spikes.with_suffix(".nwb")
    res = read_json(files["results"]) if files["results"] is not None else {}
    config = res.get("config", {}) if isinstance(res, dict) else {}
    prov = res.get("provenance", {}) if isinstance(res, dict) else {}
    start = _parse_utc(prov.get("start_utc")) or _dt.datetime.fromtimestamp(
        spikes.stat().st_mtime, _dt.timezone.utc).replace(microsecond=0)
    name = str(config.get("name") or files["run_dir"].name)
    model = config.get("model")
    desc = session_description or (f"biolearn run '{name}'" + (f" (model {model})" if model
                                                                 else ""))
    notes = {k: res[k] for k in ("provenance", "seed", "status", "warnings", "wall_time_s",
                                 "biolearn_version", "metrics") if k in res}
    script = " ".join(map(str, prov.get("argv", []))) or None  # the command that ran the run
    nwb = pynwb.NWBFile(
        session_description=desc, identifier=str(uuid.uuid4()), session_start_time=start,
        session_id=files["run_dir"].name, experiment_description=json.dumps(
            to_jsonable(config), sort_keys=False) if config else None,
        notes=json.dumps(to_jsonable(notes)) if notes else None,
        keywords=["biolearn", "spiking network simulation"] + ([str(model)] if model else []),
        source_script=script, source_script_file_name=(prov.get("config_file") or "biolearn")
        if script else None,
        subject=pynwb.file.Subject(
            subject_id=f"biolearn:{name}", sex="O", date_of_birth=start,
            description="no animal: an in-silico spiking network simulated by biolearn; "
                        "date_of_birth is the start of the run, which built the network"),
    )
    with open_read(spikes, "spike file") as f:
        groups = _require_spikes(f, spikes)
        pops = [_Population(p, groups[p], int(chunk_rows), int(max_spikes)) for p in groups]
        counts = np.concatenate([p.counts for p in pops]) if pops else np.zeros(0, np.int64)
        total = int(counts.sum())
        last = max([p.t_max / 1000.0 for p in pops] + [0.0])
        trials = _trials(spikes, last)
        if trials:
            extra = [c for c in trials[0] if c not in ("start_time", "stop_time")]
            about = {"label": "stimulus label of the presentation",
                     "intensity": "stimulus intensity (NaN: not recorded by the run)",
                     "presentation_group": "the /presentations group of spikes.h5"}
            for c in extra:
                nwb.add_trial_column(c, about.get(c, f"per-presentation column '{c}' of "
                                                     "spikes.h5"))
            for row in trials:
                nwb.add_trial(**row)
        st_data = _chunk_iterator(pops, total) if total else np.zeros(0)
        spike_times = VectorData(name="spike_times",
                                 description="the spike times for each unit in seconds",
                                 data=H5DataIO(st_data) if total else st_data)
        index = VectorIndex(name="spike_times_index", data=np.cumsum(counts).astype(np.uint64),
                            target=spike_times)
        population = VectorData(name="population", description="SONATA spike population",
                                data=[p.name for p in pops for _ in range(len(p.counts))])
        node_id = VectorData(name="node_id", description="SONATA node id within the population",
                             data=np.concatenate([np.arange(len(p.counts), dtype=np.int64)
                                                  for p in pops]) if pops else
                             np.zeros(0, np.int64))
        nwb.units = pynwb.misc.Units(
            name="units", description="one unit per simulated neuron (biolearn SONATA spikes)",
            id=np.arange(len(counts)), columns=[index, spike_times, population, node_id],
            colnames=["spike_times", "population", "node_id"],
            resolution=_dt_s(config))
        if weights and files["weights"] is not None:
            tables, attrs = _weight_tables(files["weights"])
            if tables:
                mod = nwb.create_processing_module(
                    "weights", "learned weights of the run (weights.h5); attributes: "
                    + json.dumps(to_jsonable(attrs)))
                for t in tables:
                    mod.add(t)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.stem}.{uuid.uuid4().hex[:8]}.tmp.nwb")
        try:
            with pynwb.NWBHDF5IO(str(tmp), "w") as io:
                io.write(nwb)
            os.replace(tmp, out)
        finally:
            tmp.unlink(missing_ok=True)
    return out


__all__ = ["write_nwb", "run_files"]
