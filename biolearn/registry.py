"""Name → recipe. A YAML ``model:`` key names a recipe registered here by a module in models/.

A recipe is a function ``run(cfg, ctx) -> dict`` of metrics together with the dataclass ``params``
that types and validates the config's ``params:`` section (see :mod:`biolearn.config`), and, for
a recipe that trains one engine network, its ``build(params, rng) -> Network``: what callers such
as ``compare`` use to build the network without importing the recipe's module.
Benchmarks (``biolearn bench NAME``) register the same way with :func:`register_bench`.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from biolearn.errors import BiolearnError


@dataclass(frozen=True)
class Recipe:
    """A registered recipe: ``run(cfg, ctx) -> metrics``, its ``params`` dataclass and, if it has
    one, ``build(params, rng) -> Network`` (the untrained network ``run`` trains)."""

    name: str
    params: type
    run: Callable[[Any, Any], dict]
    description: str = ""
    build: Callable[[Any, Any], Any] | None = None
    extendable: Callable[[dict, Path], tuple[str, ...] | str] | None = None
    """Given a run's saved config (a dict) and its directory, the pass counts (dotted keys) that
    ``--resume`` may raise: more passes for a finished or stopped run, the same as a run given
    them from the start; or a sentence saying why it cannot have more."""


@dataclass(frozen=True)
class Bench:
    name: str
    run: Callable[..., dict]
    description: str = ""


_RECIPES: dict[str, Recipe] = {}
_BENCHES: dict[str, Bench] = {}
_loaded: set[str] = set()
_load_errors: dict[str, str] = {}


def register(name: str, params: type, description: str = "",
             build: Callable[[Any, Any], Any] | None = None,
             extendable: Callable[[dict, Path], tuple[str, ...] | str] | None = None
             ) -> Callable:
    """Decorator: register ``run(cfg, ctx) -> metrics`` as model ``name`` (``params`` dataclass;
    ``build(params, rng) -> Network``, if given, builds the network the recipe trains;
    ``extendable``: see :attr:`Recipe.extendable`)."""

    def deco(fn: Callable) -> Callable:
        _RECIPES[name] = Recipe(name, params, fn, description or (fn.__doc__ or "").strip(),
                                build, extendable)
        return fn

    return deco


def register_bench(name: str, description: str = "") -> Callable:
    """Decorator: register ``run(quiet: bool) -> dict`` as benchmark ``name``."""

    def deco(fn: Callable) -> Callable:
        _BENCHES[name] = Bench(name, fn, description or (fn.__doc__ or "").strip())
        return fn

    return deco


def _load(package: str) -> None:
    if package in _loaded:
        return
    _loaded.add(package)
    pkg = importlib.import_module(package)
    for mod in pkgutil.iter_modules(pkg.__path__):
        if not mod.name.startswith("_"):
            name = f"{package}.{mod.name}"
            try:
                importlib.import_module(name)
            except Exception as e:  # one broken module must not hide every other recipe
                _load_errors[name] = f"{type(e).__name__}: {e}".replace("\n", " ")


def load_errors() -> dict[str, str]:
    """Modules of models/ or benchmarks/ that failed to import, with the reason."""
    recipes()
    benches()
    return dict(_load_errors)


def _broken_hint(package: str) -> str:
    bad = [f"{m} ({err})" for m, err in _load_errors.items() if m.startswith(package + ".")]
    return ("; these modules failed to import: " + "; ".join(bad)) if bad else ""


def closest(name: str, choices: list[str]) -> str:
    """A 'did you mean' hint naming the closest choice, or '' if none is close."""
    hit = difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
    return f"did you mean '{hit[0]}'?" if hit else ""


def recipes() -> dict[str, Recipe]:
    _load("biolearn.models")
    return dict(sorted(_RECIPES.items()))


def benches() -> dict[str, Bench]:
    _load("biolearn.benchmarks")
    return dict(sorted(_BENCHES.items()))


def get_recipe(name: str, where: str = "model") -> Recipe:
    table = recipes()
    if name not in table:
        hint = closest(name, list(table))
        raise BiolearnError(
            f"unknown model '{name}'",
            where if where.startswith(("in ", "at ")) else f"at '{where}'",
            (hint + " " if hint else "") + "choose one of: " + (", ".join(table) or "(none)")
            + _broken_hint("biolearn.models"),
        )
    return table[name]


def get_bench(name: str) -> Bench:
    table = benches()
    if name not in table:
        hint = closest(name, list(table))
        raise BiolearnError(
            f"unknown benchmark '{name}'",
            "in 'biolearn bench NAME'",
            (hint + " " if hint else "") + "choose one of: " + (", ".join(table) or "(none)")
            + _broken_hint("biolearn.benchmarks"),
        )
    return table[name]
