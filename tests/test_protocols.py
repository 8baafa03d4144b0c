"""biolearn.protocols.evaluation.forked_map, which spreads the STDP test phase over forked
workers: in order, nothing pickled but items and results, errors and dead workers reported, and
every call with its own data (two test phases in one process cannot see each other's)."""

from __future__ import annotations

import multiprocessing as mp
import os
import threading

import numpy as np
import pytest

from biolearn.protocols.evaluation import forked_map


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_results_in_order_from_unpicklable_closures(workers):
    big = np.arange(1000.0)
    lock = threading.Lock()  # cannot be pickled: fn must reach the workers through fork

    def fn(k: int) -> tuple:
        with lock:
            return k, float(big[k * 10:(k + 1) * 10].sum()), os.getpid()

    got: list = []
    forked_map(fn, range(20), workers, got.append)
    assert [g[0] for g in got] == list(range(20))
    assert [g[1] for g in got] == [float(big[k * 10:(k + 1) * 10].sum()) for k in range(20)]
    pids = {g[2] for g in got}
    assert (pids == {os.getpid()}) if workers == 1 else (os.getpid() not in pids
                                                         and len(pids) == workers)
    assert mp.active_children() == []


def test_two_calls_in_one_process_keep_their_own_data():
    """A test phase run while another is in progress (here: from its result handler) sees only
    its own network and images."""
    a, b = np.full(6, 1.0), np.full(6, 2.0)
    inner: list = []

    def take_outer(r: float) -> None:
        got: list = []
        forked_map(lambda k: float(b[k]), range(6), 2, got.append)
        inner.append(got)
        outer.append(r)

    outer: list = []
    forked_map(lambda k: float(a[k]), range(6), 2, take_outer)
    assert outer == [1.0] * 6 and inner == [[2.0] * 6] * 6


def test_an_error_in_a_worker_is_raised_here():
    def fn(k: int) -> int:
        if k == 5:
            raise ValueError(f"bad item {k}")
        return k

    got: list = []
    with pytest.raises(ValueError, match="bad item 5"):
        forked_map(fn, range(10), 2, got.append)
    assert got == list(range(len(got))) and len(got) <= 5
    assert mp.active_children() == []


def test_a_dead_worker_is_an_error_not_a_hang():
    def fn(k: int) -> int:
        if k == 3:
            os._exit(7)
        return k

    with pytest.raises(RuntimeError, match="exited with code 7"):
        forked_map(fn, range(8), 2, lambda r: None)
    assert mp.active_children() == []


@pytest.mark.parametrize("rule", ["none", "add", "hao", "hao_f32"])
def test_hidden_theta_only_for_a_hidden_layer_whose_theta_adapts(rule):
    """``hidden_theta``: the hidden layer's θ percentiles, or None when its θ never changes (a
    LIF without a theta_rule has θ in its state all the same), whatever the other layers do."""
    from biolearn.engine.front import LIF, Network
    from biolearn.protocols.evaluation import hidden_theta
    from biolearn.protocols.image_stdp import EXC

    net = Network(dt=0.5)
    net.add(LIF("other", 3, theta_rule="add", theta_plus=1.0, theta_init=99.0))
    net.add(LIF(EXC, 101, theta_rule=rule, theta_plus=0.05, tau_theta=1e7, theta_init=20.0))
    sim = net.compile()
    sim.theta[sim.slice(EXC)] = np.arange(101.0)
    got = hidden_theta(sim)
    if rule == "none":
        assert got is None
    else:
        assert got == {"percentiles": [5, 25, 50, 75, 95],
                       "theta_mv": [5.0, 25.0, 50.0, 75.0, 95.0], "mean_mv": 50.0}
