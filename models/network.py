"""Recipe ``network``: a spiking network described entirely in the config, with user models.

Neuron models and plasticity rules are definitions in Brian2's equation syntax
(:class:`~biolearn.engine.NeuronModel`, :class:`~biolearn.engine.SynapseModel`); this recipe lets a
config use the built-in ones by name and define new ones, either in the YAML itself or in Python
files beside it, then builds the network on the engine, runs it and reports its activity::

    params:
      duration_ms: 2000
      dt_ms: 0.1
      definitions: [user_models.py]     # Python files (relative to the config file) defining
                                        # NeuronModel / SynapseModel objects at module level
      neuron_models:                    # name → NeuronModel fields
        alif:
          equations: |
            dv/dt = (E_L - v + I_syn - a)/tau_m : volt (unless refractory)
            da/dt = -a/tau_a : volt
            dI_syn/dt = -I_syn/tau_syn : volt
          threshold: v > v_th
          reset: |
            v = v_reset
            a += delta_a
          refractory: t_ref
          method: exact
          parameters: {E_L: -70 mV, tau_m: 20 ms, ...}
          init: {v: E_L}
      synapse_models: {}                # name → SynapseModel fields (model, on_pre, on_post, …)
      populations:
        - {name: inp, n: 200, kind: poisson, rate_hz: 10}
        - {name: exc, n: 20, model: alif, params: {tau_a: 200 ms}}
        - {name: izh, n: 10, model: izhikevich, params: {I_ext: 5 mV}}
      projections:
        - {name: inp_exc, pre: inp, post: exc, connectivity: random, p: 0.5,
           weight: [1.0, 3.0], delay_ms: 1.0, target: I_syn, rule: pair_stdp,
           rule_params: {w_max: 4.0}}
      record: [exc, izh]

Built-in neuron models: ``adex``, ``izhikevich``, ``qif``
(:data:`biolearn.engine.neurons.NEURON_MODELS`) and ``lif``
(:func:`biolearn.engine.neurons.lif_model`, the variant chosen by the population's ``options``:
``synapse``, ``integration``, ``theta_rule``, ``floor``; its targets ``e``/``i`` are ``ge``/``gi``).
Built-in rules: the :class:`SynapseModel` definitions of :mod:`biolearn.rules.stdp`
(``pair_stdp``, ``pair_stdp_mult``, ``diehl_cook_stdp``, ``symmetric_stdp``). Every user
definition is checked (equations, units, integration method, reset and threshold) before anything
runs; a mistake stops the run with one line
``error: <what>, in <model>.<part> (<where it is defined>), <how to fix>``.

Values are in biolearn's units (ms, mV, pA, nS, pF; :mod:`biolearn.engine.units`); a string with a
unit (``"-70 mV"``, ``"0.5 nA"``) is converted and its dimension checked. A projection's weight is
the increment of its ``target`` variable per spike, in that variable's unit.

Writes ``spikes.h5`` (SONATA, the recorded populations), ``weights.h5`` (every projection's final
weights), ``raster.png``, and the metrics: per population the spike count, mean rate and, for
recorded populations, the mean ISI and the mean CV of the ISI (neurons with at least two ISIs;
null where undefined); per plastic projection the initial and final mean weight.

The runner does not hand a recipe the path of its config file; ``definitions`` are found relative
to the config that :func:`biolearn.runner.execute` was given (read from its call), then relative to
the working directory.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from biolearn.config import param
from biolearn.errors import BiolearnError
from biolearn.registry import closest, register

KINDS = ["neurons", "poisson", "spikes"]
CONNECTIVITY = ["dense", "one_to_one", "random", "all_but_self"]
LIF_OPTIONS = {"synapse": ("current", "conductance"),
               "integration": ("euler", "exact", "euler_expsyn"),
               "theta_rule": ("none", "add", "hao"), "floor": (False, True)}
_UNIT_VALUE = re.compile(r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*\*?\s*[A-Za-z]")


# --------------------------------------------------------------------------------------------
# config schema
# --------------------------------------------------------------------------------------------

def _text(v: Any) -> str:
    """Equations / statements may be written as one string or as a list of lines."""
    return "\n".join(v) if isinstance(v, list) else (v or "")


@dataclass
class NeuronDef:
    """A user neuron model: the fields of :class:`biolearn.engine.NeuronModel`."""

    equations: str | list[str] = field(metadata={
        "help": "Brian2 equations, e.g. 'dv/dt = (E_L - v)/tau_m : volt (unless refractory)'"})
    threshold: str = field(metadata={"help": "spike condition, e.g. 'v > v_th'"})
    reset: str | list[str] = param("", "statements run after a spike, e.g. 'v = v_reset'")
    refractory: float | str = param(0.0, "refractory period: a parameter name or a duration "
                                    "('2 ms'; a number is ms)")
    method: str = param("euler", "Brian2 integrator: exact, euler, exponential_euler, rk2, rk4, "
                        "heun")
    parameters: dict[str, Any] = param(factory=dict, help="name → default ('20 ms', '-70 mV' "
                                       "or a plain number)")
    init: dict[str, Any] = param(factory=dict, help="variable → initial value (number, "
                                 "'-70 mV' or an expression of parameters); default 0")
    rest: dict[str, Any] | None = param(None, "variable → value after a state reset (default: "
                                        "the init of every variable with a dx/dt)")
    after_update: str | list[str] = param("", "statements run after every integration step")


@dataclass
class SynapseDef:
    """A user plasticity rule: the fields of :class:`biolearn.engine.SynapseModel`."""

    model: str | list[str] = field(metadata={
        "help": "Brian2 synapse equations: 'w : 1' and event-driven traces, e.g. "
                "'dapre/dt = -apre/tau_pre : 1 (event-driven)'"})
    on_pre: str | list[str] = param("", "statements on a presynaptic spike")
    on_post: str | list[str] = param("", "statements on a postsynaptic spike")
    parameters: dict[str, Any] = param(factory=dict, help="name → default (with unit or plain)")
    learning_rates: list[str] = param(factory=list, help="parameters that scale with the "
                                      "learning rate")


@dataclass
class PopulationSpec:
    """A neuron population (``kind: neurons``) or a spike source (``poisson``, ``spikes``)."""

    name: str = field(metadata={"help": "unique population name"})
    n: int = field(metadata={"help": "number of neurons", "min": 1})
    kind: str = param("neurons", "neurons of a model, Poisson sources, or given spike times",
                      choices=KINDS)
    model: str | None = param(None, "neuron model: adex, izhikevich, qif, lif or a user model")
    params: dict[str, Any] = param(factory=dict, help="model parameter overrides ('5 mV' or a "
                                   "number in biolearn units)")
    init: dict[str, Any] = param(factory=dict, help="initial values: number, '-65 mV', an "
                                 "expression of parameters, or one value per neuron")
    options: dict[str, Any] = param(factory=dict, help="lif only: synapse (current|conductance), "
                                    "integration (euler|exact|euler_expsyn), theta_rule "
                                    "(none|add|hao), floor (true|false)")
    rate_hz: float | list[float] = param(0.0, "poisson: rate (Hz), one value or one per neuron",
                                         min=0.0)
    t_ref_ms: float = param(0.0, "poisson: dead time after each spike (ms); 2·dt is GeNN 2's "
                            "Poisson neuron, which skips the step after a spike", min=0.0)
    times_ms: list[float] = param(factory=list, help="spikes: spike times (ms)", min=0.0)
    indices: list[int] | None = param(None, "spikes: neuron of each spike time (default: 0 for "
                                      "a single neuron)", min=0)

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name or self.name != self.name.strip():
            raise ValueError(f"population name {self.name!r} must be non-empty, without '/' "
                             "or surrounding spaces")
        if self.kind == "neurons":
            if not self.model:
                raise ValueError(f"population '{self.name}' needs 'model' (adex, izhikevich, "
                                 "qif, lif or a user model)")
            if self.options and self.model != "lif":
                raise ValueError(f"'options' is for model lif only (population '{self.name}')")
        else:
            extra = [k for k in ("model", "params", "init", "options") if getattr(self, k)]
            if extra:
                raise ValueError(f"a {self.kind} source takes no {', '.join(extra)} "
                                 f"(population '{self.name}')")
        if self.t_ref_ms and self.kind != "poisson":
            raise ValueError(f"'t_ref_ms' is for poisson sources only (population "
                             f"'{self.name}' is {self.kind}); a neuron model's refractory "
                             "period is one of its params")
        if self.kind == "poisson" and isinstance(self.rate_hz, list) and \
                len(self.rate_hz) != self.n:
            raise ValueError(f"rate_hz has {len(self.rate_hz)} values for {self.n} neurons "
                             f"(population '{self.name}')")
        if self.kind == "spikes":
            if self.indices is None:
                if self.n != 1:
                    raise ValueError(f"give 'indices' (one neuron per spike time) for "
                                     f"population '{self.name}' of {self.n} neurons")
            elif len(self.indices) != len(self.times_ms):
                raise ValueError(f"{len(self.indices)} indices for {len(self.times_ms)} "
                                 f"times_ms (population '{self.name}')")
            elif self.indices and max(self.indices) >= self.n:
                raise ValueError(f"spike index {max(self.indices)} outside population "
                                 f"'{self.name}' of {self.n} neurons")
        elif self.times_ms or self.indices is not None:
            raise ValueError(f"times_ms / indices are for kind spikes (population '{self.name}')")


@dataclass
class ProjectionSpec:
    """Synapses from one population to another, static or plastic."""

    name: str = field(metadata={"help": "unique projection name"})
    pre: str = field(metadata={"help": "presynaptic population"})
    post: str = field(metadata={"help": "postsynaptic neuron population"})
    connectivity: str = param("dense", "dense (all to all), one_to_one, random (probability p) "
                              "or all_but_self", choices=CONNECTIVITY)
    p: float | None = param(None, "random: connection probability", min=0.0, max=1.0)
    allow_self: bool = param(True, "random with pre == post: allow i → i")
    seed: int | None = param(None, "seed of the connectivity and weights (default: from the run "
                             "seed and the projection's position)", min=0)
    weight: Any = param(1.0, "weight: a number (target variable's unit), a string with a unit "
                        "('20 pA'), or [lo, hi] drawn uniformly")
    delay_ms: float = param(0.0, "synaptic delay (ms)", min=0.0)
    target: str = param("I_syn", "post variable a spike increments by w (lif: e, i)")
    rule: str | None = param(None, "plasticity rule: a built-in (pair_stdp, …) or a user synapse "
                             "model; null = static")
    rule_params: dict[str, Any] = param(factory=dict, help="rule parameter overrides")

    def __post_init__(self) -> None:
        if self.connectivity == "random" and self.p is None:
            raise ValueError(f"connectivity random needs 'p' (projection '{self.name}')")
        if self.connectivity != "random" and self.p is not None:
            raise ValueError(f"'p' is for connectivity random (projection '{self.name}')")
        if self.rule is None and self.rule_params:
            raise ValueError(f"rule_params without a rule (projection '{self.name}')")
        w = self.weight
        ok = (isinstance(w, (int, float, str)) and not isinstance(w, bool)) or (
            isinstance(w, list) and len(w) == 2
            and all(isinstance(x, (int, float, str)) and not isinstance(x, bool) for x in w))
        if not ok:
            raise ValueError(f"weight of projection '{self.name}' must be a number, a string "
                             f"with a unit or [lo, hi], got {w!r}")


@dataclass
class NetworkParams:
    duration_ms: float = param(1000.0, "simulated time (ms)", min=1e-3)
    dt_ms: float = param(0.1, "time step (ms)", min=1e-4, max=5.0)
    definitions: list[str] = param(factory=list, help="Python files defining NeuronModel / "
                                   "SynapseModel objects (paths relative to the config file)")
    neuron_models: dict[str, NeuronDef] = param(factory=dict, help="user neuron models: name → "
                                                "equations, threshold, reset, …")
    synapse_models: dict[str, SynapseDef] = param(factory=dict, help="user plasticity rules: "
                                                  "name → model, on_pre, on_post, …")
    populations: list[PopulationSpec] = param(factory=list, help="neuron populations and spike "
                                              "sources")
    projections: list[ProjectionSpec] = param(factory=list, help="synapses between populations")
    record: list[str] | None = param(None, "populations whose spikes are recorded and written to "
                                     "spikes.h5 (null = all)")
    figures: bool = param(True, "write raster.png")
    raster_ms: float = param(1000.0, "time span shown in raster.png (ms, from 0)", min=1.0)

    def __post_init__(self) -> None:
        if not self.populations:
            raise ValueError("the network has no populations: add 'populations: [...]'")
        names = [q.name for q in self.populations]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"population names {dup} occur twice; give each a unique name")
        pnames = [q.name for q in self.projections]
        dup = sorted({n for n in pnames if pnames.count(n) > 1})
        if dup:
            raise ValueError(f"projection names {dup} occur twice; give each a unique name")


# --------------------------------------------------------------------------------------------
# where things are: the config file, and lines in it
# --------------------------------------------------------------------------------------------

def config_path(ctx: Any) -> Path | None:
    """The config file of this run (relative ``definitions`` paths start there)."""
    path = getattr(ctx, "config_path", None)
    return Path(path) if path else None


class _Lines:
    """``where(key)``: 'in <config> line N' for a dotted key of the config (or the key)."""

    def __init__(self, path: Path | None):
        self.where = None
        if path is not None:
            try:
                from biolearn.config import _read_yaml

                self.where = _read_yaml(path)[1]
            except Exception:  # unreadable now, or the config module changed: keys only
                self.where = None

    def __call__(self, key: str) -> str:
        return self.where(key) if self.where is not None else f"at '{key}'"

    def file_line(self, key: str) -> str:
        """'<config> line N' (no 'in'), for notes in parentheses."""
        return self(key).removeprefix("in ").removeprefix("at ")


# --------------------------------------------------------------------------------------------
# models: built-ins, YAML definitions, definition files
# --------------------------------------------------------------------------------------------

def builtin_neurons() -> dict[str, Any]:
    from biolearn.engine.neurons import NEURON_MODELS

    return {**NEURON_MODELS, "lif": None}  # lif: a variant of lif_model, by options


def builtin_rules() -> dict[str, Any]:
    from biolearn.engine import SynapseModel
    from biolearn.rules import stdp

    return {v.name: v for v in vars(stdp).values() if isinstance(v, SynapseModel)}


def lif_for(options: dict, where: str, same_tau: str = "") -> Any:
    """The LIF definition for a population's ``options`` (``same_tau``: as
    :attr:`biolearn.engine.LIF.definition`, for exact integration with τe or τi equal to τm)."""
    from biolearn.engine.neurons import lif_model

    opts = {"synapse": "conductance", "integration": "euler", "theta_rule": "none",
            "floor": False}
    for k, v in options.items():
        if k not in LIF_OPTIONS:
            hint = closest(k, list(LIF_OPTIONS))
            raise BiolearnError(f"unknown lif option '{k}'", where,
                                (hint + " " if hint else "") + "options: "
                                + ", ".join(LIF_OPTIONS))
        if v not in LIF_OPTIONS[k] or isinstance(v, bool) != (k == "floor"):
            raise BiolearnError(f"invalid lif option {k}={v!r}", where,
                                "use one of " + ", ".join(str(x) for x in LIF_OPTIONS[k]))
        opts[k] = v
    if same_tau:
        return lif_model(opts["synapse"], opts["integration"], opts["theta_rule"], opts["floor"],
                         same_tau)
    return lif_model(opts["synapse"], opts["integration"], opts["theta_rule"], opts["floor"])


def _lif_same_tau(model: Any, params: dict, name: str) -> str:
    """'e', 'i' or 'ei' when an exactly integrated current-based LIF has τe or τi equal to τm
    (the exact solution then needs its own form), else ''."""
    from biolearn.engine import Neurons

    if model.method != "exact":
        return ""
    vals = Neurons(name, 1, model, dict(params)).values()
    return ("e" if vals["tau_e"] == vals["tau_m"] else "") + (
        "i" if vals["tau_i"] == vals["tau_m"] else "")


def load_definitions(path: Path) -> tuple[list, list]:
    """``(neuron models, synapse models)`` defined at module level in a Python file."""
    from biolearn.engine import NeuronModel, SynapseModel

    digest = hashlib.sha1(str(path).encode()).hexdigest()[:12]
    stem = re.sub(r"\W", "_", path.stem)
    name = f"biolearn_user_definitions_{stem}_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise BiolearnError(f"cannot import '{path}'", "in params.definitions",
                            "give a Python file ending in .py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # dataclasses and pickling look modules up by name
    writes = sys.dont_write_bytecode
    sys.dont_write_bytecode = True  # leave no __pycache__ beside the user's file
    try:
        spec.loader.exec_module(mod)
    except BiolearnError:
        raise
    except SyntaxError as e:
        raise BiolearnError(f"syntax error in definitions file '{path.name}' ({e.msg})",
                            f"at {path} line {e.lineno}", "fix the Python syntax there") from None
    except Exception as e:
        import traceback

        tb = [f for f in traceback.extract_tb(e.__traceback__) if f.filename == str(path)]
        loc = f"at {path} line {tb[-1].lineno}" if tb else f"in {path}"
        raise BiolearnError(f"definitions file '{path.name}' raised {type(e).__name__}: {e}",
                            loc, "fix the file (it is run as a Python module)") from None
    finally:
        sys.modules.pop(name, None)
        sys.dont_write_bytecode = writes
    items = list(vars(mod).values())
    neurons = [v for v in items if isinstance(v, NeuronModel)]
    synapses = [v for v in items if isinstance(v, SynapseModel)]
    return neurons, synapses


def _resolve_file(rel: str, cfg_path: Path | None, key: str, lines: _Lines) -> Path:
    p = Path(rel).expanduser()
    tried = []
    if p.is_absolute():
        tried.append(p)
    else:
        if cfg_path is not None:
            tried.append(cfg_path.parent / p)
        tried.append(Path.cwd() / p)
    for cand in tried:
        if cand.is_file():
            return cand.resolve()
    raise BiolearnError(f"definitions file '{rel}' not found (looked at "
                        + ", ".join(f"'{c}'" for c in dict.fromkeys(tried)) + ")", lines(key),
                        "give a path relative to the config file, or an absolute path")


def _with_origin(e: BiolearnError, origin: str, model: str) -> BiolearnError:
    """An engine error about a user model, with where the model is defined added."""
    where = e.where or f"in {model}"
    return BiolearnError(e.what, f"{where} ({origin})", e.fix)


def _check_init(model: Any, origin: str) -> None:
    from biolearn.engine.definitions import neuron_ir

    ir = neuron_ir(model)
    for k in model.init:
        if k not in ir.variables:
            raise BiolearnError(f"init of unknown variable '{k}'", f"in {model.name}.init "
                                f"({origin})", "give initial values of the model's variables: "
                                + ", ".join(ir.variables))


class Models:
    """Every neuron model and rule a config can name, user definitions checked."""

    def __init__(self, p: NetworkParams, cfg_path: Path | None, lines: _Lines):
        from biolearn.engine import NeuronModel, SynapseModel
        from biolearn.engine.definitions import neuron_ir, synapse_ir

        self.neurons: dict[str, Any] = builtin_neurons()
        self.rules: dict[str, Any] = builtin_rules()
        self.user_neurons: list[tuple[Any, str]] = []
        self.user_rules: list[tuple[Any, str]] = []
        origin: dict[str, str] = {}

        def add(table: dict, kind: str, m: Any, where: str, key: str | None) -> None:
            if m.name in table:
                if table[m.name] is m or getattr(table[m.name], "key", None) == m.key:
                    return  # the same definition imported again (e.g. a built-in)
                first = origin.get(f"{kind}:{m.name}", "biolearn (built-in)")
                raise BiolearnError(f"{kind} model '{m.name}' is defined twice ({first} and "
                                    f"{where})", lines(key) if key else f"in {where}",
                                    "rename one of them")
            table[m.name] = m
            origin[f"{kind}:{m.name}"] = where
            (self.user_neurons if kind == "neuron" else self.user_rules).append((m, where))

        for k, rel in enumerate(p.definitions):
            key = f"params.definitions[{k}]"
            path = _resolve_file(rel, cfg_path, key, lines)
            neurons, synapses = load_definitions(path)
            if not neurons and not synapses:
                raise BiolearnError(f"definitions file '{rel}' defines no NeuronModel or "
                                    "SynapseModel", lines(key), "define them at module level, "
                                    "e.g. MY_NEURON = NeuronModel('my_neuron', ...)")
            for m in neurons:
                add(self.neurons, "neuron", m, path.name, key)
            for m in synapses:
                add(self.rules, "synapse", m, path.name, key)
        for name, d in p.neuron_models.items():
            key = f"params.neuron_models.{name}"
            m = NeuronModel(name=name, equations=_text(d.equations), threshold=d.threshold,
                            reset=_text(d.reset), refractory=d.refractory, method=d.method,
                            parameters=dict(d.parameters), init=dict(d.init),
                            rest=None if d.rest is None else dict(d.rest),
                            after_update=_text(d.after_update))
            add(self.neurons, "neuron", m, lines.file_line(key), key)
        for name, d in p.synapse_models.items():
            key = f"params.synapse_models.{name}"
            m = SynapseModel(name=name, model=_text(d.model), on_pre=_text(d.on_pre),
                             on_post=_text(d.on_post), parameters=dict(d.parameters),
                             learning_rates=tuple(d.learning_rates))
            add(self.rules, "synapse", m, lines.file_line(key), key)
        # check every user definition now, before anything is built or run
        for m, where in self.user_neurons:
            try:
                neuron_ir(m)
                _check_init(m, where)
            except BiolearnError as e:
                raise self._located(e, m.name, where, "neuron_models", lines) from None
        for m, where in self.user_rules:
            try:
                synapse_ir(m)
            except BiolearnError as e:
                raise self._located(e, m.name, where, "synapse_models", lines) from None

    @staticmethod
    def _located(e: BiolearnError, name: str, where: str, section: str,
                 lines: _Lines) -> BiolearnError:
        if e.where == "in a model definition":  # a unit error from the parameter defaults
            e = BiolearnError(e.what, f"in {name}.parameters", e.fix)
        part = re.match(rf"in {re.escape(name)}\.(\w+)", e.where or "")
        if part and lines.where is not None and not where.endswith(".py"):
            where = lines.file_line(f"params.{section}.{name}.{part.group(1)}")
        return _with_origin(e, where, name)

    def neuron(self, name: str, options: dict, key: str, lines: _Lines) -> Any:
        if name not in self.neurons:
            hint = closest(name, list(self.neurons))
            raise BiolearnError(f"unknown neuron model '{name}' for '{key}'", lines(key),
                                (hint + " " if hint else "") + "choose one of: "
                                + ", ".join(self.neurons))
        if name == "lif" and self.neurons[name] is None:
            return lif_for(options, lines(key))
        return self.neurons[name]

    def rule(self, name: str, key: str, lines: _Lines) -> Any:
        if name not in self.rules:
            hint = closest(name, list(self.rules))
            raise BiolearnError(f"unknown plasticity rule '{name}' for '{key}'", lines(key),
                                (hint + " " if hint else "") + "choose one of: "
                                + ", ".join(self.rules))
        return self.rules[name]


@dataclass(frozen=True)
class RuleValues:
    """A rule definition with parameter overrides (what ``Projection(rule=...)`` accepts)."""

    definition: Any
    params: dict

    def values(self) -> dict:
        return dict(self.params)


# --------------------------------------------------------------------------------------------
# building the network
# --------------------------------------------------------------------------------------------

def _init_values(model: Any, init: dict, where: str) -> dict:
    """Initial values with '-65 mV'-style strings converted (dimension checked) and lists made
    arrays; expressions of parameters are left to the engine."""
    from biolearn.engine.definitions import neuron_ir
    from biolearn.engine.units import to_value

    dims = neuron_ir(model).dims
    out = {}
    for k, v in init.items():
        if isinstance(v, str) and _UNIT_VALUE.match(v) and k in dims:
            v = float(to_value(v, dims[k], f"{where}.init['{k}']"))
        elif isinstance(v, list):
            v = np.asarray(v, float)
        out[k] = v
    return out


def _weights(spec: ProjectionSpec, post: Any, size: int, rng: np.random.Generator,
             where: str) -> np.ndarray:
    from biolearn.engine.definitions import neuron_ir
    from biolearn.engine.front import TARGETS
    from biolearn.engine.units import to_value

    ir = neuron_ir(post.definition)
    var = TARGETS.get(spec.target, spec.target)
    if var not in ir.variables:
        raise BiolearnError(f"'{post.name}' ({post.definition.name}) has no variable '{var}' "
                            f"for projection '{spec.name}'", where,
                            "set 'target' to one of " + ", ".join(ir.variables))

    def num(x: Any) -> float:
        return float(to_value(x, ir.dims[var], where)) if isinstance(x, str) else float(x)

    w = spec.weight
    if isinstance(w, list):
        lo, hi = num(w[0]), num(w[1])
        if hi < lo:
            raise BiolearnError(f"weight range [{w[0]}, {w[1]}] is empty", where,
                                "give [lo, hi] with lo ≤ hi")
        return rng.uniform(lo, hi, size)
    return np.full(size, num(w))


def _projection(spec: ProjectionSpec, k: int, pops: dict, seed: int, models: Models,
                lines: _Lines) -> Any:
    from biolearn.engine import Projection, connect

    key = f"params.projections[{k}]"
    for side in ("pre", "post"):
        name = getattr(spec, side)
        if name not in pops:
            hint = closest(name, list(pops))
            raise BiolearnError(f"unknown population '{name}' for '{key}.{side}'",
                                lines(f"{key}.{side}"), (hint + " " if hint else "")
                                + "choose one of: " + ", ".join(pops))
    pre, post = pops[spec.pre], pops[spec.post]
    if getattr(post, "definition", None) is None:
        raise BiolearnError(f"'{spec.post}' is a spike source and cannot receive synapses "
                            f"(projection '{spec.name}')", lines(f"{key}.post"),
                            "target a population of kind neurons")
    rng = np.random.default_rng(np.random.SeedSequence(
        [spec.seed] if spec.seed is not None else [seed, k]))
    n_pre, n_post = pre.n, post.n
    if spec.connectivity in ("one_to_one", "all_but_self") and n_pre != n_post:
        raise BiolearnError(f"{spec.connectivity} needs populations of equal size "
                            f"({spec.pre}: {n_pre}, {spec.post}: {n_post})",
                            lines(f"{key}.connectivity"), "use dense or random")
    if spec.connectivity == "dense":
        i, j = np.divmod(np.arange(n_pre * n_post, dtype=np.int64), n_post)
        dense = (n_pre, n_post)
    elif spec.connectivity == "one_to_one":
        i = j = np.arange(n_pre, dtype=np.int64)
        dense = None
    elif spec.connectivity == "all_but_self":
        i, j = np.divmod(np.arange(n_pre * n_post, dtype=np.int64), n_post)
        keep = i != j
        i, j, dense = i[keep], j[keep], None
    else:
        proto = connect.fixed_probability(spec.name, spec.pre, spec.post, n_pre, n_post,
                                          float(spec.p), 0.0, rng,
                                          allow_self=spec.allow_self or spec.pre != spec.post)
        i, j, dense = proto.i, proto.j, None
    w = _weights(spec, post, len(i), rng, lines(f"{key}.weight"))
    rule = None
    if spec.rule is not None:
        definition = models.rule(spec.rule, f"{key}.rule", lines)
        rule = RuleValues(definition, dict(spec.rule_params))
    return Projection(spec.name, spec.pre, spec.post, i, j, w, delay=spec.delay_ms,
                      target=spec.target, rule=rule, dense_shape=dense)


def build(p: NetworkParams, seed: int, cfg_path: Path | None = None) -> tuple[Any, Models]:
    """The :class:`~biolearn.engine.Network` a config describes (every definition checked)."""
    from biolearn.engine import Network, Neurons, PoissonSource, SpikeMonitor, SpikeSource

    lines = _Lines(cfg_path)
    models = Models(p, cfg_path, lines)
    net = Network(dt=p.dt_ms)
    pops: dict[str, Any] = {}
    for k, s in enumerate(p.populations):
        key = f"params.populations[{k}]"
        if s.kind == "poisson":
            pop = PoissonSource(s.name, s.n, np.asarray(s.rate_hz, float), t_ref=s.t_ref_ms)
        elif s.kind == "spikes":
            idx = s.indices if s.indices is not None else [0] * len(s.times_ms)
            pop = SpikeSource(s.name, s.n, np.asarray(idx, np.int64),
                              np.asarray(s.times_ms, float))
        else:
            model = models.neuron(s.model, s.options, f"{key}.model", lines)
            if s.model == "lif" and models.neurons["lif"] is None:
                same = _lif_same_tau(model, s.params, s.name)
                if same:
                    model = lif_for(s.options, lines(f"{key}.options"), same)
            init = {**model.init, **s.init}
            pop = Neurons(s.name, s.n, model, dict(s.params),
                          _init_values(model, init, f"in population '{s.name}'"))
        net.add(pop)
        pops[s.name] = pop
    for k, s in enumerate(p.projections):
        net.connect(_projection(s, k, pops, seed, models, lines))
    record = list(pops) if p.record is None else list(p.record)
    for k, name in enumerate(record):
        if name not in pops:
            hint = closest(name, list(pops))
            raise BiolearnError(f"unknown population '{name}' for 'params.record[{k}]'",
                                lines(f"params.record[{k}]"), (hint + " " if hint else "")
                                + "choose one of: " + ", ".join(pops))
    if record:
        net.monitor(SpikeMonitor(record))
    return net, models


# --------------------------------------------------------------------------------------------
# running and measuring
# --------------------------------------------------------------------------------------------

class ISIStats:
    """Per-neuron ISI count, mean and sum of squared deviations over a run fed in time-ordered
    chunks (memory: O(neurons)); chunks are merged with Chan et al.'s pairwise update, so the CV
    keeps its precision on regular trains (no ``E[d²] − E[d]²``)."""

    def __init__(self, n: int):
        self.last = np.full(n, np.nan)
        self.cnt = np.zeros(n)
        self.mean = np.zeros(n)
        self.m2 = np.zeros(n)

    def add(self, t: np.ndarray, ids: np.ndarray) -> None:
        if not len(t):
            return
        n = len(self.last)
        ids = np.asarray(ids, np.int64)
        o = np.lexsort((t, ids))
        ts, ix = np.asarray(t, float)[o], ids[o]
        same = ix[1:] == ix[:-1]
        d, owner = np.diff(ts)[same], ix[1:][same]
        first = np.concatenate([[True], ~same])
        fi, ft = ix[first], ts[first]
        had = ~np.isnan(self.last[fi])
        d = np.concatenate([d, ft[had] - self.last[fi][had]])
        owner = np.concatenate([owner, fi[had]])
        cb = np.bincount(owner, minlength=n).astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            mb = np.where(cb > 0, np.bincount(owner, weights=d, minlength=n) / cb, 0.0)
        dev = d - mb[owner]
        m2b = np.bincount(owner, weights=dev * dev, minlength=n)
        tot = self.cnt + cb
        with np.errstate(invalid="ignore", divide="ignore"):
            delta = mb - self.mean
            self.mean = np.where(tot > 0, self.mean + delta * cb / tot, 0.0)
            self.m2 = self.m2 + m2b + np.where(tot > 0, delta * delta * self.cnt * cb / tot, 0.0)
        self.cnt = tot
        lastm = np.concatenate([~same, [True]])
        self.last[ix[lastm]] = ts[lastm]

    def mean_isi(self) -> float | None:
        c = self.cnt.sum()
        return float((self.mean * self.cnt).sum() / c) if c else None

    def mean_cv(self) -> float | None:
        ok = self.cnt >= 2
        if not ok.any():
            return None
        return float(np.mean(np.sqrt(self.m2[ok] / self.cnt[ok]) / self.mean[ok]))


def _check_finite(sim: Any, t_ms: float) -> None:
    """Stop with an error naming the model when a population's state is no longer finite."""
    for k, pop in enumerate(sim.net.populations):
        if sim.pop_model[k] < 0:
            continue
        ir = sim.models[sim.pop_model[k]]
        lo, hi = int(sim.pop_lo[k]), int(sim.pop_hi[k])
        for var in ir.variables:
            x = sim.S[sim.slots[var], lo:hi]
            if np.isfinite(x).all():
                continue
            bad = x[~np.isfinite(x)][0]
            m = ir.model
            hint = ("with method 'exact' the solution divides by differences of time "
                    "constants: make them differ (e.g. tau_m ≠ tau_syn) or use 'euler'"
                    if m.method == "exact" else
                    "reduce dt_ms, use method 'rk4', or cut the upswing with the threshold")
            raise BiolearnError(f"variable '{var}' of population '{pop.name}' became {bad} "
                                f"by t = {t_ms:g} ms", f"in {m.name}.equations (method "
                                f"'{m.method}')", hint)


