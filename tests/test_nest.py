"""NEST backend tests, run in a child process: NEST and torch each bring an OpenMP runtime and
crash when loaded into one process, and other test modules import torch. The model mapping is
checked before NEST is imported, so its errors are tested here without NEST."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from biolearn.backends.nest import run_network
from biolearn.engine import LIF, Network, Neurons, PoissonSource
from biolearn.engine.front import Projection
from biolearn.engine.neurons import ADEX, lif_model
from biolearn.errors import BiolearnError
from biolearn.mapping.nest_models import neuron_params, weight_scale

needs_nest = pytest.mark.skipif(importlib.util.find_spec("nest") is None,
                                reason="NEST is not installed (pip install 'biolearn[nest]')")


def _run_cases(marks: str) -> None:
    """The cases of nest_cases.py selected by ``marks``, in a child process."""
    here = Path(__file__).resolve().parent
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        "-m", marks, str(here / "nest_cases.py")], capture_output=True,
                       text=True, timeout=1800, cwd=here.parent)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert " passed" in r.stdout.splitlines()[-1], r.stdout[-3000:]


@needs_nest
def test_nest_backend_cases():
    _run_cases("not slow")


@needs_nest
@pytest.mark.slow
def test_nest_backend_slow_cases():
    _run_cases("slow")


def test_unmappable_model_is_one_line_error_before_nest_is_loaded():
    net = Network(dt=0.1)
    net.add(PoissonSource("in", 2, rates=10.0))
    net.add(Neurons("a", 3, ADEX))
    net.connect(Projection("p", "in", "a", [0], [0], 1.0, target="I_syn"))
    for call in (lambda: run_network(net, 10.0), lambda: neuron_params(net.populations[1], 0.1)):
        with pytest.raises(BiolearnError) as e:
            call()
        msg = str(e.value)
        assert "\n" not in msg
        assert "population 'a' uses model 'adex'" in msg and "NEST backend cannot map" in msg


def test_poisson_dead_time_is_refused_before_nest_is_loaded():
    net = Network(dt=0.5)
    net.add(PoissonSource("in", 2, rates=10.0, t_ref=1.0))
    net.add(LIF("a", 3))
    with pytest.raises(BiolearnError, match="dead time t_ref=1.0 ms of source 'in'"):
        run_network(net, 10.0)


def test_lif_definition_maps_as_its_lif():
    """A Neurons population of a LIF definition maps exactly as the LIF with the same options."""
    lif = LIF("x", 3, synapse="conductance", integration="exact", tau_m=12.0, i_bias=2.0)
    pop = Neurons("x", 3, lif_model("conductance", "exact"), params={"tau_m": 12.0,
                                                                     "i_bias": 2.0})
    assert neuron_params(pop, 0.1) == neuron_params(lif, 0.1)
    assert neuron_params(pop, 0.1)[0] == "iaf_cond_exp"
    assert weight_scale(pop, "gi") == weight_scale(lif, "i") == -10.0
