"""Networks to and from the Neuromorphic Intermediate Representation (NIR; Pedersen et al. 2024,
Nat Commun 15:8122), the graph format snntorch, Norse, Lava, Rockpool, Sinabs, SpiNNaker2 and
others read and write.

**What maps.** ``to_nir`` / ``from_nir`` translate:

============================================  ===============================================
biolearn                                      NIR
============================================  ===============================================
``SpikeSource`` / ``PoissonSource``           ``Input`` (the spikes are data, not network)
current-based ``LIF`` (or a ``Neurons`` of    ``CubaLIF`` (input onto ``ge``/``gi``: one
a current-based ``lif_model`` definition)     synaptic time constant), ``LIF`` (input onto
                                              ``v``, or ``ge`` decaying within one step)
``LIF`` with ``v_thresh = inf``               ``CubaLI`` / ``LI`` (never fires)
``Neurons`` of :data:`IF_MODEL`               ``IF``
``Projection`` (static, one delay)            ``Linear`` (+ ``Delay`` when the delay is > 0)
a 1-neuron source firing every step           the bias of an ``Affine``
neuron populations without outgoing           ``Output``
projections (or ``outputs=``)
============================================  ===============================================

``from_nir`` also reads ``Affine``, ``Scale``, ``Flatten`` (an identity on the flattened index),
``Identity`` and nested ``NIRGraph`` nodes (snntorch's recurrent layers), composing chains of
linear nodes into one projection per (source population, delay).

**What does not map** (a one-line :class:`~biolearn.errors.BiolearnError` naming the population
or projection): conductance-based synapses, adaptive thresholds (``theta_rule``), a voltage floor,
refractory periods, initial states other than rest, plastic projections, several delays within
one projection, current inputs onto both ``v`` and ``ge``/``gi`` or onto ``ge`` and ``gi`` with
different time constants, and every other neuron model (AdEx, Izhikevich, user definitions).
NIR nodes without a biolearn equivalent (convolutions, pooling, ``I``, ``Threshold``,
per-neuron time constants that differ) are refused by ``from_nir`` the same way.

**Units.** NIR has none; graphs written here (and snntorch's) use seconds for time constants and
delays, and biolearn's mV for voltages and thresholds (the graph's ``metadata`` says so).

**Continuous time, and how dt enters.** NIR states ODEs, e.g. ``CubaLIF``::

    τ_syn dI/dt = −I + w_in·S,   τ_mem dv/dt = (v_leak − v) + r·I,   v > v_threshold → v = v_reset

biolearn's current-based LIF is ``τm dv/dt = (v_rest + i_bias − v) + ge + gi``, ``dge/dt =
−ge/τe``, a spike of weight ``w`` adding ``w`` to ``ge``. So ``ge ≡ r·I``, ``τm = τ_mem``,
``τe = τ_syn``, ``v_rest + i_bias = v_leak``, ``v_thresh (+ θ − theta_offset) = v_threshold``,
``v_reset = v_reset``, and a spike arriving through a ``Linear`` weight ``W`` adds
``g·W`` to ``ge`` with the input gain ``g = r·w_in·a/τ_syn``. What a spike *is* in ``S`` is where
simulators disagree, and ``convention`` chooses:

* ``"step"`` (default; what snntorch's exporter writes and its importer reads): a spike is an
  input of value 1 held for one step, i.e. area ``a = dt`` (s). snntorch's canonical form
  ``r = τ_mem/dt``, ``w_in = τ_syn/dt`` then gives unit gain per step (``I += W``, ``v += I``)
  and biolearn weights are ``W·τm/dt``. The graph is tied to its ``dt`` (stored as
  ``metadata["dt_ms"]``); read with another ``dt`` the same graph means different dynamics.
* ``"delta"``: a spike is a Dirac delta of area ``a = 1`` (s·1/s), independent of dt;
  ``to_nir`` writes ``r = 1``, ``w_in = τ_syn``, so the ``Linear`` weight is biolearn's ``w``.

For ``LIF`` (no synaptic current) a spike moves ``v`` by ``r·a·W/τ``; for ``IF`` by ``r·a·W``.
An ``Affine`` bias is a continuous input, the same in both conventions (per step: area ``b·dt``).

**Discretisation.** biolearn integrates with step ``dt`` (ms): ``integration="euler"`` (forward
Euler for v and the current: ``I ← (1 − dt/τ_syn)·I``, ``v ← v + dt/τ_mem·(v_leak − v + r·I)``,
the discretisation snntorch's ``Synaptic``/``Leaky`` use), ``"exact"`` (exact for current
inputs arriving at step boundaries) or ``"euler_expsyn"`` (Euler for v, exact current decay).
``LIF`` nodes become either a LIF whose ``ge`` lasts one step (``euler_expsyn`` with ``τe =
dt/1000``: ``v ← v + dt/τm·(v_leak − v) + Δv``, snntorch's ``Leaky``) or, with
``integration="exact"``, a LIF whose inputs jump ``v`` by ``Δv`` (the exact solution for δ
inputs). ``IF`` nodes become :data:`IF_MODEL` (``v ← v + Δv``). The engine's step order is
integrate → threshold → deliver spikes → reset, so a spike delivered in step ``t`` acts on ``v``
in step ``t + 1``: **every neuron layer adds one step of latency** relative to simulators that
let input of step ``t`` cross the threshold in step ``t`` (snntorch: layer ``k`` of a chain fires
``k`` steps later in biolearn, spikes otherwise equal; tested). Biases are delivered from step
``depth − 1`` on (``depth``: neuron layers on the shortest path from an input, this one
included) so that they line up with that latency. Without graph metadata, ``from_nir`` uses
``dt = 0.1`` ms (snntorch's NIR code assumes ``dt = 1e-4`` s), ``convention="step"`` and
``integration="euler"``; graphs written by ``to_nir`` carry their ``dt``, convention and each
population's integration, so ``from_nir(to_nir(net))`` rebuilds the same network (weights equal
to rounding of ``W/g·g``; identical spikes, tested).
"""

