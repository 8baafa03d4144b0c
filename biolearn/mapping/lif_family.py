"""The LIF family of neuron definitions, as the mappings to other simulators read it.

The NEST backend, the SONATA circuit export and the torch bridge map a neuron population by its
model definition (:class:`~biolearn.engine.definitions.NeuronModel`). Every built-in LIF variant is
one definition of :func:`biolearn.engine.neurons.lif_model`; :func:`lif_options` recognises such a
definition (by the definition itself, not by its name, so a user model that only shares a name is
not mistaken for one) and :func:`as_lif` reads any population of such a definition — a
:class:`~biolearn.engine.LIF` or a :class:`~biolearn.engine.Neurons` — as the equivalent ``LIF``.
:func:`cannot_map` is the one-line error of a mapping for a model it has no entry for.
"""

from __future__ import annotations

from functools import lru_cache
from itertools import product
from typing import Any

import numpy as np

from biolearn.engine.definitions import NeuronModel, value_of
from biolearn.engine.front import LIF
from biolearn.errors import BiolearnError

#: The options of :func:`biolearn.engine.neurons.lif_model` (``same_tau``: ge and/or gi decay with
#: τm, the variant :class:`LIF` picks for exact current-based neurons with τe or τi equal to τm).
LIF_OPTIONS = {"synapse": ("current", "conductance"),
               "integration": ("euler", "exact", "euler_expsyn"),
               "theta_rule": ("none", "add", "hao"), "floor": (False, True),
               "same_tau": ("", "e", "i", "ei")}


@lru_cache(maxsize=1)
def _variants() -> dict[NeuronModel, dict]:
    from biolearn.engine.neurons import lif_model

    return {lif_model(*opts): dict(zip(LIF_OPTIONS, opts, strict=True))
            for opts in product(*LIF_OPTIONS.values())}


def lif_options(definition: Any) -> dict | None:
    """``{"synapse", "integration", "theta_rule", "floor", "same_tau"}`` of a LIF-variant
    definition, ``None`` for any other model."""
    if not isinstance(definition, NeuronModel):
        return None
    opts = _variants().get(definition)
    return None if opts is None else dict(opts)


def lif_definition(name: str) -> NeuronModel | None:
    """The LIF-variant definition named ``name`` (e.g. ``"lif_coba_euler_theta_hao"``), or
    ``None``."""
    return next((d for d in _variants() if d.name == name), None)


def as_lif(p: Any) -> LIF:
    """The :class:`LIF` equivalent to a population of a LIF-variant definition (``p`` itself if it
    is one): options from the definition, parameters from ``p.values()``, initial values from
    ``p.initial()`` (``v_init`` is ``None`` when v starts at v_rest as the definition says). A
    ``v_floor`` of a definition without floor is inert and becomes −inf; so are ``tau_e``,
    ``tau_i`` of a definition whose ge, gi decay with τm (``same_tau``), which become ``tau_m``.
    Parameters a ``LIF`` has no field for are left out (:func:`lif_extras`)."""
    if isinstance(p, LIF):
        return p
    opts = lif_options(p.definition)
    if opts is None:
        raise BiolearnError(f"population '{p.name}' uses model '{p.definition.name}', which is "
                            "not a LIF variant", "in biolearn.mapping.lif_family",
                            "use a definition of biolearn.engine.neurons.lif_model")
    vals = p.values()
    init = p.initial()
    where = f"in population '{p.name}'.init"
    v0 = init["v"]
    v_init = None if isinstance(v0, str) and v0 == p.definition.init.get("v") else \
        value_of(v0, vals, f"{where}['v']")
    fields = {k: vals[k] for k in LIF.__dataclass_fields__ if k in vals}
    if not opts["floor"]:
        fields["v_floor"] = -np.inf
    for c in opts["same_tau"]:
        fields[f"tau_{c}"] = fields["tau_m"]
    return LIF(p.name, p.n, synapse=opts["synapse"], integration=opts["integration"],
               theta_rule=opts["theta_rule"], v_init=v_init,
               ge_init=value_of(init["ge"], vals, f"{where}['ge']"),
               gi_init=value_of(init["gi"], vals, f"{where}['gi']"),
               theta_init=value_of(init["theta"], vals, f"{where}['theta']"), **fields)


def lif_extras(p: Any) -> dict:
    """Parameters of ``p`` that the equivalent :class:`LIF` (:func:`as_lif`) cannot carry because
    they differ from the definition's defaults (e.g. ``theta_ten`` of the Hao θ rule)."""
    if isinstance(p, LIF):
        return {}
    from biolearn.engine.definitions import neuron_ir

    defaults = {q.name: q.default for q in neuron_ir(p.definition).params}
    return {k: v for k, v in p.values().items()
            if k not in LIF.__dataclass_fields__ and v != defaults[k]}


def cannot_map(p: Any, by: str, where: str, fix: str) -> BiolearnError:
    """The error of a mapping (``by``: "the NEST backend", …) that has no entry for the model of
    population ``p``."""
    model = getattr(getattr(p, "definition", None), "name", type(p).__name__)
    return BiolearnError(f"population '{p.name}' uses model '{model}', which {by} cannot map",
                         where, fix)
