"""Model definitions: checks with one-line errors, and the on-disk kernel cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from biolearn.engine import Network, NeuronModel, Neurons, SpikeSource, SynapseModel, connect
from biolearn.engine.definitions import neuron_ir, synapse_ir
from biolearn.engine.neurons import ADEX, lif_model
from biolearn.errors import BiolearnError

LIF_EQS = "dv/dt = (v_rest - v)/tau_m : volt (unless refractory)"
PARS = {"v_rest": "-65 mV", "tau_m": "10 ms", "v_th": "-50 mV"}


def _neuron(**kw) -> NeuronModel:
    d = dict(name="mine", equations=LIF_EQS, threshold="v > v_th", reset="v = v_rest",
             parameters=PARS)
    d.update(kw)
    return NeuronModel(**d)


@pytest.mark.parametrize("kw,what,part", [
    ({"equations": "dv/dt = (v_rest - v + I)/tau_m : volt"}, "unknown identifier 'I'",
     "mine.equations"),
    ({"reset": "tau_m = 5*ms"}, "writes 'tau_m', a parameter", "mine.reset"),
    ({"reset": "u = 0*mV"}, "writes 'u', an unknown variable", "mine.reset"),
    ({"equations": "dv/dt = (v_rest - v)**2/(tau_m*mV) : volt", "method": "exact"},
     "method 'exact' cannot integrate", "mine.method"),
    ({"equations": "dv/dt = v : volt"}, "inconsistent units", "mine.equations (dv/dt)"),
    ({"threshold": "v > 3*ms"}, "inconsistent units", "mine.threshold"),
    ({"threshold": "v > v_thresh"}, "unknown identifier 'v_thresh'", "mine.threshold"),
    ({"equations": "dv/dt = (v_rest - v)/tau_m : volt\ntau_m : second"},
     "both a variable and a parameter", "mine.parameters"),
])
def test_neuron_definition_mistakes_give_one_line(kw, what, part):
    with pytest.raises(BiolearnError) as e:
        neuron_ir(_neuron(**kw))
    msg = str(e.value)
    assert what in msg and f"in {part}" in msg, msg
    assert "\n" not in msg


@pytest.mark.parametrize("kw,what,part", [
    ({"on_pre": "w += eta*apost\napre += 1\nx = 1"}, "unknown variable", "r.on_pre"),
    ({"on_pre": "w += eta*apost\napre += w"}, "depends on synaptic", "r.on_pre"),
    ({"on_post": "eta = 1\napost += 1"}, "a parameter", "r.on_post"),
    ({"model": "w : 1\ndapre/dt = -apre**2/tau : 1 (event-driven)\n"
               "dapost/dt = -apost/tau : 1 (event-driven)"}, "not a linear decay", "r.model"),
    ({"on_pre": "w += eta*apost*mV\napre += 1"}, "inconsistent units", "r.on_pre"),
])
def test_synapse_definition_mistakes_give_one_line(kw, what, part):
    d = dict(name="r", model="w : 1\ndapre/dt = -apre/tau : 1 (event-driven)\n"
                              "dapost/dt = -apost/tau : 1 (event-driven)",
             on_pre="w += eta*apost\napre += 1", on_post="w += eta*apre\napost += 1",
             parameters={"eta": 0.01, "tau": "20 ms"})
    d.update(kw)
    with pytest.raises(BiolearnError) as e:
        synapse_ir(SynapseModel(**d))
    assert what in str(e.value) and f"in {part}" in str(e.value), str(e.value)


def test_projection_to_a_missing_variable_is_refused():
    net = Network(dt=0.1)
    net.add(SpikeSource("in", 1, [0], [1.0]))
    net.add(Neurons("a", 2, ADEX))
    with pytest.raises(BiolearnError, match="has no variable 'ge'.*target one of v, w, I_syn"):
        net.connect(connect.dense("p", "in", "a", np.ones((1, 2)), target="e"))


def test_parameter_values_convert_units():
    pop = Neurons("a", 1, ADEX, params={"C": "0.281 nF", "b": "0.0805 nA", "g_L": 30.0})
    v = pop.values()
    assert v["C"] == pytest.approx(281.0) and v["b"] == pytest.approx(80.5) and v["g_L"] == 30.0
    with pytest.raises(BiolearnError, match="dimension"):
        Neurons("a", 1, ADEX, params={"C": "3 mV"}).values()


def test_lif_variants_are_definitions():
    m = lif_model("conductance", "euler_expsyn", "hao", True)
    ir = neuron_ir(m)
    assert m.name == "lif_coba_euler_expsyn_theta_hao_floor"
    assert ir.variables == ["v", "ge", "gi", "theta"] and ir.held == ["v"]


# ------------------------------------------------------------------------------------ cache
_SCRIPT = textwrap.dedent("""
    import json, sys, time
    import numpy as np
    from biolearn.engine import Network, NeuronModel, Neurons, SpikeSource, SpikeMonitor, connect
    from biolearn.rules.stdp import PAIR_STDP
    th = sys.argv[1]
    m = NeuronModel("cached", "dv/dt = (v_rest - v + I_syn)/tau_m : volt\\n"
                    "dI_syn/dt = -I_syn/(5*ms) : volt", threshold="v > " + th,
                    reset="v = v_rest", parameters={"v_rest": "-65 mV", "tau_m": "10 ms"},
                    init={"v": "v_rest"})
    net = Network(dt=0.1)
    net.add(SpikeSource("in", 4, np.arange(40) % 4, np.arange(40) * 2.0))
    net.add(Neurons("n", 3, m))
    net.connect(connect.dense("p", "in", "n", np.full((4, 3), 30.0), target="I_syn",
                              rule=PAIR_STDP))
    net.monitor(SpikeMonitor())
    t0 = time.perf_counter()
    sim = net.compile()
    out = sim.run(100.0)
    stats = [f.stats for f in (sim.kernels.run_steps, sim.kernels._update_0, sim.kernels._pre_1)]
    print(json.dumps({"s": time.perf_counter() - t0,
                      "hits": sum(len(s.cache_hits) for s in stats),
                      "misses": sum(len(s.cache_misses) for s in stats),
                      "spikes": int(len(out["spikes"]["n"][0]))}))