from __future__ import annotations

import os
import warnings
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np

from biolearn.engine.definitions import NeuronModel
from biolearn.errors import BiolearnError, missing_extra

CONVENTIONS = ("step", "delta")
INTEGRATIONS = ("euler", "exact", "euler_expsyn")
#: Name of the one-neuron source that carries Affine biases (fires every step).
BIAS = "bias"

#: Integrate-and-fire neuron for NIR ``IF``: ``v ← v + ge`` every step (``ge``, the step's input,
#: then goes back to 0), spike when ``v > v_thresh + theta``, then ``v = v_reset``. ``theta``
#: (per neuron, constant) carries per-neuron thresholds. ``drift`` must stay 0 for NIR.
IF_MODEL = NeuronModel(
    name="nir_if", equations="dv/dt = drift : volt\nge : volt\ntheta : volt",
    threshold="v > v_thresh + theta", reset="v = v_reset", method="euler",
    parameters={"v_thresh": "1 mV", "v_reset": "0 mV", "drift": "0 mV/ms"},
    rest={"v": "0", "ge": "0"}, after_update="v = v + ge\nge = 0*mV")

_META = "biolearn_"  # prefix of the node metadata keys written here


def _nir() -> Any:
    try:
        import nir
    except ImportError as e:
        raise missing_extra("nir", "interop") from e
    return nir


def _check(name: str, value: Any, allowed: tuple, where: str) -> None:
    if value not in allowed:
        raise BiolearnError(f"{name}={value!r} is not supported", where,
                            f"use one of {', '.join(map(str, allowed))}")


# ================================================================================ to_nir
def _lif_of(p: Any) -> Any:
    """The equivalent LIF of a population, or None if it is not a LIF variant."""
    from biolearn.engine.front import LIF
    from biolearn.mapping.lif_family import as_lif, lif_extras, lif_options

    if isinstance(p, LIF):
        return p
    if lif_options(p.definition) is None:
        return None
    extra = lif_extras(p)
    if extra:
        raise BiolearnError(f"population '{p.name}' sets {', '.join(extra)}, which NIR cannot "
                            "express", "in to_nir", "leave them at the model's defaults")
    return as_lif(p)


def _uniform(x: Any, n: int) -> np.ndarray:
    return np.broadcast_to(np.asarray(x, np.float64), (n,)).astype(np.float64)


