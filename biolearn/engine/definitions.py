"""Neuron models and synapse (plasticity) rules written once, in Brian2's equation syntax.

A :class:`NeuronModel` holds differential equations, a threshold condition, reset statements, a
refractory period and optional statements run after every integration step; a
:class:`SynapseModel` holds per-synapse variables, traces with their decay, and ``on_pre`` /
``on_post`` statements. Brian2 parses them (``brian2.Equations``) and integrates them by name
(``exact``, ``euler``, ``exponential_euler``, ``rk2``, …; Stimberg, Brette & Goodman 2019);
:func:`neuron_ir` / :func:`synapse_ir` check them and reduce them to statements that the code
generator (:mod:`biolearn.engine.codegen`) turns into Numba kernels.

Values are in biolearn's units (ms, mV, pA, nS, pF; :mod:`biolearn.engine.units`). Parameters are
declared with a default that carries their unit (``"tau_m": "20 ms"``); a plain number is
dimensionless. Inside expressions Brian2 unit names may be used (``v > -50*mV``).

What a rule's variables are is read from the statements, as Brian2 users write them:

* ``w`` is the weight; the projection's ``target`` says which post-synaptic variable a spike
  increments by ``w`` (``ge``, ``gi``, ``v``, …), so the statements hold only the plasticity.
* an ``(event-driven)`` variable with a linear, autonomous decay (``dx/dt = -x/tau``) that only
  ``on_pre`` writes is a *pre trace* (one per pre-synaptic neuron), one that only ``on_post``
  writes a *post trace* (one per post-synaptic neuron); both are decayed lazily when read. One
  written by both is kept per synapse (e.g. an eligibility trace), also decayed lazily.
* other per-synapse variables (``x : 1``) are stored per synapse.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from functools import cache, lru_cache
from types import CodeType
from typing import Any

from biolearn.engine.units import to_value, unit_dim
from biolearn.errors import BiolearnError

#: Functions usable in statements, with their Numba spelling (``_clip`` etc. come with the
#: generated module; ``rand``/``randn`` draw from the run's generator).
FUNCTIONS = {
    "exp": "exp", "log": "log", "log10": "log10", "sqrt": "sqrt", "sin": "sin", "cos": "cos",
    "tan": "tan", "sinh": "sinh", "cosh": "cosh", "tanh": "tanh", "arcsin": "asin",
    "arccos": "acos", "arctan": "atan", "abs": "abs", "floor": "floor", "ceil": "ceil",
    "clip": "_clip", "sign": "_sign", "int": "_int", "exprel": "_exprel", "rand": "rng.random",
    "randn": "rng.standard_normal", "float32": "_f32",
}
PURE = set(FUNCTIONS) - {"rand", "randn"}
CONSTANTS = {"pi", "e", "inf", "True", "False"}
RESERVED = {"t", "dt", "i", "j", "N", "lastspike", "not_refractory"}


def brian2_quietly() -> Any:
    """Import brian2 without the exception hook it installs (biolearn reports its own errors)."""
    import sys

    hook = sys.excepthook
    import brian2

    sys.excepthook = hook
    return brian2


def _key(obj: Any) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _err(what: str, model: str, part: str, fix: str) -> BiolearnError:
    return BiolearnError(what, f"in {model}.{part}", fix)


def _stmts(code: str) -> list[tuple[str, str, str]]:
    """``var op expr`` statements of a code block (Brian2's statement parser)."""
    from brian2.parsing.statements import parse_statement

    out = []
    for line in re.split(r"[\n;]", code or ""):
        line = line.split("#", 1)[0].strip()
        if line:
            var, op, expr, _ = parse_statement(line)
            out.append((var, op, expr))
    return out


def identifiers(expr: str) -> set[str]:
    from brian2.utils.stringtools import get_identifiers

    return set(get_identifiers(expr))


def _is_unit(name: str) -> bool:
    from brian2.core.namespace import DEFAULT_UNITS

    return name in DEFAULT_UNITS


def unit_value(name: str) -> float:
    """A Brian2 unit name used inside an expression, as a number in biolearn units."""
    import numpy as np

    from biolearn.engine.units import _b2units, scale

    q = _b2units()[name]
    return float(np.asarray(q)) / scale(q.dim)


@dataclass(frozen=True)
class NeuronModel:
    """A neuron model, defined once.

    Parameters
    ----------
    name : identifier used in errors, generated code and configs.
    equations : Brian2 equations, e.g. ``"dv/dt = (v_rest - v)/tau_m : volt (unless refractory)"``;
        ``x : unit`` declares a per-neuron variable without a differential equation.
    threshold : spike condition, e.g. ``"v > v_thresh"``.
    reset : statements run for a neuron that spiked, e.g. ``"v = v_reset; w += b"``.
    refractory : a parameter name or a duration (``"2 ms"``); variables flagged
        ``(unless refractory)`` are held and the neuron cannot spike for that long.
    method : Brian2 integrator name (``exact``, ``euler``, ``exponential_euler``, ``rk2``, ``rk4``,
        ``heun``, ``milstein``).
    parameters : name → default with unit (``"20 ms"``) or a plain number; one value per
        population, overridable per population.
    init : variable → initial value (expression of parameters or number); default 0.
    rest : variable → value set by ``Simulation.reset_state``; default: every variable with a
        differential equation goes back to its ``init``.
    after_update : statements run after integration every step (exact decays, bounds); exported
        to Brian2 as a ``run_regularly`` operation.
    frozen : parameter values that stop the model's slow adaptation (``Simulation.freeze``).
    """

    name: str
    equations: str
    threshold: str
    reset: str = ""
    refractory: str | float = 0.0
    method: str = "euler"
    parameters: dict = field(default_factory=dict)
    init: dict = field(default_factory=dict)
    rest: dict | None = None
    after_update: str = ""
    frozen: dict = field(default_factory=dict)

    def __hash__(self) -> int:
        return hash(self.key)

    @property
    def key(self) -> str:
        """Hash of the definition (code generation and caches are keyed by it)."""
        return _key(["neuron", self.name, self.equations, self.threshold, self.reset,
                     str(self.refractory), self.method, self.parameters, self.init, self.rest,
                     self.after_update])


@dataclass(frozen=True)
class SynapseModel:
    """A synapse / plasticity rule, defined once.

    Parameters
    ----------
    name : identifier used in errors, generated code and configs.
    model : Brian2 synapse equations: ``w : 1`` and the traces, e.g.
        ``"dapre/dt = -apre/tau_pre : 1 (event-driven)"``.
    on_pre, on_post : statements on a pre-/post-synaptic spike (plasticity only: the synaptic
        effect is the projection's ``target``).
    parameters : name → default (with unit or plain number).
    learning_rates : parameters that ``Simulation.scale_learning_rate`` multiplies.
    events : name → statements that ``Simulation.apply_event`` runs on every synapse between
        runs (e.g. a reward that turns eligibility into weight change).
    """

    name: str
    model: str
    on_pre: str = ""
    on_post: str = ""
    parameters: dict = field(default_factory=dict)
    learning_rates: tuple = ()
    events: dict = field(default_factory=dict)

    def __hash__(self) -> int:
        return hash(self.key)

    @property
    def key(self) -> str:
        return _key(["synapse", self.name, self.model, self.on_pre, self.on_post,
                     self.parameters, list(self.learning_rates), self.events])


# ---------------------------------------------------------------------------------- analysis
@dataclass
class Param:
    name: str
    dim: Any
    default: Any


@dataclass
class NeuronIR:
    """A checked neuron model reduced to statements (all expressions in Python syntax)."""

    model: NeuronModel
    variables: list[str]  # per-neuron state, in storage order
    dims: dict[str, Any]
    diff_vars: list[str]
    params: list[Param]
    scalar: list[tuple[str, str]]  # loop-invariant statements: name, expression
    vector: list[tuple[str, str, str]]  # per-neuron statements: var, op, expression
    held: list[str]  # variables held while refractory
    threshold: str
    reset: list[tuple[str, str, str]]
    refractory: str | float
    uses_rand: bool

    @property
    def param_names(self) -> list[str]:
        return [p.name for p in self.params]


def _params(model: Any) -> list[Param]:
    out = []
    for name, default in model.parameters.items():
        where = f"in {model.name}.parameters['{name}']"
        if not name.isidentifier() or name in RESERVED or name in FUNCTIONS:
            raise BiolearnError(f"'{name}' cannot be a parameter name", where,
                                "choose another identifier")
        if isinstance(default, str):
            from biolearn.engine.units import _NUMBER

            mt = _NUMBER.match(default)
            if not mt:
                raise BiolearnError(f"cannot read default '{default}'", where,
                                    "write a number with a unit, e.g. '20 ms'")
            try:
                dim = unit_dim(mt.group(2) or "1")
            except BiolearnError:
                raise BiolearnError(f"unknown unit '{mt.group(2)}'", where,
                                    "use a Brian2 unit such as mV, ms, pA, nS, pF or a plain "
                                    "number") from None
            value = to_value(default, dim, where)
        else:
            from brian2.units.fundamentalunits import DIMENSIONLESS, Quantity, get_dimensions

            dim = get_dimensions(default) if isinstance(default, Quantity) else DIMENSIONLESS
            value = to_value(default, dim, where)
        out.append(Param(name, dim, float(value)))
    return out


def _check_known(expr: str, known: set[str], model: str, part: str) -> None:
    for name in identifiers(expr):
        if name in known or name in FUNCTIONS or name in CONSTANTS or _is_unit(name):
            continue
        raise _err(f"unknown identifier '{name}'", model, part,
                   "declare it as a parameter or a variable, or fix the spelling")


def _check_dims(model: str, part: str, check: Any) -> None:
    from brian2.units.fundamentalunits import DimensionMismatchError

    try:
        check()
    except DimensionMismatchError as e:
        raise _err(f"inconsistent units ({e.desc})", model, part,
                   "make both sides of every sum, comparison and assignment the same "
                   "dimension") from None
    except (KeyError, SyntaxError, ValueError, TypeError) as e:
        raise _err(f"cannot check units ({e})", model, part, "check the expression") from None


def _dim_vars(dims: dict[str, Any]) -> dict:
    from brian2.core.variables import Constant

    out = {k: Constant(k, 1.0, dimensions=d) for k, d in dims.items()}
    from brian2.units.fundamentalunits import DIMENSIONLESS, get_dimensions
    from brian2.units.stdunits import ms

    out["dt"] = Constant("dt", 1.0, dimensions=get_dimensions(ms))
    out["inf"] = Constant("inf", float("inf"), dimensions=DIMENSIONLESS)
    out["t"] = Constant("t", 1.0, dimensions=get_dimensions(ms))
    return out


def _unit_resolver(dims: dict) -> dict:
    """Variables for Brian2's dimension checks, including unit names used as constants."""
    from brian2.core.functions import DEFAULT_FUNCTIONS
    from brian2.core.namespace import DEFAULT_UNITS
    from brian2.core.variables import Constant

    v = _dim_vars(dims)

    for name in list(FUNCTIONS):
        if name in DEFAULT_FUNCTIONS:
            v[name] = DEFAULT_FUNCTIONS[name]
    v.update(_own_functions())
    for name, q in DEFAULT_UNITS.items():
        if name not in v:
            v[name] = Constant(name, 1.0, dimensions=q.dim)
    return v


@cache
def _own_functions() -> dict:
    """Brian2 descriptions of the functions biolearn adds to Brian2's: ``float32(x)``, x rounded to
    single precision (IEEE round to nearest), in the unit of x, to emulate hardware that keeps a
    variable in float32 (e.g. a GPU simulator's state, Hao et al. 2020's GeNN code)."""
    import numpy as np
    from brian2.core.functions import Function

    return {"float32": Function(lambda x: np.asarray(x, np.float32).astype(np.float64),
                                arg_units=[None], return_unit=lambda u: u, arg_names=["x"])}


def _make_statements(code: str, scalars: list[str], arrays: list[str]) -> tuple[list, list]:
    """Brian2's statement preparation with loop-invariant hoisting (as its numpy target)."""
    import numpy as np
    from brian2.codegen.translation import make_statements
    from brian2.core.variables import Constant, Variable
    from brian2.units.fundamentalunits import DIMENSIONLESS

    variables: dict = {}
    for name in scalars:
        variables[name] = Constant(name, 1.0)
    for name in arrays:
        variables[name] = Variable(name, dimensions=DIMENSIONLESS, dtype=np.float64,
                                   scalar=False, constant=False, read_only=False)
    from brian2.core.functions import DEFAULT_FUNCTIONS

    for name in FUNCTIONS:
        if name in DEFAULT_FUNCTIONS:
            variables[name] = DEFAULT_FUNCTIONS[name]
    variables.update(_own_functions())
    for name in identifiers(code):
        if name not in variables and _is_unit(name):
            variables[name] = Constant(name, unit_value(name))
    variables["inf"] = Constant("inf", float("inf"))
    sc, vec = make_statements(code, variables, np.float64)
    return ([(s.var, s.expr) for s in sc],
            [(s.var, s.op if s.op != ":=" else "=", s.expr) for s in vec])


def render(expr: str, local: AbstractSet[str] = frozenset()) -> str:
    """A Brian2 expression in Python/Numba syntax; unit names that are not names of the model
    (``local``) become numbers in biolearn units."""
    return _render(expr, frozenset(local))


@lru_cache(maxsize=4096)
def _render(expr: str, local: frozenset) -> str:
    """:func:`render`, remembered: a rest value is rendered at every presentation."""
    from brian2.parsing.rendering import NodeRenderer

    tree = ast.parse(NodeRenderer().render_expr(expr), mode="eval")

    class Sub(ast.NodeTransformer):
        def visit_Name(self, node: ast.Name) -> Any:
            if node.id in local or node.id in ("True", "False"):
                return node
            if node.id == "inf":
                return ast.Name("_inf", ast.Load())
            if node.id == "pi":
                return ast.Constant(3.141592653589793)
            if node.id == "e":
                return ast.Constant(2.718281828459045)
            if _is_unit(node.id):
                return ast.Constant(unit_value(node.id))
            return node

        def visit_Call(self, node: ast.Call) -> Any:
            self.generic_visit(node)
            if isinstance(node.func, ast.Name) and node.func.id in FUNCTIONS:
                node.func = ast.parse(FUNCTIONS[node.func.id], mode="eval").body
            return node

    return ast.unparse(Sub().visit(tree))


def value_of(expr: Any, values: dict, where: str) -> Any:
    """An initial or rest value: a number, an array, or an expression of parameter ``values``
    (``"v_rest"``, ``"b*c"``)."""
    if not isinstance(expr, str):
        return expr
    import numpy as np

    code = _compiled(render(expr, values.keys()))
    try:
        return float(eval(code, {"__builtins__": {}, "_inf": np.inf, "exp": np.exp,  # noqa: S307
                                 "sqrt": np.sqrt, "log": np.log}, dict(values)))
    except Exception as e:
        raise BiolearnError(f"cannot evaluate '{expr}' ({e})", where,
                            "use numbers or parameters of the model") from None


@lru_cache(maxsize=4096)
def _compiled(code: str) -> CodeType:
    return compile(code, "<value>", "eval")


def _render_stmts(stmts: list, local: set[str]) -> list[tuple[str, str, str]]:
    return [(v, op, render(e, local)) for v, op, e in stmts]


@cache
def neuron_ir(model: NeuronModel) -> NeuronIR:
    """Check ``model`` and reduce it to statements; errors name the model and the part."""
    from brian2 import Equations
    from brian2.equations.equations import DIFFERENTIAL_EQUATION, PARAMETER, SUBEXPRESSION
    from brian2.stateupdaters.base import StateUpdateMethod, UnsupportedEquationsException

    brian2_quietly()
    name = model.name
    if not name.isidentifier():
        raise BiolearnError(f"model name '{name}' is not an identifier", "in NeuronModel",
                            "use letters, digits and underscores")
    try:
        eqs = Equations(model.equations)
    except Exception as e:  # brian2 raises several types with a clear message
        raise _err(f"cannot parse the equations ({str(e).splitlines()[0]})", name, "equations",
                   "use Brian2's syntax, e.g. 'dv/dt = (v_rest - v)/tau_m : volt'") from None
    params = _params(model)
    pnames = [p.name for p in params]
    diff_vars = [n for n, eq in eqs.items() if eq.type == DIFFERENTIAL_EQUATION]
    variables = diff_vars + [n for n, eq in eqs.items() if eq.type == PARAMETER]
    subexprs = [n for n, eq in eqs.items() if eq.type == SUBEXPRESSION]
    if not diff_vars:
        raise _err("no differential equation", name, "equations", "write at least one dx/dt")
    for v in variables:
        if v in pnames:
            raise _err(f"'{v}' is both a variable and a parameter", name, "parameters",
                       "rename one of them")
    dims = {n: eq.dim for n, eq in eqs.items()}
    dims.update({p.name: p.dim for p in params})
    known = set(variables) | set(pnames) | set(subexprs) | {"dt", "t"}
    for eq in eqs.values():
        if eq.expr is not None:
            _check_known(str(eq.expr.code), known, name, "equations")
    _check_known(model.threshold, known - set(subexprs), name, "threshold")
    if not model.threshold.strip():
        raise _err("no threshold condition", name, "threshold", "give e.g. 'v > v_thresh'")
    for part, d in (("init", model.init), ("rest", model.rest or {})):
        for v in d:
            if v not in variables:
                raise _err(f"'{v}' is not a variable", name, part,
                           "give values of the model's variables: " + ", ".join(variables))
    reset = _stmts(model.reset)
    after = _stmts(model.after_update)
    for part, stmts in (("reset", reset), ("after_update", after)):
        for var, _op, expr in stmts:
            if var not in variables:
                what = ("a parameter" if var in pnames else "an unknown variable")
                raise _err(f"statement writes '{var}', {what}", name, part,
                           "statements may only write the model's variables; make it a "
                           "variable ('x : unit') or fix the spelling")
            _check_known(expr, known - set(subexprs), name, part)
    # units
    from brian2.equations.unitcheck import check_dimensions, check_units_statements
    from brian2.units.fundamentalunits import get_dimensions
    from brian2.units.stdunits import ms

    uvars = _unit_resolver(dims)
    for n, eq in eqs.items():
        if eq.type == DIFFERENTIAL_EQUATION:
            sub = eqs.get_substituted_expressions(uvars)
            expr = dict(sub)[n]
            _check_dims(name, f"equations (d{n}/dt)", lambda e=expr, d=eq.dim: check_dimensions(
                str(e.code), d / get_dimensions(ms), uvars))
    from brian2.parsing.expressions import parse_expression_dimensions

    _check_dims(name, "threshold", lambda: parse_expression_dimensions(model.threshold, uvars))
    for part, code in (("reset", model.reset), ("after_update", model.after_update)):
        if code.strip():
            _check_dims(name, part, lambda c=code: check_units_statements(
                "\n".join(f"{v} {o} {e}" for v, o, e in _stmts(c)), uvars))
    # integration
    if model.method not in StateUpdateMethod.stateupdaters:
        raise _err(f"unknown integration method '{model.method}'", name, "method",
                   "use one of " + ", ".join(sorted(StateUpdateMethod.stateupdaters)))
    try:
        upd = StateUpdateMethod.apply_stateupdater(eqs, {}, model.method, group_name=name)
    except (UnsupportedEquationsException, ValueError, KeyError, TypeError) as e:
        raise _err(f"method '{model.method}' cannot integrate these equations "
                   f"({str(e).splitlines()[0]})", name, "method",
                   "use 'euler' (or 'rk4') for non-linear equations, 'exact' only for linear "
                   "ones") from None
    code = upd + ("\n" + "\n".join(f"{v} {o} {e}" for v, o, e in after) if after else "")
    held = [n for n, eq in eqs.items() if "unless refractory" in eq.flags]
    scalar, vector = _make_statements(code, pnames + ["dt", "t"], variables)
    local = set(variables) | set(pnames)
    uses_rand = bool({"rand", "randn"} & (identifiers(code) | identifiers(model.reset)))
    return NeuronIR(model, variables, dims, diff_vars, params,
                    [(v, render(e, local)) for v, e in scalar], _render_stmts(vector, local), held,
                    render(model.threshold, local), _render_stmts(reset, local),
                    model.refractory, uses_rand)


# ------------------------------------------------------------------------------ synapse IR
@dataclass
class SynapseIR:
    """A checked synapse model: its variables by storage and its statements by event."""

    model: SynapseModel
    params: list[Param]
    pre_traces: list[str]
    post_traces: list[str]
    syn_traces: list[str]  # event-driven, per synapse (share one time stamp)
    syn_vars: list[str]  # other per-synapse variables besides w
    rates: dict[str, str]  # trace → decay rate expression (1/ms), rendered
    rates_raw: dict[str, str]
    on_pre: list[tuple[str, str, str]]  # rendered statements
    on_post: list[tuple[str, str, str]]
    events: dict[str, list[tuple[str, str, str]]]
    reads_post_in_pre: bool
    reads_pre_in_post: bool
    clip_when_silent: tuple[str, str] | None  # on_pre with all post traces 0 = clip(w, lo, hi)
    dims: dict[str, Any]

    @property
    def param_names(self) -> list[str]:
        return [p.name for p in self.params]

    @property
    def traces(self) -> list[str]:
        return self.pre_traces + self.post_traces + self.syn_traces


@cache
def synapse_ir(model: SynapseModel) -> SynapseIR:
    """Check ``model`` and classify its variables (pre / post / per-synapse traces)."""
    import sympy
    from brian2 import Equations
    from brian2.equations.equations import DIFFERENTIAL_EQUATION, PARAMETER
    from brian2.parsing.sympytools import str_to_sympy, sympy_to_str

    brian2_quietly()
    name = model.name
    try:
        eqs = Equations(model.model)
    except Exception as e:
        raise _err(f"cannot parse the model ({str(e).splitlines()[0]})", name, "model",
                   "use Brian2's syntax, e.g. 'w : 1' and "
                   "'dapre/dt = -apre/tau_pre : 1 (event-driven)'") from None
    params = _params(model)
    pnames = [p.name for p in params]
    if "w" not in eqs.names:
        raise _err("no weight variable 'w'", name, "model", "declare 'w : 1'")
    traces, svars = [], []
    rates_raw = {}
    for n, eq in eqs.items():
        if n in pnames:
            raise _err(f"'{n}' is both a variable and a parameter", name, "parameters",
                       "rename one of them")
        if eq.type == DIFFERENTIAL_EQUATION:
            if "event-driven" not in eq.flags:
                raise _err(f"d{n}/dt must be (event-driven)", name, "model",
                           "biolearn integrates synaptic variables only between events: add "
                           "'(event-driven)'")
            x = str_to_sympy(n)
            ex = str_to_sympy(str(eq.expr.code))
            coef = sympy.simplify(sympy.diff(ex, x))
            if sympy.simplify(ex - coef * x) != 0 or x in coef.free_symbols or not (
                    {str(s) for s in coef.free_symbols} <= set(pnames)):
                raise _err(f"d{n}/dt is not a linear decay -{n}/tau", name, "model",
                           "event-driven variables must decay as dx/dt = -x/tau with tau a "
                           "parameter")
            traces.append(n)
            rates_raw[n] = sympy_to_str(-coef)
        elif eq.type == PARAMETER and n != "w":
            svars.append(n)
    on_pre = _stmts(model.on_pre)
    on_post = _stmts(model.on_post)
    events = {k: _stmts(v) for k, v in model.events.items()}
    w_pre = {v for v, _, _ in on_pre}
    w_post = {v for v, _, _ in on_post}
    known = set(eqs.names) | set(pnames)  # (t and dt are not available to synapse statements)
    pre_tr, post_tr, syn_tr = [], [], []
    for n in traces:
        if n in w_pre and n in w_post:
            syn_tr.append(n)
        elif n in w_pre:
            pre_tr.append(n)
        elif n in w_post:
            post_tr.append(n)
        else:
            raise _err(f"trace '{n}' is never incremented", name, "model",
                       "increment it in on_pre or on_post, or remove it")
    synaptic = {"w"} | set(svars) | set(syn_tr)
    for part, stmts, side, other in (("on_pre", on_pre, pre_tr, post_tr),
                                     ("on_post", on_post, post_tr, pre_tr)):
        for var, _op, expr in stmts:
            _check_known(expr, known, name, part)
            if var not in known or var in pnames:
                raise _err(f"statement writes '{var}', "
                           f"{'a parameter' if var in pnames else 'an unknown variable'}",
                           name, part, "statements may write w, per-synapse variables and "
                           "this side's traces")
            if var in side and identifiers(expr) & (synaptic | set(other)):
                raise _err(f"trace '{var}' depends on synaptic or other-side variables",
                           name, part, "a pre/post trace update may use only parameters and "
                           "traces of its own side")
    for ev, stmts in events.items():
        for var, _op, expr in stmts:
            _check_known(expr, known, name, f"events['{ev}']")
            if identifiers(expr) & set(pre_tr + post_tr):
                raise _err("an event reads a pre or post trace", name, f"events['{ev}']",
                           "events may read w, per-synapse variables and traces, and "
                           "parameters")
            if var not in synaptic:
                raise _err(f"event statement writes '{var}'", name, f"events['{ev}']",
                           "events may write w and per-synapse variables")
    for lr in model.learning_rates:
        if lr not in pnames:
            raise _err(f"learning rate '{lr}' is not a parameter", name, "learning_rates",
                       "name parameters of the model")
    # units
    from brian2.equations.unitcheck import check_units_statements

    dims = {n: eq.dim for n, eq in eqs.items()}
    dims.update({p.name: p.dim for p in params})
    uvars = _unit_resolver(dims)
    for part, stmts in (("on_pre", on_pre), ("on_post", on_post),
                        *((f"events['{k}']", v) for k, v in events.items())):
        if stmts:
            _check_dims(name, part, lambda s=stmts: check_units_statements(
                "\n".join(f"{v} {o} {e}" for v, o, e in s), uvars))
    # does a pre spike with every post trace at zero reduce to clipping w? (kernels: active path)
    clip = None
    if post_tr and all(v == "w" or v in pre_tr for v, _, _ in on_pre):
        exprs: dict[str, Any] = {}
        w = str_to_sympy("w")
        cur = w
        for var, op, expr in on_pre:
            if var != "w":
                continue
            e = str_to_sympy(expr).subs({str_to_sympy("w"): cur})
            cur = e if op == "=" else sympy.sympify(f"_w {op[0]} _e").subs(
                {"_w": cur, "_e": e})
        zero = cur.subs({str_to_sympy(p): 0 for p in post_tr})
        zero = sympy.simplify(zero)
        if zero == w:
            clip = ("-inf", "inf")
        elif isinstance(zero, sympy.Function) and str(zero.func) == "clip" and zero.args[0] == w:
            local = set(pnames)
            clip = (render(sympy_to_str(zero.args[1]), local),
                    render(sympy_to_str(zero.args[2]), local))
        del exprs
    local = known
    return SynapseIR(
        model, params, pre_tr, post_tr, syn_tr, svars,
        {k: render(v, set(pnames)) for k, v in rates_raw.items()}, rates_raw,
        _render_stmts(on_pre, local), _render_stmts(on_post, local),
        {k: _render_stmts(v, local) for k, v in events.items()},
        any(identifiers(e) & set(post_tr) for _, _, e in on_pre),
        any(identifiers(e) & set(pre_tr) for _, _, e in on_post),
        clip, dims)