""")


def _run(tmp_path, threshold: str) -> dict:
    env = dict(os.environ, BIOLEARN_KERNEL_CACHE=str(tmp_path / "kernels"))
    r = subprocess.run([sys.executable, "-c", _SCRIPT, threshold], capture_output=True,
                       text=True, env=env, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_second_process_compiles_nothing_and_an_edit_recompiles(tmp_path):
    first = _run(tmp_path, "-55*mV")
    second = _run(tmp_path, "-55*mV")
    edited = _run(tmp_path, "-56*mV")  # one character of the definition changed
    assert first["misses"] > 0 and first["spikes"] > 0
    assert second["misses"] == 0 and second["hits"] > 0
    assert second["spikes"] == first["spikes"]
    assert edited["misses"] > 0
    # the cached module lives in the cache folder, with Numba's files beside it
    mods = list((tmp_path / "kernels").glob("biolearn_kernels_*.py"))
    assert len(mods) == 2
    print(f"compile+run: first {first['s']:.2f} s, cached {second['s']:.2f} s")


def test_rest_values_follow_the_parameters_after_the_expression_is_remembered():
    """A rest or initial value is rendered once and then evaluated with the values of the
    moment: a changed parameter gives the new value, units become numbers in biolearn units."""
    from biolearn.engine.definitions import value_of

    for v_rest in (-65.0, -70.0, -65.0):
        assert value_of("v_rest", {"v_rest": v_rest, "b": 2.0}, "x") == v_rest
    assert value_of("b*v_rest + 1*mV", {"v_rest": -70.0, "b": 2.0}, "x") == -139.0
    assert value_of("b*v_rest + 1*mV", {"v_rest": -60.0, "b": 0.5}, "x") == -29.0
    assert value_of("0", {"v_rest": -70.0}, "x") == 0.0
    assert value_of(3.5, {}, "x") == 3.5
    with pytest.raises(BiolearnError, match="cannot evaluate 'v_rest'"):
        value_of("v_rest", {"b": 2.0}, "in lif.rest")  # a name the model does not have