def _neuron_spec(p: Any, theta: np.ndarray | None, where: str) -> dict:
    """Continuous parameters of a neuron population NIR can express (else an error)."""
    from biolearn.engine.definitions import value_of
    from biolearn.mapping.lif_family import cannot_map

    if p.definition == IF_MODEL:
        vals = p.values()
        init = p.initial()
        if vals["drift"] != 0.0:
            raise BiolearnError(f"population '{p.name}' has drift {vals['drift']} mV/ms",
                                where, "NIR's IF has none: set drift to 0")
        for var in ("v", "ge"):
            v0 = value_of(init[var], vals, f"in population '{p.name}'.init['{var}']")
            if np.any(np.asarray(v0, float) != 0.0):
                raise _init_error(p, var, where)
        th = value_of(init["theta"], vals, f"in population '{p.name}'.init['theta']")
        th = _uniform(th if theta is None else theta, p.n)
        return {"kind": "if", "n": p.n, "v_reset": vals["v_reset"],
                "thr": vals["v_thresh"] + th}
    lif = _lif_of(p)
    if lif is None:
        raise cannot_map(p, "NIR", where, "use current-based LIF populations or IF_MODEL "
                         "(biolearn.io.nir)")
    if lif.synapse != "current":
        raise BiolearnError(f"population '{p.name}' has conductance-based synapses, which NIR "
                            "cannot express", where, "use synapse='current' (NIR's CubaLIF)")
    if lif.theta_rule != "none":
        raise BiolearnError(f"population '{p.name}' has an adaptive threshold "
                            f"(theta_rule={lif.theta_rule!r}), which NIR cannot express", where,
                            "use theta_rule='none' (pass sim to freeze θ at its current value)")
    if np.isfinite(lif.v_floor):
        raise BiolearnError(f"population '{p.name}' has a voltage floor, which NIR cannot "
                            "express", where, "set v_floor=-inf")
    if lif.t_ref != 0.0:
        raise BiolearnError(f"population '{p.name}' has a refractory period ({lif.t_ref} ms), "
                            "which NIR cannot express", where, "set t_ref=0")
    v_leak = lif.v_rest + lif.i_bias
    if np.any(np.asarray(lif.v_rest if lif.v_init is None else lif.v_init, float) != v_leak):
        raise BiolearnError(f"population '{p.name}' does not start at rest (v_leak = v_rest + "
                            f"i_bias = {v_leak} mV), which NIR cannot express", where,
                            "set v_init = v_rest + i_bias")
    for var in ("ge", "gi"):
        if np.any(np.asarray(getattr(lif, f"{var}_init"), float) != 0.0):
            raise _init_error(p, var, where)
    th = _uniform(lif.theta_init if theta is None else theta, p.n)
    return {"kind": "lif", "n": p.n, "lif": lif, "v_reset": lif.v_reset,
            "v_leak": v_leak, "thr": lif.v_thresh + th - lif.theta_offset}


def _init_error(p: Any, var: str, where: str) -> BiolearnError:
    return BiolearnError(f"population '{p.name}' starts with {var} away from rest, which NIR "
                         "cannot express", where, f"leave {var} at its default initial value")


def _is_bias_source(p: Any, dt: float) -> bool:
    from biolearn.engine.front import PoissonSource

    return (isinstance(p, PoissonSource) and p.n == 1 and p.dead_steps(dt) <= 1
            and float(np.min(np.asarray(p.rates, float))) * dt / 1000.0 >= 1.0)


