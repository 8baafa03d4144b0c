"""SONATA circuit export/import: exact round trip, files readable by libsonata."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from biolearn.engine import LIF, Network, PoissonSource, SpikeMonitor, SpikeSource, connect
from biolearn.engine.front import Projection
from biolearn.io.sonata_circuit import export_circuit, import_circuit
from biolearn.rules.stdp import DiehlCookSTDP, PairSTDP, SymmetricSTDP


def feature_network() -> Network:
    """A network exercising every feature of the engine's front."""
    rng = np.random.default_rng(7)
    net = Network(dt=0.1)
    net.add(PoissonSource("poi", 30, rates=rng.uniform(0, 40, 30)))
    net.add(PoissonSource("poi_s", 5, rates=12.5, t_ref=0.3))
    net.add(SpikeSource("sg", 8, indices=rng.integers(0, 8, 50), times=rng.uniform(0, 80, 50)))
    net.add(LIF("cuba", 20, synapse="current", integration="exact", tau_m=15.0, tau_e=3.0,
                tau_i=7.0, v_rest=-49.0, v_reset=-61.0, v_thresh=-50.0, t_ref=2.3, i_bias=0.7,
                v_init=rng.uniform(-60, -50, 20)))
    net.add(LIF("coba", 15, synapse="conductance", integration="euler_expsyn", v_floor=-90.0,
                theta_rule="hao", theta_init=rng.uniform(18, 25, 15), theta_plus=0.07,
                tau_theta=1e6, theta_offset=20.0, ge_init=rng.uniform(0, 1, 15), gi_init=0.3,
                e_i=-85.0))
    net.add(LIF("eul", 6, integration="euler", theta_rule="add", theta_plus=0.05,
                tau_theta=1e4, v_init=-58.0))
    net.connect(connect.dense("poi_cuba", "poi", "cuba", rng.uniform(0, 2, (30, 20)),
                              rule=PairSTDP(multiplicative=True, w_max=3.0), delay=0.5))
    net.connect(connect.dense("poi_coba", "poi", "coba", rng.uniform(0, 0.3, (30, 15)),
                              rule=SymmetricSTDP(eta=0.01, w_max=1.0)))
    net.connect(connect.one_to_one("sg_eul", "sg", "eul", 6, 0.8, delay=1.0))
    i, j = np.nonzero(rng.random((20, 20)) < 0.3)
    net.connect(Projection("cuba_cuba", "cuba", "cuba", i, j, -rng.uniform(0, 2, len(i)),
                           delay=rng.uniform(0.1, 3.0, len(i)), target="i"))
    net.connect(connect.all_but_self("coba_coba", "coba", "coba", 15, 2.0, target="i"))
    net.connect(connect.fixed_probability("cuba_eul", "cuba", "eul", 20, 6, 0.5, 1.5, rng,
                                          target="v", delay=0.2))
    net.connect(connect.dense("poi_s_eul", "poi_s", "eul", rng.uniform(0, 1, (5, 6)),
                              rule=DiehlCookSTDP(nu_pre=1e-3, w_max=2.0)))
    net.monitor(SpikeMonitor(["cuba", "coba", "sg"]))
    return net