@register("network", NetworkParams)
def run(cfg, ctx) -> dict:
    """Any spiking network described in the config, with user neuron models and rules."""
    from biolearn.io.sonata import SpikeWriter
    from biolearn.io.store import save_weights

    p: NetworkParams = cfg.params
    net, _ = build(p, cfg.seed, config_path(ctx))
    sim = net.compile(seed=cfg.seed)  # generates and compiles the kernels of these models
    pops = {q.name: q for q in net.populations}
    recorded = list(sim.recorded)
    stats = {name: ISIStats(pops[name].n) for name in recorded}
    raster: dict[str, list] = {name: [] for name in recorded}
    plastic = [q for q in net.projections if q.rule is not None]
    w0 = {q.name: float(np.mean(q.w)) if len(q.w) else None for q in plastic}

    total = int(round(p.duration_ms / p.dt_ms))
    chunk = max(1, int(round(max(100.0, p.duration_ms / 100.0) / p.dt_ms)))
    bar = ctx.progress(total, "network", unit="step")
    done = 0
    with SpikeWriter(ctx.path("spikes.h5"), {n: pops[n].n for n in recorded},
                     sorting="by_time") as wr:
        while done < total:
            steps = min(chunk, total - done)
            out = sim.run(steps=steps)
            for name, (t, ids) in out["spikes"].items():
                wr.write(name, t, ids)
                stats[name].add(t, ids)
                keep = t < p.raster_ms
                if keep.any():
                    raster[name].append((t[keep], ids[keep]))
            done += steps
            ctx.metrics["simulated_ms"] = done * p.dt_ms
            _check_finite(sim, done * p.dt_ms)
            bar.update(steps)
    bar.close()

    duration_s = total * p.dt_ms / 1000.0
    metrics: dict[str, Any] = {"simulated_ms": total * p.dt_ms}
    for name, pop in pops.items():
        count = int(sim.spike_counts(name).sum())
        metrics[f"spikes.{name}"] = count
        metrics[f"rate_hz.{name}"] = count / pop.n / duration_s if duration_s else 0.0
    for name in recorded:
        metrics[f"isi_mean_ms.{name}"] = stats[name].mean_isi()
        metrics[f"cv_isi.{name}"] = stats[name].mean_cv()
    arrays: dict[str, np.ndarray] = {}
    for q in net.projections:
        w = sim.weights(q.name)
        arrays[f"{q.name}/w"] = w
        if q.dense_shape is None:
            arrays[f"{q.name}/i"], arrays[f"{q.name}/j"] = q.i, q.j
        if q.rule is not None:
            metrics[f"w_mean_initial.{q.name}"] = w0[q.name]
            metrics[f"w_mean.{q.name}"] = float(np.mean(w)) if w.size else None
    if arrays:
        save_weights(ctx.path("weights.h5"), arrays, {"model": "network", "dt_ms": p.dt_ms})
    if p.figures and recorded:
        from biolearn.analysis import plots

        spikes = {n: (np.concatenate([a for a, _ in raster[n]]) if raster[n] else np.zeros(0),
                      np.concatenate([b for _, b in raster[n]]) if raster[n] else np.zeros(0))
                  for n in recorded}
        shown = min(p.raster_ms, total * p.dt_ms)
        ctx.save_figure(plots.raster(spikes, f"spikes, first {shown:g} ms"), "raster")
    metrics["files"] = sorted(x.name for x in ctx.out_dir.iterdir() if x.is_file())
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in metrics.items()}


__all__ = ["NetworkParams", "NeuronDef", "PopulationSpec", "ProjectionSpec", "SynapseDef",
           "build", "config_path"]