def to_nir(network: Any, sim: Any = None, convention: str = "step",
           outputs: list[str] | None = None) -> Any:
    """The :class:`nir.NIRGraph` of a biolearn :class:`~biolearn.engine.Network` (module
    docstring: what maps, units, ``convention``).

    ``sim`` (a compiled :class:`~biolearn.engine.Simulation` of ``network``) supplies trained
    weights and the current θ. ``outputs`` names the populations that get an ``Output`` node
    (default: neuron populations without outgoing projections). Each neuron node's metadata holds
    ``biolearn_integration`` (and ``biolearn_input``), each ``Linear`` node's
    ``biolearn_target``, the graph's ``dt_ms``, ``convention`` and units, so that
    :func:`from_nir` rebuilds the same network.
    """
    nir = _nir()
    import biolearn
    from biolearn.engine.front import KIND_NEURONS, TARGETS

    where = "in to_nir"
    _check("convention", convention, CONVENTIONS, where)
    dt = float(network.dt)
    dt_s = dt / 1000.0
    area = dt_s if convention == "step" else 1.0
    sizes = {p.name: p.n for p in network.populations}
    neurons, sources, bias_src = {}, [], set()
    for p in network.populations:
        if p.kind != KIND_NEURONS:
            (bias_src.add if _is_bias_source(p, dt) else sources.append)(p.name)
            continue
        theta = None
        if sim is not None:
            try:
                theta = sim.theta[sim.slice(p.name)].copy()
            except (AttributeError, KeyError, IndexError):
                theta = None
        neurons[p.name] = _neuron_spec(p, theta, where)
    # -- projections, per post population
    incoming: dict[str, list] = {name: [] for name in neurons}
    for q in network.projections:
        if q.rule is not None:
            rule = getattr(getattr(q.rule, "definition", q.rule), "name", type(q.rule).__name__)
            raise BiolearnError(f"projection '{q.name}' is plastic ({rule}), which NIR cannot "
                                "express", where, "export a static copy (rule=None; pass sim for "
                                "the learned weights)")
        var = TARGETS.get(q.target, q.target)
        spec = neurons[q.post]
        allowed = ("ge",) if spec["kind"] == "if" else ("ge", "gi", "v")
        if var not in allowed:
            raise BiolearnError(f"projection '{q.name}' targets '{var}', which NIR cannot "
                                "express", where, "target " + " or ".join(allowed))
        steps = np.unique(np.round(np.asarray(q.delay, float) / dt).astype(np.int64))
        if len(steps) > 1:
            raise BiolearnError(f"projection '{q.name}' has several delays", where,
                                "give every synapse of a projection the same delay (NIR's Delay "
                                "is one per target neuron)")
        w = sim.weights(q.name) if sim is not None else q.w
        dense = np.zeros((sizes[q.pre], sizes[q.post]))
        np.add.at(dense, (q.i, q.j), np.asarray(w, np.float64))
        incoming[q.post].append((q, var, int(steps[0]) if len(steps) else 0, dense))
    # -- neuron nodes
    nodes: dict[str, Any] = {}
    gains: dict[str, np.ndarray] = {}
    for name, spec in neurons.items():
        n = spec["n"]
        used = {var for (_, var, _, _) in incoming[name]}
        thr = _uniform(spec["thr"], n)
        if spec["kind"] == "if":
            r = np.full(n, 1.0 / area if convention == "step" else 1.0)
            gains[name] = r * area
            nodes[name] = nir.IF(r=r, v_threshold=thr, v_reset=_uniform(spec["v_reset"], n),
                                 metadata={f"{_META}input": "ge"})
            continue
        lif = spec["lif"]
        if "v" in used and used & {"ge", "gi"}:
            raise BiolearnError(f"population '{name}' receives inputs onto v and onto ge/gi, "
                                "which one NIR neuron cannot express", where,
                                "use one kind of synapse per population")
        tau_m = lif.tau_m / 1000.0
        meta = {f"{_META}integration": lif.integration}
        common = {"v_leak": _uniform(spec["v_leak"], n), "v_threshold": thr,
                  "v_reset": _uniform(spec["v_reset"], n)}
        taus = {lif.tau_e if v == "ge" else lif.tau_i for v in used if v in ("ge", "gi")}
        if len(taus) > 1:
            raise BiolearnError(f"population '{name}' receives inputs onto ge and gi with "
                                f"different time constants ({lif.tau_e} and {lif.tau_i} ms), "
                                "which NIR's CubaLIF (one tau_syn) cannot express", where,
                                "use one target, or set tau_e = tau_i")
        tau_syn_ms = taus.pop() if taus else lif.tau_e
        instant = lif.integration == "euler_expsyn" and np.exp(-dt / tau_syn_ms) == 0.0
        silent = not np.isfinite(thr).any()
        if "v" in used or instant:
            r = np.full(n, tau_m / area if convention == "step" else tau_m)
            meta[f"{_META}input"] = "v" if "v" in used else "ge_instant"
            # Δv per unit W is r·a/τ (= 1 here); biolearn's w is Δv (v) or Δv·τm/dt (ge_instant)
            dv = r * area / tau_m
            gains[name] = dv if "v" in used else dv * lif.tau_m / dt
            cls = nir.LI if silent else nir.LIF
            kw = {} if silent else {"v_threshold": thr, "v_reset": common["v_reset"]}
            nodes[name] = cls(tau=np.full(n, tau_m), r=r, v_leak=common["v_leak"], **kw,
                              metadata=meta)
            continue
        tau_syn = tau_syn_ms / 1000.0
        if convention == "step":
            r, w_in = np.full(n, tau_m / dt_s), np.full(n, tau_syn / dt_s)
        else:
            r, w_in = np.ones(n), np.full(n, tau_syn)
        gains[name] = r * w_in * area / tau_syn
        meta[f"{_META}input"] = "ge" if used != {"gi"} else "gi"
        if silent:
            nodes[name] = nir.CubaLI(tau_syn=np.full(n, tau_syn), tau_mem=np.full(n, tau_m),
                                     r=r, v_leak=common["v_leak"], w_in=w_in, metadata=meta)
        else:
            nodes[name] = nir.CubaLIF(tau_syn=np.full(n, tau_syn), tau_mem=np.full(n, tau_m),
                                      r=r, w_in=w_in, metadata=meta, **common)
    for name in sources:
        nodes[name] = nir.Input(input_type={"input": np.array([sizes[name]])})
    # -- projections as Linear (+ Delay) nodes; bias sources as Affine biases
    edges: list[tuple[str, str]] = []
    taken = set(nodes)

    def fresh(base: str) -> str:
        name, k = base, 1
        while name in taken:
            name, k = f"{base}_{k}", k + 1
        taken.add(name)
        return name

    has_out = set()
    for post, items in incoming.items():
        g = gains[post]
        biases = [(q, dense) for (q, _, _, dense) in items if q.pre in bias_src]
        linear = sorted([(q, var, steps, dense) for (q, var, steps, dense) in items
                         if q.pre not in bias_src], key=lambda x: x[2] > 0)  # bias: no delay
        if biases and not linear:
            raise BiolearnError(f"population '{post}' has a bias but no other input", where,
                                "NIR carries biases on an Affine node: connect an input")
        bias = (np.sum([d[0] for _, d in biases], axis=0) / g) if biases else None
        for k, (q, var, steps, dense) in enumerate(linear):
            has_out.add(q.pre)
            w = dense.T / g[:, None]
            meta = {f"{_META}target": {"ge": "e", "gi": "i"}.get(var, var)}
            node_name = fresh(q.name)
            if bias is not None and k == 0:
                nodes[node_name] = nir.Affine(weight=w, bias=bias, metadata=meta)
            else:
                nodes[node_name] = nir.Linear(weight=w, metadata=meta)
            edges.append((q.pre, node_name))
            if steps:
                d = fresh(f"{q.name}_delay")
                nodes[d] = nir.Delay(delay=np.full(neurons[post]["n"], steps * dt_s))
                edges += [(node_name, d), (d, post)]
            else:
                edges.append((node_name, post))
    outs = [n for n in neurons if n not in has_out] if outputs is None else list(outputs)
    for name in outs:
        if name not in neurons:
            raise BiolearnError(f"unknown neuron population '{name}' in outputs", where,
                                "name populations of the network")
        o = fresh(f"{name}_output")
        nodes[o] = nir.Output(output_type={"output": np.array([sizes[name]])})
        edges.append((name, o))
    meta = {"source": "biolearn", "biolearn_version": biolearn.__version__, "dt_ms": dt,
            "convention": convention, "time_unit": "s", "voltage_unit": "mV"}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta)


