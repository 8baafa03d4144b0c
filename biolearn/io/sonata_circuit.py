"""Export a biolearn :class:`~biolearn.engine.Network` as a SONATA circuit and import it back.

SONATA (Dai et al. 2020, PLoS Comput Biol 16:e1007696) describes a network as node and edge
populations in HDF5 plus CSV type tables and two JSON configs. :func:`export_circuit` writes::

    circuit_config.json          networks (nodes, edges), components, a "biolearn" section
    simulation_config.json       run (tstop, dt, seed, threads), inputs (spike files), output
    network/nodes.h5             one node population per neuron population (point_neuron)
    network/node_types.csv       one node type per neuron population: NEST model, biolearn
                                 model name, every LIF field
    network/virtual_nodes.h5     one node population per source (model_type virtual)
    network/virtual_node_types.csv
    network/edges.h5             one edge population per projection
    network/edge_types.csv       one edge type per projection: target, STDP rule, dense shape
    components/point_neuron_models/<population>.json   NEST parameters (see mapping.nest_models)
    inputs/<source>.h5           spike times of a SpikeSource (SONATA spike file)

Neuron populations are mapped by their model definition (:data:`NODE_MODELS`): every LIF
variant of :func:`biolearn.engine.neurons.lif_model`, as a :class:`~biolearn.engine.LIF` or as
``Neurons(..., lif_model(...))`` (which comes back as the equivalent ``LIF``); any other model is
an error naming the population and its model. Plasticity rules are stored by definition name
(:data:`RULES`): a rule class of :mod:`biolearn.rules.stdp` with its fields, a built-in
:class:`~biolearn.engine.SynapseModel` by name, any other ``SynapseModel`` by name with its whole
definition in the ``biolearn`` section of ``circuit_config.json`` (``synapse_models``).

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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from biolearn.engine.definitions import SynapseModel
from biolearn.engine.front import (
    KIND_NEURONS,
    KIND_POISSON,
    KIND_SPIKES,
    LIF,
    Network,
    PoissonSource,
    Projection,
    SpikeMonitor,
    SpikeSource,
)
from biolearn.errors import BiolearnError
from biolearn.io._h5 import libver, open_read
from biolearn.mapping.lif_family import as_lif, cannot_map, lif_definition, lif_extras, lif_options
from biolearn.rules import stdp

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


# ------------------------------------------------------------------------------- model tables
def _lif_view(p: Any) -> LIF:
    extra = lif_extras(p)
    if extra:
        raise BiolearnError(f"population '{p.name}' sets {', '.join(sorted(extra))}, which a "
                            "LIF node type has no column for", "in export_circuit",
                            "keep their defaults, or save the network otherwise")
    return as_lif(p)


@dataclass(frozen=True)
class NodeModel:
    """How a family of neuron definitions is written as a SONATA node type and read back."""

    view: Callable[[Any], Any]  # population → object holding the columns and per-node fields
    nest: Callable[..., tuple[str, dict]]  # (view, dt, g_leak_ns) → model_template, dynamics
    columns: tuple[str, ...]  # node-type columns (text in ``text``, numbers otherwise)
    text: frozenset
    per_node: tuple[str, ...]  # per-node datasets of group 0 (absent when None)
    build: Callable[..., Any]  # (name, n, **columns and per-node values) → population


def _nest_lif(p: LIF, dt: float, g_leak_ns: float) -> tuple[str, dict]:
    from biolearn.mapping.nest_models import neuron_params

    return neuron_params(p, dt, g_leak_ns)


#: Neuron definitions a circuit holds, by family (:func:`node_family`): the LIF variants of
#: :func:`biolearn.engine.neurons.lif_model` (node type: NEST model and parameters, every LIF
#: field). Add an entry to store another family; every other model is an error.
NODE_MODELS: dict[str, NodeModel] = {
    "lif": NodeModel(_lif_view, _nest_lif, LIF_COLUMNS, frozenset(_STR_FIELDS), PER_NODE, LIF),
}


def node_family(definition: Any) -> str | None:
    """The :data:`NODE_MODELS` key of a neuron definition, ``None`` if it has none."""
    return "lif" if lif_options(definition) is not None else None


def _node_model(p: Any) -> tuple[NodeModel, Any]:
    entry = NODE_MODELS.get(node_family(p.definition))
    if entry is None:
        raise cannot_map(p, "the SONATA circuit export", "in export_circuit",
                         "use a LIF population (lif_* models), add its family to NODE_MODELS "
                         "in biolearn.io.sonata_circuit, or export the network to Brian2 with "
                         "to_brian2 (docs/engine.md)")
    return entry, entry.view(p)


def _family_of_name(name: str | None, where: str) -> NodeModel:
    if name is None:  # files written before node types named their model: LIF
        return NODE_MODELS["lif"]
    family = "lif" if lif_definition(name) is not None else None
    if family not in NODE_MODELS:
        raise BiolearnError(f"unknown neuron model '{name}'", where,
                            "import circuits written by biolearn's export_circuit")
    return NODE_MODELS[family]


#: Plasticity rule definitions a circuit names without storing them: those of
#: :mod:`biolearn.rules.stdp` (pair_stdp, pair_stdp_mult, diehl_cook_stdp, symmetric_stdp, …).
RULES: dict[str, SynapseModel] = {
    d.name: d for d in vars(stdp).values() if isinstance(d, SynapseModel)}
#: Parameter-set classes of those rules, stored as class name, definition name and fields.
RULE_CLASSES: dict[str, type] = {
    c.__name__: c for c in vars(stdp).values()
    if isinstance(c, type) and issubclass(c, stdp.STDPRule) and c is not stdp.STDPRule}


def _rule_json(q: Projection, custom: dict[str, SynapseModel]) -> str:
    """A projection's rule for ``edge_types.csv``: ``{"class", "definition", fields}`` for a
    rule class, ``{"definition": name}`` for a definition of :data:`RULES`, ``{"synapse_model":
    name}`` for any other SynapseModel, which goes into ``custom`` (stored in
    circuit_config.json)."""
    rule = q.rule
    if rule is None:
        return "none"
    d, _ = q.rule_spec()
    if isinstance(rule, SynapseModel) and RULES.get(d.name) == d:
        out = {"definition": d.name}
    elif isinstance(rule, SynapseModel):
        if custom.setdefault(d.name, d) != d:
            raise BiolearnError(f"two different rule definitions are named '{d.name}'",
                                f"in projection '{q.name}'",
                                "give every SynapseModel its own name")
        out = {"synapse_model": d.name}
    elif RULE_CLASSES.get(type(rule).__name__) is type(rule):
        out = {"class": type(rule).__name__, "definition": d.name, **dataclasses.asdict(rule)}
    else:
        raise BiolearnError(f"the rule of projection '{q.name}' is a {type(rule).__name__} "
                            f"(model '{d.name}'), which a SONATA circuit cannot store",
                            "in export_circuit", "give the rule as a SynapseModel (its values "
                            "as parameter defaults) or as a rule class of biolearn.rules.stdp")
    return json.dumps(out, separators=(",", ":"))


def _synapse_json(d: SynapseModel, where: str) -> dict:
    out = dataclasses.asdict(d)
    try:
        json.dumps(out)
    except TypeError:
        raise BiolearnError(f"rule definition '{d.name}' has values JSON cannot hold", where,
                            "write its parameter defaults as numbers or strings with units, "
                            "e.g. '20 ms'") from None
    return out


def _rule_from_json(text: str, custom: dict[str, SynapseModel]) -> Any:
    if text == "none":
        return None
    d = json.loads(text)
    name = d.pop("definition", None)
    if "class" in d:  # a parameter-set class (files of every version)
        cls = RULE_CLASSES.get(d.pop("class"))
        rule = None if cls is None else cls(**d)
        if rule is not None and name in (None, rule.definition.name):
            return rule
    elif "synapse_model" in d and d["synapse_model"] in custom:
        return custom[d["synapse_model"]]
    elif name in RULES:
        return RULES[name]
    raise BiolearnError(f"unknown plasticity rule in {text!r}", "in edge_types.csv",
                        "use a rule from biolearn.rules.stdp or a SynapseModel stored with "
                        "the circuit")


def export_circuit(net: Network, out_dir: str | os.PathLike, duration_ms: float = 1000.0,
                   seed: int = 0, threads: int = 1, g_leak_ns: float = 10.0) -> Path:
    """Write ``net`` as a SONATA circuit into ``out_dir``; returns the circuit_config.json path.

    ``duration_ms``, ``seed`` and ``threads`` go into ``simulation_config.json``; ``g_leak_ns`` is
    the leak conductance that turns biolearn's dimensionless conductances and mV inputs into NEST
    units (see :func:`biolearn.mapping.nest_models.neuron_params`).
    """
    from biolearn.mapping.nest_models import nest_delay_steps, nest_neuron, weight_scale

    # every model and rule is looked up before anything is written
    neurons = [_node_model(p) for p in net.populations if p.kind == KIND_NEURONS]
    custom_rules: dict[str, SynapseModel] = {}
    rule_text = {q.name: _rule_json(q, custom_rules) for q in net.projections}
    synapse_models = {name: _synapse_json(d, "in export_circuit")
                      for name, d in custom_rules.items()}
    out = Path(out_dir)
    net_dir, comp_dir, in_dir = out / "network", out / "components" / "point_neuron_models", \
        out / "inputs"
    for d in (net_dir, comp_dir, in_dir):
        d.mkdir(parents=True, exist_ok=True)
    dt = float(net.dt)
    pops = {p.name: p for p in net.populations}
    srcs = [p for p in net.populations if p.kind != KIND_NEURONS]
    nodes_cfg: list[dict] = []
    inputs: dict[str, dict] = {}

    # ---- neuron populations: point neurons, one node type each
    if neurons:
        columns = list(dict.fromkeys(c for entry, _ in neurons for c in entry.columns))
        rows = []
        with h5py.File(net_dir / "nodes.h5", "w", libver=libver()) as f:
            root = f.create_group("nodes")
            for k, (entry, p) in enumerate(neurons):
                tid = _NODE_TYPE0 + k
                model, params = entry.nest(p, dt, g_leak_ns)
                (comp_dir / f"{p.name}.json").write_text(json.dumps(params, indent=1))
                rows.append([str(tid), p.name, "point_neuron", f"nest:{model}", f"{p.name}.json",
                             p.definition.name, *(_fmt(getattr(p, c)) if c in entry.columns
                                                  else "none" for c in columns)])
                g = root.create_group(p.name)
                g.create_dataset("node_type_id", data=np.full(p.n, tid, np.int64))
                g.create_dataset("node_group_id", data=np.zeros(p.n, np.int64))
                g.create_dataset("node_group_index", data=np.arange(p.n, dtype=np.int64))
                g0 = g.create_group("0")
                for key in entry.per_node:
                    val = getattr(p, key)
                    if val is not None:
                        _put(g0, key, val, p.n)
        _write_table(net_dir / "node_types.csv",
                     ["node_type_id", "pop_name", "model_type", "model_template",
                      "dynamics_params", "bl_model", *columns], rows)
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
                kind = {KIND_POISSON: "poisson", KIND_SPIKES: "spikes"}[p.kind]
                rows.append([str(tid), p.name, "virtual", kind])
                g = root.create_group(p.name)
                g.create_dataset("node_type_id", data=np.full(p.n, tid, np.int64))
                g.create_dataset("node_group_id", data=np.zeros(p.n, np.int64))
                g.create_dataset("node_group_index", data=np.arange(p.n, dtype=np.int64))
                g0 = g.create_group("0")
                if p.kind == KIND_POISSON:
                    _put(g0, "rate", p.rates, p.n)
                    if p.t_ref:
                        g0.attrs["biolearn_t_ref"] = float(p.t_ref)
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
                # targets NEST has no synapse for (v) keep w·g_L: NEST cannot run such an edge
                scale = (weight_scale(post, q.target, g_leak_ns)
                         if q.target_var in nest_neuron(post)[0].weight else g_leak_ns)
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
                g0.create_dataset("syn_weight", data=q.w * scale)
                steps = nest_delay_steps(q, dt, from_generator=pops[q.pre].kind == KIND_SPIKES)
                g0.create_dataset("delay", data=np.broadcast_to(steps * dt, (m,)))
                g0.create_dataset("biolearn_weight", data=q.w)
                _put(g0, "biolearn_delay", q.delay, m)
                shape = "none" if q.dense_shape is None else "x".join(map(str, q.dense_shape))
                rows.append([str(k), q.name, "static_synapse", q.target, rule_text[q.name],
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
    if synapse_models:
        circuit["biolearn"]["synapse_models"] = synapse_models
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
                entry = _family_of_name(row.get("bl_model"), f"node type of '{name}' in "
                                        "node_types.csv")
                kw = {c: (row[c] if c in entry.text else float(row[c])) for c in entry.columns}
                g0 = g["0"]
                for key in entry.per_node:
                    kw[key] = _get(g0, key) if key in g0 else None
                built[name] = entry.build(name, int(g["node_type_id"].shape[0]), **kw)
    if (net_dir / "virtual_node_types.csv").exists():
        from biolearn.io.sonata import read_spikes

        types = {int(r["node_type_id"]): r
                 for r in _read_table(net_dir / "virtual_node_types.csv")}
        with open_read(net_dir / "virtual_nodes.h5", "SONATA nodes file") as f:
            for name, g in f["nodes"].items():
                n = int(g["node_type_id"].shape[0])
                if types[int(g["node_type_id"][0])]["biolearn_source"] == "poisson":
                    built[name] = PoissonSource(name, n, rates=_get(g["0"], "rate"),
                                                t_ref=float(g["0"].attrs.get("biolearn_t_ref",
                                                                             0.0)))
                else:
                    t, ids = read_spikes(base / "inputs" / f"{name}.h5", name)[name]
                    built[name] = SpikeSource(name, n, indices=ids.astype(np.int64), times=t)
    for name in meta["populations"]:
        net.add(built[name])
    custom = {}
    for name, d in meta.get("synapse_models", {}).items():
        custom[name] = SynapseModel(**{**d, "learning_rates": tuple(d.get("learning_rates", ()))})
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
                    target=row["bl_target"], rule=_rule_from_json(row["bl_rule"], custom),
                    dense_shape=shape))
    for names in meta.get("spike_monitors", []):
        net.monitor(SpikeMonitor(names))
    return net