def _same(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(np.asarray(a), np.asarray(b))
    if isinstance(a, float) and isinstance(b, float) and np.isnan(a):
        return np.isnan(b)
    return a == b and type(a) is type(b) or (isinstance(a, float | int) and a == b
                                             and not isinstance(a, bool))


def test_round_trip_preserves_everything(tmp_path):
    net = feature_network()
    export_circuit(net, tmp_path, duration_ms=200.0)
    back = import_circuit(tmp_path)
    assert back.dt == net.dt
    assert [p.name for p in back.populations] == [p.name for p in net.populations]
    for p, q in zip(net.populations, back.populations, strict=True):
        assert type(p) is type(q)
        for f in dataclasses.fields(p):
            a, b = getattr(p, f.name), getattr(q, f.name)
            assert _same(a, b), (p.name, f.name, a, b)
    assert [q.name for q in back.projections] == [q.name for q in net.projections]
    for p, q in zip(net.projections, back.projections, strict=True):
        for key in ("pre", "post", "target", "rule", "dense_shape"):
            assert getattr(p, key) == getattr(q, key), (p.name, key)
        for key in ("i", "j", "w"):
            assert np.array_equal(getattr(p, key), getattr(q, key)), (p.name, key)
        assert np.ndim(p.delay) == np.ndim(q.delay)
        assert np.array_equal(np.asarray(p.delay), np.asarray(q.delay))
    assert back.monitors[0].populations == ["cuba", "coba", "sg"]


def test_imported_network_simulates_identically(tmp_path):
    net = feature_network()
    export_circuit(net, tmp_path)
    back = import_circuit(tmp_path)
    a = net.compile(seed=3).run(100.0)["spikes"]
    b = back.compile(seed=3).run(100.0)["spikes"]
    assert sum(len(t) for t, _ in a.values()) > 50
    for k in a:
        assert np.array_equal(a[k][0], b[k][0]) and np.array_equal(a[k][1], b[k][1])


def test_files_open_with_libsonata(tmp_path):
    libsonata = pytest.importorskip("libsonata")
    net = feature_network()
    export_circuit(net, tmp_path)
    nodes = libsonata.NodeStorage(str(tmp_path / "network" / "nodes.h5"))
    assert nodes.population_names == {"cuba", "coba", "eul"}
    coba = nodes.open_population("coba")
    assert coba.size == 15
    th = coba.get_attribute("theta_init", coba.select_all())
    assert np.array_equal(th, net.population("coba").theta_init)
    virt = libsonata.NodeStorage(str(tmp_path / "network" / "virtual_nodes.h5"))
    assert virt.open_population("poi").size == 30
    edges = libsonata.EdgeStorage(str(tmp_path / "network" / "edges.h5"))
    pop = edges.open_population("cuba_cuba")
    q = net.projections[3]
    sel = pop.select_all()
    assert pop.source == "cuba" and pop.target == "cuba" and pop.size == len(q.i)
    assert np.array_equal(pop.source_nodes(sel), q.i)
    assert np.array_equal(pop.target_nodes(sel), q.j)
    assert np.array_equal(pop.get_attribute("biolearn_delay", sel), q.delay)
    # NEST units: a current-based weight of w mV is w·g_L pA (g_L = 10 nS)
    assert np.allclose(pop.get_attribute("syn_weight", sel), q.w * 10.0)
    # delay grid: ≥ one step, whole steps
    d = pop.get_attribute("delay", sel)
    assert np.all(d >= 0.1 - 1e-12) and np.allclose(d / 0.1, np.round(d / 0.1))
    spikes = libsonata.SpikeReader(str(tmp_path / "inputs" / "sg.h5"))
    assert spikes.get_population_names() == ["sg"]
    cfg = json.loads((tmp_path / "simulation_config.json").read_text())
    assert cfg["inputs"]["sg"]["node_set"] == "sg" and cfg["run"]["dt"] == 0.1


def test_node_types_table_for_nest(tmp_path):
    net = feature_network()
    export_circuit(net, tmp_path)
    rows = [ln.split() for ln in (tmp_path / "network" / "node_types.csv").read_text()
            .splitlines()]
    head = rows[0]
    models = {r[head.index("pop_name")]: r[head.index("model_template")] for r in rows[1:]}
    assert models == {"cuba": "nest:iaf_psc_exp", "coba": "nest:iaf_cond_exp",
                      "eul": "nest:iaf_cond_exp"}
    params = json.loads((tmp_path / "components" / "point_neuron_models" / "cuba.json")
                        .read_text())
    # τm = C_m/g_L kept; refractory: biolearn holds v round(2.3/0.1) − 1 = 22 steps
    assert params["C_m"] / 10.0 == pytest.approx(15.0)
    assert params["t_ref"] == pytest.approx(2.2)
    assert params["I_e"] == pytest.approx(7.0)


# ------------------------------------------------------------------------------ model lookup
def test_lif_definition_population_comes_back_as_its_lif(tmp_path):
    from biolearn.engine import Neurons
    from biolearn.engine.neurons import lif_model

    net = Network(dt=0.1)
    net.add(PoissonSource("in", 20, rates=30.0))
    net.add(Neurons("h", 5, lif_model("conductance", "euler_expsyn", "hao", True),
                    params={"v_floor": -90.0, "theta_plus": 0.05, "tau_theta": 1e5},
                    init={"theta": np.linspace(0.0, 2.0, 5)}))
    net.connect(connect.dense("in_h", "in", "h", np.full((20, 5), 0.2), target="ge"))
    net.monitor(SpikeMonitor(["h"]))
    export_circuit(net, tmp_path)
    back = import_circuit(tmp_path)
    h = back.population("h")
    assert isinstance(h, LIF) and h.definition == net.population("h").definition
    assert np.array_equal(h.theta_init, np.linspace(0.0, 2.0, 5)) and h.v_init is None
    a = net.compile(seed=2).run(100.0)["spikes"]["h"]
    b = back.compile(seed=2).run(100.0)["spikes"]["h"]
    assert len(a[0]) > 5 and np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_unmappable_model_is_one_line_error_and_writes_nothing(tmp_path):
    from biolearn.engine import Neurons
    from biolearn.engine.neurons import ADEX
    from biolearn.errors import BiolearnError

    net = Network(dt=0.1)
    net.add(Neurons("a", 3, ADEX))
    with pytest.raises(BiolearnError) as e:
        export_circuit(net, tmp_path / "c")
    msg = str(e.value)
    assert "\n" not in msg
    assert "population 'a' uses model 'adex'" in msg and "SONATA circuit export cannot map" in msg
    assert not (tmp_path / "c").exists()


def test_bare_synapse_models_round_trip(tmp_path):
    from biolearn.engine import SynapseModel
    from biolearn.rules.stdp import PAIR_STDP, SYMMETRIC_STDP

    mine = dataclasses.replace(PAIR_STDP, name="my_stdp",
                               parameters={**PAIR_STDP.parameters, "tau_pre": "15 ms"})
    clash = dataclasses.replace(SYMMETRIC_STDP, parameters={**SYMMETRIC_STDP.parameters,
                                                            "inc": 0.2})
    net = Network(dt=0.1)
    net.add(PoissonSource("in", 4, rates=20.0))
    net.add(LIF("o", 3))
    for k, rule in enumerate((SYMMETRIC_STDP, mine, clash)):
        net.connect(connect.dense(f"p{k}", "in", "o", np.full((4, 3), 0.1), rule=rule))
    export_circuit(net, tmp_path)
    back = import_circuit(tmp_path)
    rules = [q.rule for q in back.projections]
    assert rules[0] is SYMMETRIC_STDP  # a built-in definition is stored by name
    assert rules[1] == mine and isinstance(rules[1], SynapseModel)
    assert rules[2] == clash and rules[2] != SYMMETRIC_STDP
    stored = json.loads((tmp_path / "circuit_config.json").read_text())["biolearn"]
    assert set(stored["synapse_models"]) == {"my_stdp", "symmetric_stdp"}


def test_rules_that_cannot_be_stored_are_named(tmp_path):
    from biolearn.errors import BiolearnError
    from biolearn.rules.stdp import PAIR_STDP

    @dataclasses.dataclass(frozen=True)
    class MyRule:
        a_plus: float = 0.02
        definition = PAIR_STDP

        def values(self) -> dict:
            return {"a_plus": self.a_plus}

    net = Network(dt=0.1)
    net.add(PoissonSource("in", 2, rates=20.0))
    net.add(LIF("o", 2))
    net.connect(connect.dense("p", "in", "o", np.full((2, 2), 0.1), rule=MyRule()))
    with pytest.raises(BiolearnError) as e:
        export_circuit(net, tmp_path)
    assert "projection 'p' is a MyRule (model 'pair_stdp')" in str(e.value)
    twins = Network(dt=0.1)
    twins.add(PoissonSource("in", 2, rates=20.0))
    twins.add(LIF("o", 2))
    for k, tau in enumerate(("10 ms", "30 ms")):
        d = dataclasses.replace(PAIR_STDP, name="mine",
                                parameters={**PAIR_STDP.parameters, "tau_pre": tau})
        twins.connect(connect.dense(f"p{k}", "in", "o", np.full((2, 2), 0.1), rule=d))
    with pytest.raises(BiolearnError, match="two different rule definitions are named 'mine'"):
        export_circuit(twins, tmp_path)


def test_reads_files_written_before_model_and_rule_names(tmp_path):
    """Older circuits: no ``bl_model`` column, rules as class + fields only."""
    net = feature_network()
    export_circuit(net, tmp_path)
    path = tmp_path / "network" / "node_types.csv"
    rows = [ln.split() for ln in path.read_text().splitlines()]
    k = rows[0].index("bl_model")
    path.write_text("\n".join(" ".join(r[:k] + r[k + 1:]) for r in rows) + "\n")
    path = tmp_path / "network" / "edge_types.csv"
    text = path.read_text()
    for name in ("pair_stdp_mult", "symmetric_stdp", "diehl_cook_stdp"):
        text = text.replace(f'"definition":"{name}",', "")
    assert '"definition"' not in text
    path.write_text(text)
    back = import_circuit(tmp_path)
    for p, q in zip(net.populations, back.populations, strict=True):
        assert type(p) is type(q)
        if isinstance(p, LIF):
            assert p.definition == q.definition
    assert [q.rule for q in back.projections] == [q.rule for q in net.projections]