def write_nir(network: Any, path: str | os.PathLike, **kw: Any) -> Path:
    """``nir.write(path, to_nir(network, **kw))``; returns the path."""
    _nir().write(str(path), to_nir(network, **kw))
    return Path(path)


# ================================================================================ from_nir
def read_nir(path: str | os.PathLike, **kw: Any) -> Any:
    """``from_nir(nir.read(path), **kw)`` with a one-line error for a missing or foreign file."""
    nir = _nir()
    p = Path(path)
    if not p.is_file():
        raise BiolearnError(f"NIR file '{p}' not found", "in read_nir", "check the path")
    try:
        graph = nir.read(str(p))
    except (OSError, KeyError, ValueError, AssertionError) as e:
        raise BiolearnError(f"cannot read '{p}' as NIR ({type(e).__name__}: {e})",
                            "in read_nir", "pass a file written by nir.write") from None
    return from_nir(graph, **kw)


def _meta(node: Any, key: str) -> Any:
    v = (getattr(node, "metadata", None) or {}).get(key)
    if isinstance(v, bytes):
        v = v.decode()
    if isinstance(v, np.ndarray) and v.shape == ():
        v = v.item()
    return v.decode() if isinstance(v, bytes) else v


def _flatten(graph: Any, prefix: str = "") -> tuple[dict, list, set, set]:
    """Nodes and edges of ``graph`` with nested graphs inlined; their Input/Output nodes become
    pass-through nodes. Returns (nodes, edges, top-level inputs, top-level outputs)."""
    nir = _nir()
    nodes, edges = {}, []
    entry: dict[str, list[str]] = {}
    exit_: dict[str, list[str]] = {}
    for key, node in graph.nodes.items():
        name = f"{prefix}{key}"
        if isinstance(node, nir.NIRGraph):
            sub_nodes, sub_edges, sub_in, sub_out = _flatten(node, f"{name}_")
            for k in sub_in | sub_out:
                sub_nodes[k] = ("pass", sub_nodes[k])
            nodes.update(sub_nodes)
            edges += sub_edges
            entry[name], exit_[name] = sorted(sub_in), sorted(sub_out)
        else:
            nodes[name] = node
            entry[name] = exit_[name] = [name]
    for a, b in graph.edges:
        for x in exit_[f"{prefix}{a}"]:
            for y in entry[f"{prefix}{b}"]:
                edges.append((x, y))
    ins = {k for k, v in nodes.items() if isinstance(v, nir.Input)}
    outs = {k for k, v in nodes.items() if isinstance(v, nir.Output)}
    return nodes, edges, ins, outs


def _one(values: Any, what: str, node: str) -> float:
    a = np.asarray(values, np.float64).reshape(-1)
    if a.size and not np.all(a == a[0]):
        raise BiolearnError(f"NIR node '{node}' has per-neuron {what} that differ", "in from_nir",
                            f"biolearn populations share one {what}: split the node")
    return float(a[0]) if a.size else 0.0


