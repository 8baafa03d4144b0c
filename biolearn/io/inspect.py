"""Human-readable summaries of run files, for ``biolearn inspect``.

* SONATA spike files: populations, spike counts, node-id range and number of distinct ids, time
  span in ms, sorting, mean rate; stimulus presentations stored beside them.
* Any other HDF5 file (``weights.h5``, NWB, ...): a tree of groups and datasets with shape, dtype,
  compression, value range and attributes; an NWB ``/units`` table is summarised as spikes.
* ``results.json`` and run directories (every known file inside).

Spike statistics are computed block by block, so inspecting a file of any size needs little memory.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from biolearn.errors import BiolearnError
from biolearn.io._h5 import decode_attr, open_read
from biolearn.io.sonata import FILL_ID, PRESENTATIONS, SONATA_MAGIC, paired_blocks, sorting_name
from biolearn.io.store import read_json

_BLOCK = 1 << 20  # spikes per block when scanning
_STATS_MAX = 50_000_000  # datasets up to this many elements get min/max/mean in the tree


def describe(path: str | os.PathLike) -> str:
    """Summary of a spike file, weights file, other HDF5 file, results.json or run directory."""
    p = Path(path)
    if p.is_dir():
        return _describe_dir(p)
    if p.suffix.lower() == ".json" and p.exists():
        return _describe_json(p)
    with open_read(p, "HDF5 file") as f:
        try:
            return _describe_h5(f, p)
        except (OSError, RuntimeError, KeyError, ValueError) as exc:
            raise BiolearnError(f"HDF5 file is damaged ({exc})", f"file {p}",
                                "re-run the job that wrote it; for a spike file of a killed run "
                                "try biolearn.io.recover_spike_file") from None
        except (TypeError, IndexError, AttributeError) as exc:  # objects of an unusual kind
            raise BiolearnError(f"cannot summarise this HDF5 layout ({type(exc).__name__}: "
                                f"{exc})", f"file {p}",
                                "inspect it with h5ls -r or h5dump -H; biolearn summarises the "
                                "files it writes (SONATA spikes, weights, NWB units)") from None


def _describe_dir(p: Path) -> str:
    parts = []
    for name in ("results.json", "spikes.h5", "weights.h5"):
        if (p / name).exists():
            parts.append(describe(p / name))
    others = sorted(x.name for x in p.iterdir() if x.name not in
                    ("results.json", "spikes.h5", "weights.h5") and not x.name.startswith("."))
    if not parts and not others:
        raise BiolearnError("run directory is empty", f"directory {p}",
                            "pass a directory written by biolearn run, or a file in it")
    head = f"{p}: run directory"
    if others:
        head += f" (also: {', '.join(others)})"
    return "\n\n".join([head, *parts])


def _describe_json(p: Path) -> str:
    obj = read_json(p)
    lines = [f"{p}: JSON"]
    if not isinstance(obj, dict):
        return lines[0] + f" {type(obj).__name__}"
    cfg = obj.get("config") if isinstance(obj.get("config"), dict) else {}
    if cfg:
        lines.append(f"  config: model={cfg.get('model')} name={cfg.get('name')}")
    for key in ("seed", "biolearn_version", "wall_time_s"):
        if key in obj:
            lines.append(f"  {key}: {_short(obj[key])}")
    metrics = obj.get("metrics")
    if isinstance(metrics, dict):
        lines.append(f"  metrics ({len(metrics)}):")
        lines += [f"    {k}: {_short(v)}" for k, v in metrics.items()]
    for key, value in obj.items():
        if key not in ("config", "metrics", "seed", "biolearn_version", "wall_time_s"):
            lines.append(f"  {key}: {_short(value)}")
    return "\n".join(lines)


def _describe_h5(f: h5py.File, p: Path) -> str:
    spikes = f.get("spikes")
    sonata = isinstance(spikes, h5py.Group) and (
        _int_attr(f.attrs.get("magic")) == SONATA_MAGIC or all(
            isinstance(g, h5py.Group) and "timestamps" in g for g in spikes.values()))
    if not sonata:
        lines = [f"{p}: HDF5 file"]
        units = f.get("units")
        if isinstance(units, h5py.Group) and {"spike_times", "spike_times_index"} <= set(units):
            lines.append(_nwb_units(units))
        lines += _tree(f)
        return "\n".join(lines)
    version = f.attrs.get("version")
    ver = ".".join(str(int(v)) for v in np.ravel(version)) if version is not None else "?"
    pops = [(name, _spike_stats(g)) for name, g in spikes.items() if isinstance(g, h5py.Group)]
    total = sum(s["count"] for _, s in pops)
    lines = [f"{p}: SONATA spike file (version {ver}), {len(pops)} population"
             f"{'s' if len(pops) != 1 else ''}, {total:,} spikes"]
    for name, s in pops:
        lines.append(f"  population {name}: " + _fmt_stats(s))
    pres = f.get(PRESENTATIONS)
    if isinstance(pres, h5py.Group):
        for name, g in pres.items():
            if isinstance(g, h5py.Group):
                cols = [k for k, v in g.items() if isinstance(v, h5py.Dataset)]
                shape = g[cols[0]].shape if cols else ()
                rows = shape[0] if shape else 0
                line = f"  presentations {name}: {rows:,} rows ({', '.join(cols)})"
                if isinstance(g.get("start_ms"), h5py.Dataset) and g["start_ms"].ndim == 1 \
                        and g["start_ms"].shape[0] and rows:
                    st = g["start_ms"]
                    line += f", start {_num(float(st[0]))}..{_num(float(st[-1]))} ms"
                if g.attrs:
                    line += "; " + _attrs(g)
                lines.append(line)
    rest = [k for k in f if k not in ("spikes", PRESENTATIONS)]
    for k in rest:
        obj = f.get(k)
        if isinstance(obj, h5py.Group):
            lines += _tree(obj, indent="  ", name=k)
        elif isinstance(obj, h5py.Dataset):
            lines.append(f"  {k}: {_dataset(obj)}")
        else:  # a dangling link or a named datatype
            lines.append(f"  {k}: {type(obj).__name__ if obj is not None else 'broken link'}")
    return "\n".join(lines)


def _int_attr(value: Any) -> int | None:
    """An attribute holding one integer (as SONATA's ``magic``), else None."""
    try:
        a = np.asarray(value)
        return int(a.reshape(-1)[0]) if a.size == 1 and a.dtype.kind in "iu" else None
    except (TypeError, ValueError):
        return None


def _spike_stats(g: h5py.Group) -> dict[str, Any]:
    ts, ids = g.get("timestamps"), g.get("node_ids")
    s: dict[str, Any] = {"count": 0, "sorting": sorting_name(g), "damaged": False,
                         "n_nodes": _int_attr(g.attrs.get("n_nodes"))}
    if not isinstance(ts, h5py.Dataset) or not isinstance(ids, h5py.Dataset):
        s["missing"] = [k for k, d in (("timestamps", ts), ("node_ids", ids)) if d is None]
        return s
    s["units"] = decode_attr(ts.attrs.get("units", "?"))
    nan_fill = ts.dtype.kind == "f" and ts.fillvalue is not None and np.isnan(ts.fillvalue)
    tmin, tmax, imin, imax = np.inf, -np.inf, None, None
    distinct = np.empty(0, np.uint64)
    count = read = 0
    for t, n in paired_blocks(ts, ids, _BLOCK):
        n = n.astype(np.uint64, copy=False)
        k = t.shape[0]
        read += k
        if nan_fill:
            bad = np.flatnonzero(np.isnan(t) | (n == FILL_ID))
            if bad.size:
                k, s["damaged"] = int(bad[0]), True
        t, n = t[:k], n[:k]
        if k:
            tmin, tmax = min(tmin, float(t.min())), max(tmax, float(t.max()))
            lo, hi = int(n.min()), int(n.max())
            imin = lo if imin is None else min(imin, lo)
            imax = hi if imax is None else max(imax, hi)
            distinct = np.union1d(distinct, np.unique(n))
        count += k
        if s["damaged"]:
            break
    s.update(count=count, t_min=tmin, t_max=tmax, id_min=imin, id_max=imax,
             n_distinct=int(distinct.shape[0]),
             damaged=s["damaged"] or read < max(ts.shape[0], ids.shape[0]))  # unequal, unreadable
    return s


def _fmt_stats(s: dict[str, Any]) -> str:
    if "missing" in s:
        return f"incomplete (missing {', '.join(s['missing'])})"
    parts = [f"{s['count']:,} spikes"]
    if s["count"]:
        ids = f"node ids {s['id_min']}..{s['id_max']} ({s['n_distinct']:,} distinct"
        ids += f" of {s['n_nodes']:,})" if s["n_nodes"] is not None else ")"
        parts.append(ids)
        span = s["t_max"] - s["t_min"]
        parts.append(f"time {_num(s['t_min'])}..{_num(s['t_max'])} {s['units']} "
                     f"(span {_num(span)} {s['units']})")
        nodes = s["n_nodes"] or s["n_distinct"]
        if span > 0 and nodes and s["units"] == "ms":
            parts.append(f"mean rate {_num(s['count'] / nodes / (span / 1000.0))} Hz per node")
    elif s["n_nodes"] is not None:
        parts.append(f"{s['n_nodes']:,} nodes")
    parts.append(f"sorting {s['sorting'] or 'missing'}")
    if s["damaged"]:
        parts.append("UNFINISHED TAIL (killed writer?) ignored")
    return ", ".join(parts)


def _nwb_units(units: h5py.Group) -> str:
    idx = units["spike_times_index"][()]
    n_spikes = units["spike_times"].shape[0]
    line = f"  NWB units table: {idx.shape[0]:,} units, {n_spikes:,} spikes"
    if n_spikes:
        st = units["spike_times"]
        lo, hi = np.inf, -np.inf
        for a in range(0, n_spikes, _BLOCK):
            block = st[a:a + _BLOCK]
            lo, hi = min(lo, float(block.min())), max(hi, float(block.max()))
        line += f", time {_num(lo)}..{_num(hi)} s"
    return line


def _tree(g: h5py.Group, indent: str = "  ", name: str | None = None) -> list[str]:
    lines = []
    if name is not None:
        lines.append(f"{indent}{name}/ (group)" + (f"  {_attrs(g)}" if g.attrs else ""))
        indent += "  "
    elif g.attrs:
        lines.append(f"{indent}{_attrs(g)}")

    def visit(key: str, obj: Any) -> None:
        depth = key.count("/")
        pad = indent + "  " * depth
        leaf = key.rsplit("/", 1)[-1]
        if isinstance(obj, h5py.Group):
            lines.append(f"{pad}{leaf}/ (group)" + (f"  {_attrs(obj)}" if obj.attrs else ""))
        elif isinstance(obj, h5py.Dataset):
            lines.append(f"{pad}{leaf}: {_dataset(obj)}")

    g.visititems(visit)
    return lines


def _dataset(d: h5py.Dataset) -> str:
    text = f"{'str' if h5py.check_string_dtype(d.dtype) else d.dtype} {tuple(d.shape)}"
    if d.compression:
        text += f" {d.compression}"
    if d.dtype.kind in "biuf" and 0 < d.size <= _STATS_MAX:
        try:
            a = d[()]
        except (OSError, RuntimeError):
            text += " (unreadable)"
        else:
            if d.dtype.kind == "f":
                finite = a[np.isfinite(a)]
                nan = a.size - finite.size
                a = finite
                if nan:
                    text += f" {nan} non-finite"
            if a.size and d.ndim:
                text += f" min {_num(float(a.min()))} max {_num(float(a.max()))} " \
                        f"mean {_num(float(a.mean()))}"
            elif a.size:
                text += f" = {_short(a.item())}"
    if d.attrs:
        text += f"  {_attrs(d)}"
    return text


def _attrs(obj: h5py.HLObject) -> str:
    out = []
    for k in obj.attrs:
        if k.startswith("__"):
            continue
        try:
            v = decode_attr(obj.attrs[k])
        except (OSError, TypeError, ValueError):
            v = "<unreadable>"
        out.append(f"{k}={_short(v)}")
    return "attrs: " + ", ".join(out)


def _short(v: Any, width: int = 60) -> str:
    if isinstance(v, float):
        text = _num(v)
    elif isinstance(v, np.ndarray):
        text = np.array2string(v, threshold=6, max_line_width=10_000)
    elif isinstance(v, (dict, list)):
        text = json.dumps(v)
    else:
        text = str(v)
    return text if len(text) <= width else text[:width - 3] + "..."


def _num(x: float) -> str:
    if not np.isfinite(x):
        return str(x)
    if x == int(x) and abs(x) < 1e15:
        return str(int(x))
    return f"{x:.6g}"
