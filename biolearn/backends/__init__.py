"""Backends: the simulators that run a biolearn :class:`~biolearn.engine.Network`, one interface
chosen by name (as Brian2's devices, Stimberg, Brette & Goodman 2019, eLife 8:e47314).

A backend is a :class:`Backend` subclass registered under its name with
:func:`register_backend`; :func:`get_backend` returns it. Built in:

* ``biolearn``: the engine itself (generated Numba kernels), the default.
* ``brian2``: the Brian2 export (:mod:`biolearn.backends.brian2`), runtime targets ``numpy`` and
  ``cython`` or C++ standalone (option ``target``).
* ``nest``: NEST (:mod:`biolearn.backends.nest`; the ``nest`` extra), OpenMP ``threads``.

:meth:`Backend.run` takes the network and a duration (ms) and returns
``{"spikes": {population: (times_ms, local_ids)}, "timing": {...}}`` plus what the backend adds
(``states``, ``weights``, ``approximations``); other keyword options are the backend's own.
A recipe registers how a trained run of it is evaluated on a backend with
:func:`register_evaluation`: ``biolearn run CONFIG --backend NAME`` trains on the engine, then
calls it (:func:`evaluation_for`).
"""

from __future__ import annotations

import importlib.util
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from biolearn.errors import BiolearnError, missing_extra

DEFAULT_BACKEND = "biolearn"

_BACKENDS: dict[str, Backend] = {}
_EVALUATIONS: dict[tuple[str, str], Callable[..., dict]] = {}


class Backend(ABC):
    """A simulator that runs a :class:`~biolearn.engine.Network`.

    Subclasses set ``name`` and, when the simulator is optional, ``module`` (its import name),
    ``package`` (the distribution providing it) and ``extra`` (the biolearn extra installing it),
    and implement :meth:`simulate`."""

    name: str = ""
    description: str = ""
    module: str | None = None
    package: str = ""
    extra: str = ""

    def available(self) -> bool:
        """Whether the simulator can be imported (without importing it)."""
        return self.module is None or importlib.util.find_spec(self.module) is not None

    def require(self) -> None:
        """Raise the one-line error naming the extra to install when :meth:`available` is false."""
        if not self.available():
            raise missing_extra(self.package, self.extra)

    @abstractmethod
    def simulate(self, net: Any, duration_ms: float, seed: int, **options: Any) -> dict:
        """Run ``net`` for ``duration_ms`` from its initial state; the result of :meth:`run`."""

    def run(self, net: Any, duration_ms: float, *, seed: int = 0,
            out_spikes_path: str | os.PathLike | None = None, **options: Any) -> dict:
        """Run ``net`` for ``duration_ms`` (ms) with random seed ``seed``; with
        ``out_spikes_path`` also write the spikes as a SONATA spike file (:func:`write_spikes`).

        Returns ``{"spikes": {pop: (times_ms, local_ids)}, "timing": {...}, ...}``."""
        res = self.simulate(net, float(duration_ms), int(seed), **options)
        if out_spikes_path is not None:
            write_spikes(out_spikes_path, net, res["spikes"])
        return res


def register_backend(cls: type[Backend]) -> type[Backend]:
    """Class decorator: register an instance of ``cls`` under ``cls.name``."""
    _BACKENDS[cls.name] = cls()
    return cls


def backends() -> dict[str, Backend]:
    """The registered backends by name."""
    return dict(sorted(_BACKENDS.items()))


def get_backend(name: str) -> Backend:
    """The backend registered as ``name``; a one-line error naming the choices otherwise."""
    if name not in _BACKENDS:
        from biolearn.registry import closest

        hint = closest(name, list(_BACKENDS))
        raise BiolearnError(f"unknown backend '{name}'", "in biolearn.backends",
                            (hint + " " if hint else "") + "choose one of: "
                            + ", ".join(backends()))
    return _BACKENDS[name]


def register_evaluation(backend: str, model: str) -> Callable:
    """Decorator: register ``evaluate(run_dir, *, threads, data_root, quiet) -> dict`` as the
    evaluation on ``backend`` of a trained run of recipe ``model`` (results into ``run_dir``)."""

    def deco(fn: Callable[..., dict]) -> Callable[..., dict]:
        _EVALUATIONS[(backend, model)] = fn
        return fn

    return deco


def evaluation_for(backend: str, model: str) -> Callable[..., dict] | None:
    """What ``biolearn run --backend NAME`` does after training a run of ``model``: ``None`` on
    the engine (the recipe's own test phase ran there), else the evaluation the recipe
    registered for ``backend``. A one-line error when there is none or the backend is not
    installed, so the command stops before training."""
    from biolearn.registry import recipes

    be = get_backend(backend)
    if be.name == DEFAULT_BACKEND:
        return None
    recipes()  # recipe modules register their evaluations when imported
    fn = _EVALUATIONS.get((be.name, model))
    if fn is None:
        have = sorted(m for b, m in _EVALUATIONS if b == be.name)
        other = sorted(b for b, m in _EVALUATIONS if m == model)
        raise BiolearnError(
            f"--backend {be.name} evaluates " + (", ".join(have) if have else "no trained")
            + f" runs, not '{model}'", "in 'biolearn run'",
            f"drop --backend {be.name} for this config"
            + (f" or use --backend {' or '.join(other)}" if other else ""))
    be.require()
    return fn


def write_spikes(path: str | os.PathLike, net: Any, spikes: dict) -> None:
    """Spikes ``{pop: (times_ms, local_ids)}`` of ``net`` as a SONATA spike file sorted by time."""
    from biolearn.io.sonata import SpikeWriter

    sizes = {name: net.population(name).n for name in spikes}
    with SpikeWriter(path, sizes, sorting="by_time") as wr:
        for name, (t, i) in spikes.items():
            if len(t):
                wr.write(name, t, i)


@register_backend
class EngineBackend(Backend):
    """The biolearn engine: the network compiled into generated Numba kernels."""

    name = DEFAULT_BACKEND
    description = "the biolearn engine (generated Numba kernels)"

    def simulate(self, net: Any, duration_ms: float, seed: int) -> dict:
        """Compile ``net`` and run it: spikes and states as
        :meth:`biolearn.engine.Simulation.run`; ``timing`` splits compiling (``build_s``) from
        running (``simulate_s``, ``simulate_cpu_s``)."""
        t0 = time.perf_counter()
        sim = net.compile(seed=seed)
        build_s = time.perf_counter() - t0
        t0, c0 = time.perf_counter(), time.process_time()
        res = sim.run(duration_ms)
        return {**res, "timing": {"build_s": build_s, "simulate_s": time.perf_counter() - t0,
                                  "simulate_cpu_s": time.process_time() - c0}}


# the other built-in backends register themselves on import
from biolearn.backends import brian2, nest  # noqa: E402, F401