def _size(node: Any) -> int:
    t = node.output_type.get("output") if node.output_type else None
    return int(np.prod(np.asarray(t).reshape(-1))) if t is not None else 0


def from_nir(graph: Any, dt: float | None = None, convention: str | None = None,
             integration: str | None = None, inputs: dict | None = None,
             record: bool = True) -> Any:
    """A biolearn :class:`~biolearn.engine.Network` simulating a :class:`nir.NIRGraph` (or the
    path of a ``.nir`` file) with step ``dt`` ms (module docstring: mapping, conventions,
    discretisation, latency).

    Defaults come from the graph's metadata when :func:`to_nir` wrote it, else ``dt = 0.1`` ms,
    ``convention="step"``, ``integration="euler"``. ``Input`` nodes become empty
    :class:`~biolearn.engine.SpikeSource` populations named by their node key; ``inputs`` =
    ``{name: (indices, times_ms)}`` fills them. Neuron nodes become populations named by their
    key; with ``record`` every population is recorded. Affine biases come from a one-neuron
    source :data:`BIAS` firing every step.
    """
    nir = _nir()
    from biolearn.engine import (
        LIF,
        Network,
        Neurons,
        PoissonSource,
        Projection,
        SpikeMonitor,
        SpikeSource,
    )

    if isinstance(graph, (str, os.PathLike)):
        return read_nir(graph, dt=dt, convention=convention, integration=integration,
                        inputs=inputs, record=record)
    where = "in from_nir"
    gmeta = dict(getattr(graph, "metadata", None) or {})
    ours = str(gmeta.get("source", "")) == "biolearn"
    if dt is None:
        dt = float(gmeta["dt_ms"]) if ours and "dt_ms" in gmeta else 0.1
    elif ours and "dt_ms" in gmeta and gmeta.get("convention") == "step" and \
            float(gmeta["dt_ms"]) != float(dt):
        warnings.warn(f"the graph was written for dt = {float(gmeta['dt_ms'])} ms in the 'step' "
                      f"convention; simulating it with dt = {dt} ms changes its input gains",
                      stacklevel=2)
    convention = convention or (str(gmeta["convention"]) if ours and "convention" in gmeta
                                else "step")
    _check("convention", convention, CONVENTIONS, where)
    if integration is not None:
        _check("integration", integration, INTEGRATIONS, where)
    dt = float(dt)
    dt_s = dt / 1000.0
    area = dt_s if convention == "step" else 1.0
    nodes, edges, ins, outs = _flatten(graph)
    neuron_types = (nir.CubaLIF, nir.LIF, nir.IF, nir.CubaLI, nir.LI)
    linear_types = (nir.Linear, nir.Affine, nir.Scale, nir.Delay, nir.Flatten)
    for key, node in nodes.items():
        if isinstance(node, tuple) or isinstance(node, neuron_types + linear_types) or \
                key in ins or key in outs or type(node).__name__ == "Identity":
            continue
        raise BiolearnError(f"NIR node '{key}' ({type(node).__name__}) has no biolearn "
                            "equivalent", where, "biolearn maps CubaLIF, LIF, IF, CubaLI, LI, "
                            "Linear, Affine, Scale, Delay, Flatten, Input and Output")
    preds: dict[str, list[str]] = {k: [] for k in nodes}
    for a, b in edges:
        preds[b].append(a)
    spiking = [k for k, v in nodes.items() if isinstance(v, neuron_types)]
    net = Network(dt=dt)
    sizes: dict[str, int] = {}
    inputs = dict(inputs or {})
    for key in sorted(ins):
        sizes[key] = _size(nodes[key])
        idx, times = inputs.pop(key, (np.zeros(0, np.int64), np.zeros(0)))
        net.add(SpikeSource(key, sizes[key], np.asarray(idx, np.int64), np.asarray(times, float)))
    if inputs:
        raise BiolearnError(f"no Input node named {sorted(inputs)}", where,
                            "inputs are " + ", ".join(sorted(ins)))
    # -- neuron populations and the biolearn weight of one unit of input (per neuron)
    gain: dict[str, np.ndarray] = {}
    bias_gain: dict[str, np.ndarray] = {}
    target: dict[str, str] = {}
    for key in spiking:
        node = nodes[key]
        n = _size(node)
        sizes[key] = n
        integ = integration or _meta(node, f"{_META}integration") or "euler"
        mode = _meta(node, f"{_META}input")
        if isinstance(node, (nir.CubaLIF, nir.CubaLI)):
            thr = np.asarray(getattr(node, "v_threshold", np.full(n, np.inf)), float).reshape(-1)
            tau_m = _one(node.tau_mem, "tau_mem", key) * 1000.0
            tau_s = _one(node.tau_syn, "tau_syn", key) * 1000.0
            g = np.asarray(node.r, float) * np.asarray(node.w_in, float) / (tau_s / 1000.0)
            gain[key], bias_gain[key] = g * area, g * dt_s
            target[key] = "i" if mode == "gi" else "e"
            v_reset = _one(getattr(node, "v_reset", np.zeros(n)), "v_reset", key)
            net.add(_lif(LIF, key, n, integ, tau_m, tau_s, _one(node.v_leak, "v_leak", key),
                         v_reset, thr))
        elif isinstance(node, (nir.LIF, nir.LI)):
            thr = np.asarray(getattr(node, "v_threshold", np.full(n, np.inf)), float).reshape(-1)
            tau_m = _one(node.tau, "tau", key) * 1000.0
            dv = np.asarray(node.r, float) / (tau_m / 1000.0)  # Δv per unit W and unit area
            on_v = mode == "v" or (mode is None and integ == "exact")
            v_reset = _one(getattr(node, "v_reset", np.zeros(n)), "v_reset", key)
            if on_v:
                gain[key], bias_gain[key], target[key] = dv * area, dv * dt_s, "v"
                # ge, gi stay 0; their time constant only has to keep the exact update finite
                net.add(_lif(LIF, key, n, integ, tau_m, tau_m / 2.0, _one(
                    node.v_leak, "v_leak", key), v_reset, thr))
            else:
                gain[key] = dv * area * tau_m / dt
                bias_gain[key], target[key] = dv * dt_s * tau_m / dt, "e"
                net.add(_lif(LIF, key, n, "euler_expsyn", tau_m, dt / 1000.0, _one(
                    node.v_leak, "v_leak", key), v_reset, thr))
        else:  # IF
            thr = np.asarray(node.v_threshold, float).reshape(-1)
            r = np.asarray(node.r, float)
            gain[key], bias_gain[key], target[key] = r * area, r * dt_s, "ge"
            base = float(thr.min()) if np.all(thr == thr[0]) else 0.0
            net.add(Neurons(key, n, IF_MODEL, {"v_thresh": base, "v_reset": _one(
                node.v_reset, "v_reset", key)}, {"theta": thr - base if base else thr}))
    # -- linear maps composed back to spiking nodes: {(source, delay steps): matrix}, bias
    memo: dict[str, tuple[dict, dict]] = {}
    active: set[str] = set()

    def signal(key: str) -> tuple[dict, dict]:
        """What node ``key`` outputs: {(source, steps): M [n_key, n_src]}, {steps: bias}."""
        if key in memo:
            return memo[key]
        node = nodes[key]
        if key in ins or isinstance(node, neuron_types):
            out = ({(key, 0): None}, {})  # None: identity
            memo[key] = out
            return out
        if key in active:
            raise BiolearnError(f"NIR node '{key}' is part of a loop without a neuron", where,
                                "every cycle of a graph must pass through a neuron")
        active.add(key)
        mats, bias = _sum_inputs(key)
        active.discard(key)
        if isinstance(node, (nir.Linear, nir.Affine)):
            w = np.asarray(node.weight, np.float64)
            mats = {s: (w if m is None else w @ m) for s, m in mats.items()}
            bias = {s: w @ b for s, b in bias.items()}
            if isinstance(node, nir.Affine):
                bias[0] = bias.get(0, 0.0) + np.asarray(node.bias, np.float64)
        elif isinstance(node, nir.Scale):
            s_ = np.asarray(node.scale, np.float64).reshape(-1)
            mats = {s: (np.diag(s_) if m is None else s_[:, None] * m) for s, m in mats.items()}
            bias = {s: s_ * b for s, b in bias.items()}
        elif isinstance(node, nir.Delay):
            d = _one(node.delay, "delay", key)
            k = int(round(d * 1000.0 / dt))
            if abs(k * dt - d * 1000.0) > 1e-9 * max(1.0, d * 1000.0):
                warnings.warn(f"NIR Delay '{key}' of {d * 1000.0:g} ms is rounded to {k} steps "
                              f"of {dt:g} ms", stacklevel=3)
            mats = {(src, s + k): m for (src, s), m in mats.items()}
            bias = {s + k: b for s, b in bias.items()}
        memo[key] = (mats, bias)
        return memo[key]

    def _sum_inputs(key: str) -> tuple[dict, dict]:
        mats: dict = {}
        bias: dict = {}
        for p in preds[key]:
            pm, pb = signal(p)
            for s, m in pm.items():
                if s in mats:
                    mats[s] = _add(mats[s], m, sizes.get(s[0], 0))
                else:
                    mats[s] = m
            for s, b in pb.items():
                bias[s] = bias.get(s, 0.0) + b
        return mats, bias

    # -- projections
    depth = _depths(spiking, ins, preds, nodes, neuron_types)
    names = {p.name for p in net.populations}
    bias_added = False
    for key in spiking:
        mats, bias = _sum_inputs(key)
        n, g = sizes[key], gain[key]
        var = target[key]
        for (src, steps), m in mats.items():
            m = np.eye(sizes[src]) if m is None else m
            if m.shape != (n, sizes[src]):
                raise BiolearnError(f"the input of NIR node '{key}' from '{src}' has shape "
                                    f"{m.shape}, expected {(n, sizes[src])}", where,
                                    "check the graph's Linear weights ([out, in])")
            via = [p for p in preds[key] if src in _sources(p, memo)]
            origin = _origin(via[0], preds, nodes) if len(via) == 1 else None
            lin = origin is not None and isinstance(nodes[origin], (nir.Linear, nir.Affine))
            t = _meta(nodes[origin], f"{_META}target") if lin else None
            tgt = t if (t in ("e", "i") and var in ("e", "i")) else var
            pname = _unique(origin if lin else f"{src}_{key}", names)
            w = m.T * g[None, :]
            i_, j_ = np.divmod(np.arange(w.size, dtype=np.int64), n)
            net.connect(Projection(pname, src, key, i_, j_, w.ravel(), delay=steps * dt,
                                   target=tgt, dense_shape=w.shape))
        for steps, b in bias.items():
            b = np.broadcast_to(np.asarray(b, np.float64), (n,))
            if not np.any(b):
                continue
            if not bias_added:
                net.add(PoissonSource(_unique(BIAS, names), 1, rates=1000.0 / dt))
                bias_added = True
            w = (b * bias_gain[key])[None, :]
            i_, j_ = np.zeros(n, np.int64), np.arange(n, dtype=np.int64)
            net.connect(Projection(_unique(f"{BIAS}_{key}", names), BIAS, key, i_, j_, w[0],
                                   delay=(depth[key] - 1 + steps) * dt, target=var,
                                   dense_shape=(1, n)))
    if record:
        net.monitor(SpikeMonitor(None))
    return net


