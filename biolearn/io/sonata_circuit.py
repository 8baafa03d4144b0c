"""Export a biolearn :class:`~biolearn.engine.Network` as a SONATA circuit and import it back.

SONATA (Dai et al. 2020, PLoS Comput Biol 16:e1007696) describes a network as node and edge
populations in HDF5 plus CSV type tables and two JSON configs. :func:`export_circuit` writes::

    circuit_config.json          networks (nodes, edges), components, a "biolearn" section
    simulation_config.json       run (tstop, dt, seed, threads), inputs (spike files), output
    network/nodes.h5             one node population per LIF population (model_type point_neuron)
    network/node_types.csv       one node type per LIF population: NEST model + every LIF field
    network/virtual_nodes.h5     one node population per source (model_type virtual)
    network/virtual_node_types.csv
    network/edges.h5             one edge population per projection
    network/edge_types.csv       one edge type per projection: target, STDP rule, dense shape
    components/point_neuron_models/<population>.json   NEST parameters (see backends.nest)
    inputs/<source>.h5           spike times of a SpikeSource (SONATA spike file)

Per node (``nodes.h5``, group ``0``): ``v_init`` (absent when it defaults to v_rest), ``ge_init``,
``gi_init``, ``theta_init`` of LIF neurons and ``rate`` (Hz) of Poisson sources. Per edge
(``edges.h5``, group ``0``): ``syn_weight`` and ``delay`` in NEST's units and grid (pA or nS,
ms ≥ dt, what ``nest.SonataNetwork`` reads) and ``biolearn_weight``, ``biolearn_delay``: the
projection's own numbers, which :func:`import_circuit` restores bit for bit. A value given as a
scalar is stored per node/edge with the dataset attribute ``biolearn_scalar = 1`` so the scalar
comes back. CSV tables are whitespace separated (as NEST's reader expects); floats are written
with ``repr`` so they round-trip exactly. Monitors other than spike monitors are not exported.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from biolearn.engine.front import LIF, Network, PoissonSource, Projection, SpikeMonitor, SpikeSource
from biolearn.errors import BiolearnError
from biolearn.io._h5 import libver, open_read

#: LIF fields stored per node (may be arrays); every other field is a node-type column.
PER_NODE = ("v_init", "ge_init", "gi_init", "theta_init")
LIF_COLUMNS = tuple(f.name for f in dataclasses.fields(LIF) if f.name not in
                    ("name", "n", *PER_NODE))
_STR_FIELDS = {"synapse", "integration", "theta_rule"}
CIRCUIT_CONFIG, SIMULATION_CONFIG = "circuit_config.json", "simulation_config.json"
_NODE_TYPE0, _VIRTUAL_TYPE0 = 100, 1000


def _fmt(x: Any) -> str:
    return x if isinstance(x, str) else repr(float(x))


def _write_table(path: Path, header: list[str], rows: list[list[str]]) -> None:
    for r in rows:
        for v in r:
            if not v or any(c.isspace() for c in v):
                raise BiolearnError(f"value {v!r} cannot go into a whitespace-separated table",
                                    f"writing {path.name}", "use names without spaces")
    path.write_text("\n".join(" ".join(r) for r in [header, *rows]) + "\n")


def _read_table(path: Path) -> list[dict[str, str]]:
    lines = [ln.split() for ln in path.read_text().splitlines() if ln.strip()]
    return [dict(zip(lines[0], ln, strict=True)) for ln in lines[1:]]


def _put(group: h5py.Group, name: str, value: Any, n: int, dtype: Any = np.float64) -> None:
    arr = np.asarray(value, dtype)
    ds = group.create_dataset(name, data=np.broadcast_to(arr, (n,)))
    if arr.ndim == 0:
        ds.attrs["biolearn_scalar"] = np.int8(1)


def _get(group: h5py.Group, name: str) -> Any:
    ds = group[name]
    arr = ds[()]
    if int(ds.attrs.get("biolearn_scalar", 0)):
        return arr[0].item() if len(arr) else 0.0
    return arr


def _rule_json(rule: Any) -> str:
    if rule is None:
        return "none"
    d = {"class": type(rule).__name__, **dataclasses.asdict(rule)}
    return json.dumps(d, separators=(",", ":"))


def _rule_from_json(text: str) -> Any:
    if text == "none":
        return None
    from biolearn.rules import stdp

    d = json.loads(text)
    cls = getattr(stdp, d.pop("class"), None)
    if cls is None or not (isinstance(cls, type) and issubclass(cls, stdp.STDPRule)):
        raise BiolearnError(f"unknown plasticity rule in {text!r}", "in edge_types.csv",
                            "use a rule from biolearn.rules.stdp")
    return cls(**d)


def export_circuit(net: Network, out_dir: str | os.PathLike, duration_ms: float = 1000.0,
                   seed: int = 0, threads: int = 1, g_leak_ns: float = 10.0) -> Path:
    """Write ``net`` as a SONATA circuit into ``out_dir``; returns the circuit_config.json path.

    ``duration_ms``, ``seed`` and ``threads`` go into ``simulation_config.json``; ``g_leak_ns`` is
    the leak conductance that turns biolearn's dimensionless conductances and mV inputs into NEST
    units (see :func:`biolearn.backends.nest.neuron_params`).
    """
    from biolearn.backends.nest import nest_delay_steps, neuron_params, weight_scale

    out = Path(out_dir)
    net_dir, comp_dir, in_dir = out / "network", out / "components" / "point_neuron_models", \
        out / "inputs"
    for d in (net_dir, comp_dir, in_dir):
        d.mkdir(parents=True, exist_ok=True)
    dt = float(net.dt)
    pops = {p.name: p for p in net.populations}
    lifs = [p for p in net.populations if isinstance(p, LIF)]
    srcs = [p for p in net.populations if not isinstance(p, LIF)]
    nodes_cfg: list[dict] = []
    inputs: dict[str, dict] = {}

    # ---- LIF populations: point neurons
    if lifs:
        rows = []
        with h5py.File(net_dir / "nodes.h5", "w", libver=libver()) as f:
            root = f.create_group("nodes")
            for k, p in enumerate(lifs):
                tid = _NODE_TYPE0 + k
                model, params = neuron_params(p, dt, g_leak_ns)
                (comp_dir / f"{p.name}.json").write_text(json.dumps(params, indent=1))
                rows.append([str(tid), p.name, "point_neuron", f"nest:{model}", f"{p.name}.json",
                             *(_fmt(getattr(p, c)) for c in LIF_COLUMNS)])
                g = root.create_group(p.name)
                g.create_dataset("node_type_id", data=np.full(p.n, tid, np.int64))
                g.create_dataset("node_group_id", data=np.zeros(p.n, np.int64))
                g.create_dataset("node_group_index", data=np.arange(p.n, dtype=np.int64))
                g0 = g.create_group("0")
                for key in PER_NODE:
                    val = getattr(p, key)
                    if val is not None:
                        _put(g0, key, val, p.n)
        _write_table(net_dir / "node_types.csv",
                     ["node_type_id", "pop_name", "model_type", "model_template",
                      "dynamics_params", *LIF_COLUMNS], rows)
        nodes_cfg.append({"nodes_file": "$NETWORK_DIR/nodes.h5",
                          "node_types_file": "$NETWORK_DIR/node_types.csv"})

    # ---- sources: virtual nodes (spike times in input files, Poisson rates per node)
    if srcs:
        from biolearn.io.sonata import SpikeWriter

        rows = []
        with h5py.File(net_dir / "virtual_nodes.h5", "w", libver=libver()) as f:
            root = f.create_group("nodes")
            for k, p in enumerate(srcs):
                tid = _VIRTUAL_TYPE0 + k
                kind = "poisson" if isinstance(p, PoissonSource) else "spikes"
                rows.append([str(tid), p.name, "virtual", kind])
                g = root.create_group(p.name)
                g.create_dataset("node_type_id", data=np.full(p.n, tid, np.int64))
                g.create_dataset("node_group_id", data=np.zeros(p.n, np.int64))
                g.create_dataset("node_group_index", data=np.arange(p.n, dtype=np.int64))
                g0 = g.create_group("0")
                if isinstance(p, PoissonSource):
                    _put(g0, "rate", p.rates, p.n)
                else:
                    with SpikeWriter(in_dir / f"{p.name}.h5", {p.name: p.n}) as wr:
                        t = np.asarray(p.times, np.float64)
                        if len(t):
                            wr.write(p.name, t, np.asarray(p.indices, np.int64))
                    inputs[p.name] = {"input_type": "spikes", "module": "sonata",
                                      "input_file": f"$INPUT_DIR/{p.name}.h5",
                                      "node_set": p.name}
        _write_table(net_dir / "virtual_node_types.csv",
                     ["node_type_id", "pop_name", "model_type", "biolearn_source"], rows)
        nodes_cfg.append({"nodes_file": "$NETWORK_DIR/virtual_nodes.h5",
                          "node_types_file": "$NETWORK_DIR/virtual_node_types.csv"})

    # ---- projections: one edge population each
    edges_cfg: list[dict] = []
    if net.projections:
        rows = []
        with h5py.File(net_dir / "edges.h5", "w", libver=libver()) as f:
            root = f.create_group("edges")
            for k, q in enumerate(net.projections):
                post = pops[q.post]
                m = len(q.i)
                g = root.create_group(q.name)
                src = g.create_dataset("source_node_id", data=q.i.astype(np.uint64))
                src.attrs["node_population"] = q.pre
                tgt = g.create_dataset("target_node_id", data=q.j.astype(np.uint64))
                tgt.attrs["node_population"] = q.post
                g.create_dataset("edge_type_id", data=np.full(m, k, np.int64))
                g.create_dataset("edge_group_id", data=np.zeros(m, np.int64))
                g.create_dataset("edge_group_index", data=np.arange(m, dtype=np.int64))
                g0 = g.create_group("0")
                g0.create_dataset("syn_weight", data=q.w * weight_scale(post, q.target,
                                                                        g_leak_ns))
                steps = nest_delay_steps(q, dt, from_generator=isinstance(pops[q.pre],
                                                                          SpikeSource))
                g0.create_dataset("delay", data=np.broadcast_to(steps * dt, (m,)))
                g0.create_dataset("biolearn_weight", data=q.w)
                _put(g0, "biolearn_delay", q.delay, m)
                shape = "none" if q.dense_shape is None else "x".join(map(str, q.dense_shape))
                rows.append([str(k), q.name, "static_synapse", q.target, _rule_json(q.rule),
                             shape])
        _write_table(net_dir / "edge_types.csv",
                     ["edge_type_id", "proj_name", "model_template", "bl_target", "bl_rule",
                      "bl_dense_shape"], rows)
        edges_cfg.append({"edges_file": "$NETWORK_DIR/edges.h5",
                          "edge_types_file": "$NETWORK_DIR/edge_types.csv"})

    monitors = [None if mon.populations is None else list(mon.populations)
                for mon in net.monitors if isinstance(mon, SpikeMonitor)]
    circuit = {
        "manifest": {"$BASE_DIR": ".", "$NETWORK_DIR": "$BASE_DIR/network",
                     "$COMPONENTS_DIR": "$BASE_DIR/components"},
        "components": {"point_neuron_models_dir": "$COMPONENTS_DIR/point_neuron_models"},
        "networks": {"nodes": nodes_cfg, "edges": edges_cfg},
        "biolearn": {"format": 1, "dt": dt, "g_leak_nS": float(g_leak_ns),
                     "populations": [p.name for p in net.populations],
                     "projections": [q.name for q in net.projections],
                     "spike_monitors": monitors},
    }
    sim = {
        "manifest": {"$BASE_DIR": ".", "$INPUT_DIR": "$BASE_DIR/inputs",
                     "$OUTPUT_DIR": "$BASE_DIR/output"},
        "target_simulator": "NEST",
        "network": CIRCUIT_CONFIG,
        "run": {"tstop": float(duration_ms), "dt": dt, "random_seed": int(seed),
                "nest": {"local_num_threads": int(threads)}},
        "inputs": inputs,
        "output": {"output_dir": "$OUTPUT_DIR", "spikes_file": "spikes.h5"},
    }
    (out / CIRCUIT_CONFIG).write_text(json.dumps(circuit, indent=1))
    (out / SIMULATION_CONFIG).write_text(json.dumps(sim, indent=1))
    return out / CIRCUIT_CONFIG


def _resolve(path: str | os.PathLike) -> Path:
    p = Path(path)
    if p.is_dir():
        p = p / CIRCUIT_CONFIG
    if not p.exists():
        raise BiolearnError(f"no SONATA circuit at {path}", "in import_circuit",
                            f"give a directory with {CIRCUIT_CONFIG} or the file itself")
    return p


def import_circuit(path: str | os.PathLike) -> Network:
    """Read a circuit written by :func:`export_circuit` back into a :class:`Network`."""
    cfg_path = _resolve(path)
    base = cfg_path.parent
    cfg = json.loads(cfg_path.read_text())
    meta = cfg.get("biolearn")
    if not meta:
        raise BiolearnError("circuit_config.json has no 'biolearn' section",
                            f"file {cfg_path}", "import circuits that biolearn exported")
    net_dir = base / "network"
    net = Network(dt=float(meta["dt"]))
    built: dict[str, Any] = {}
    if (net_dir / "node_types.csv").exists():
        types = {int(r["node_type_id"]): r for r in _read_table(net_dir / "node_types.csv")}
        with open_read(net_dir / "nodes.h5", "SONATA nodes file") as f:
            for name, g in f["nodes"].items():
                row = types[int(g["node_type_id"][0])]
                kw = {c: (row[c] if c in _STR_FIELDS else float(row[c])) for c in LIF_COLUMNS}
                g0 = g["0"]
                for key in PER_NODE:
                    kw[key] = _get(g0, key) if key in g0 else None
                built[name] = LIF(name, int(g["node_type_id"].shape[0]), **kw)
    if (net_dir / "virtual_node_types.csv").exists():
        from biolearn.io.sonata import read_spikes

        types = {int(r["node_type_id"]): r
                 for r in _read_table(net_dir / "virtual_node_types.csv")}
        with open_read(net_dir / "virtual_nodes.h5", "SONATA nodes file") as f:
            for name, g in f["nodes"].items():
                n = int(g["node_type_id"].shape[0])
                if types[int(g["node_type_id"][0])]["biolearn_source"] == "poisson":
                    built[name] = PoissonSource(name, n, rates=_get(g["0"], "rate"))
                else:
                    t, ids = read_spikes(base / "inputs" / f"{name}.h5", name)[name]
                    built[name] = SpikeSource(name, n, indices=ids.astype(np.int64), times=t)
    for name in meta["populations"]:
        net.add(built[name])
    if meta["projections"]:
        rows = {r["proj_name"]: r for r in _read_table(net_dir / "edge_types.csv")}
        with open_read(net_dir / "edges.h5", "SONATA edges file") as f:
            for name in meta["projections"]:
                g, row = f["edges"][name], rows[name]
                shape = None if row["bl_dense_shape"] == "none" else tuple(
                    int(x) for x in row["bl_dense_shape"].split("x"))
                net.connect(Projection(
                    name, str(g["source_node_id"].attrs["node_population"]),
                    str(g["target_node_id"].attrs["node_population"]),
                    g["source_node_id"][()].astype(np.int64),
                    g["target_node_id"][()].astype(np.int64),
                    g["0"]["biolearn_weight"][()], delay=_get(g["0"], "biolearn_delay"),
                    target=row["bl_target"], rule=_rule_from_json(row["bl_rule"]),
                    dense_shape=shape))
    for names in meta.get("spike_monitors", []):
        net.monitor(SpikeMonitor(names))
    return net
