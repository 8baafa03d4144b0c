"""biolearn's unit system for model definitions, and conversion from Brian2 quantities.

Model definitions are written with Brian2's units (``: volt``, ``"281 pF"``, ``-50*mV``); the
kernels work on plain floats in one coherent system built on **ms, mV and pA**, so that the
equations need no conversion factors:

====================  ===========  ===================================
dimension             unit         e.g.
====================  ===========  ===================================
time                  ms           τ
voltage               mV           v, E_L, Δ_T
current               pA           I, w (AdEx)
conductance           nS           g_L (pA/mV)
capacitance           pF           C (pA·ms/mV)
frequency             1/ms (kHz)   rates inside equations
====================  ===========  ===================================

Poisson source rates stay in Hz (they are not part of an equation). A dimension is converted by
scaling seconds by 1e-3, amperes by 1e-12 and kg·m² by 1e-24 (which makes the volt 1e-3);
dimensions with metres or kilograms outside that pairing have no biolearn unit.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

import numpy as np

from biolearn.errors import BiolearnError

_NUMBER = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?inf)\s*\*?\s*(.*?)\s*$")


def _b2units() -> dict:
    from brian2.core.namespace import DEFAULT_UNITS

    return DEFAULT_UNITS


def scale(dim: Any) -> float:
    """Value in SI of one biolearn unit of Brian2 dimension ``dim`` (1e-3 for volt, …)."""
    d = getattr(dim, "_dims", dim)
    m, kg, s, a = d[0], d[1], d[2], d[3]
    if m != 2 * kg or any(d[4:]):
        raise BiolearnError(f"dimension {dim} has no biolearn unit", "in a model definition",
                            "use quantities built from seconds, volts, amperes and siemens")
    return 10.0 ** (-24 * kg - 3 * s - 12 * a)


@cache
def unit_dim(unit: str) -> Any:
    """Brian2 dimension of a unit name as written after ``:`` in equations (``volt``, ``1``)."""
    from brian2.units.fundamentalunits import DIMENSIONLESS

    if unit.strip() in ("1", ""):
        return DIMENSIONLESS
    try:
        q = eval(unit, {"__builtins__": {}}, dict(_b2units()))  # noqa: S307 - unit names only
    except Exception as e:
        raise BiolearnError(f"unknown unit '{unit}'", "in a model definition",
                            "use a Brian2 unit name such as mV, ms, pA, nS, pF or 1") from e
    return getattr(q, "dim", DIMENSIONLESS)


def to_value(x: Any, dim: Any, where: str) -> Any:
    """A parameter value in biolearn units of dimension ``dim``.

    ``x`` may be a number or array (already in biolearn units), a Brian2 quantity, or a string
    such as ``"281 pF"``, ``"-70.6*mV"`` or ``"0.5 nA"`` (converted, dimension checked)."""
    from brian2.units.fundamentalunits import DIMENSIONLESS, Quantity, get_dimensions

    if isinstance(x, str):
        mt = _NUMBER.match(x)
        if not mt:
            raise BiolearnError(f"cannot read '{x}' as a number with a unit", where,
                                "write e.g. '20 ms', '-70.6 mV', '0.5 nA' or a plain number")
        num, unit = float(mt.group(1)), mt.group(2)
        if not unit:
            return num
        udim = unit_dim(unit)
        q = eval(unit, {"__builtins__": {}}, dict(_b2units()))  # noqa: S307 - unit names only
        val = num * float(np.asarray(q))
        got = udim
    elif isinstance(x, Quantity):
        got, val = get_dimensions(x), np.asarray(x, dtype=float)
    else:
        return x
    if got != dim:
        want = "dimensionless" if dim is DIMENSIONLESS else str(dim)
        raise BiolearnError(f"'{x}' has dimension {got}, expected {want}", where,
                            "give the value in a unit of the right dimension")
    return val / scale(dim)