def _lif(cls: Any, key: str, n: int, integ: str, tau_m: float, tau_s: float, v_leak: float,
         v_reset: float, thr: np.ndarray) -> Any:
    thr = np.broadcast_to(thr, (n,))
    same = bool(np.all(thr == thr[0])) if n else True
    base = float(thr[0]) if same and n else 0.0
    return cls(key, n, synapse="current", integration=integ, tau_m=tau_m, tau_e=tau_s,
               tau_i=tau_s, v_rest=v_leak, v_reset=v_reset, v_thresh=base, t_ref=0.0,
               theta_init=np.zeros(n) if same else thr.copy())


def _origin(key: str, preds: dict, nodes: dict) -> str:
    """The node a Delay / pass-through chain ending at ``key`` starts from."""
    nir = _nir()
    while (isinstance(nodes[key], (tuple, nir.Delay, nir.Flatten))
           or type(nodes[key]).__name__ == "Identity") and len(preds[key]) == 1:
        key = preds[key][0]
    return key


def _add(a: Any, b: Any, n: int) -> np.ndarray:
    a = np.eye(n) if a is None else a
    b = np.eye(n) if b is None else b
    return a + b


def _sources(key: str, memo: dict) -> set[str]:
    return {s for (s, _) in memo.get(key, ({}, {}))[0]} if key in memo else {key}


def _unique(name: str, taken: set[str]) -> str:
    out, k = name, 1
    while out in taken:
        out, k = f"{name}_{k}", k + 1
    taken.add(out)
    return out


def _depths(spiking: list[str], ins: set[str], preds: dict, nodes: dict,
            neuron_types: tuple) -> dict[str, int]:
    """Neuron layers on the shortest path from an input to each neuron node (itself included)."""
    succ: dict[str, list[str]] = {k: [] for k in nodes}
    for b, ps in preds.items():
        for a in ps:
            succ[a].append(b)
    best: dict[str, int] = {k: 0 for k in ins}
    queue = deque((k, 0) for k in ins)
    while queue:  # 0-1 BFS: entering a neuron node costs 1
        k, d = queue.popleft()
        for nxt in succ[k]:
            cost = d + (1 if isinstance(nodes[nxt], neuron_types) else 0)
            if cost < best.get(nxt, 1 << 30):
                best[nxt] = cost
                (queue.append if cost > d else queue.appendleft)((nxt, cost))
    return {k: max(1, best.get(k, 1)) for k in spiking}


__all__ = ["BIAS", "CONVENTIONS", "IF_MODEL", "INTEGRATIONS", "from_nir", "read_nir", "to_nir",
           "write_nir"]
