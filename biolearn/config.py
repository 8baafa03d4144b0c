"""YAML → typed, validated run configuration; dotted ``--set`` overrides.

A config file has the top-level keys ``model`` (a registry name), ``name``, ``seed``, ``threads``
(the engine's kernel threads; default: every core), ``data`` (:class:`DataConfig`) and ``params``
— the recipe's own dataclass, declared with :func:`param`
fields so that types, ranges and allowed values are checked and named in errors. Numbers must be
finite (``param(..., allow_inf=True)`` admits ±infinity where it means something) and integers
must fit 64 bits. A dataclass may define ``validate()``: it runs once the section is converted and
raises :class:`Invalid` for values that contradict each other (see :func:`require_below`).

:func:`load_config` reads a file, applies ``--set a.b=value`` overrides (each value is read as a
YAML scalar, so ``1``, ``0.5``, ``true``, ``null``, ``[1, 2]`` and ``abc`` become int, float, bool,
None, list and str), then converts the result into a :class:`RunConfig`. Every problem a user can
cause raises :class:`~biolearn.errors.BiolearnError` naming the dotted key, where it came from
(file and line, or the ``--set`` argument) and how to fix it.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import math
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from biolearn.errors import BiolearnError


def param(default: Any = None, help: str = "", *, min: float | None = None,
          max: float | None = None, choices: list | None = None, factory: Any = None,
          allow_inf: bool = False) -> Any:
    """A config field with a default, a help text (cite the paper) and optional checks.

    Numbers must be finite: NaN is always refused, and ±infinity (``.inf`` in YAML) only where
    ``allow_inf`` says it has a meaning (a time constant of "no decay", a bound of "no bound");
    ``min``/``max`` still apply to it.
    """
    meta = {"help": help, "min": min, "max": max, "choices": choices, "allow_inf": allow_inf}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class DataConfig:
    """Dataset selection shared by all recipes."""

    dataset: str = param("mnist", "dataset name", choices=["mnist", "fashion_mnist", "none"])
    root: str | None = param(None, "directory holding the IDX files (else $BIOLEARN_DATA, "
                             "~/.cache/biolearn, then download)")
    n_train: int | None = param(None, "use the first n training images (None = all)", min=1)
    n_test: int | None = param(None, "use the first n test images (None = all)", min=1)


@dataclass
class RunConfig:
    """The resolved configuration handed to a recipe as ``cfg``."""

    model: str
    name: str = "run"
    seed: int = 0
    threads: int | None = None  # kernel threads (None: biolearn.engine.default_threads())
    data: DataConfig = field(default_factory=DataConfig)
    params: Any = None


class Invalid(ValueError):
    """Raised by a params dataclass's ``validate()`` method for values that contradict each other.

    ``what`` names the fields as ``{0}``, ``{1}``, … (keys relative to the dataclass, dotted for
    nested sections); :func:`build_dataclass` replaces them with the full dotted keys and points the
    error at where those keys were set (file line or ``--set``). ``fix`` says how to fix it.
    """

    def __init__(self, what: str, *keys: str, fix: str = ""):
        self.what, self.keys, self.fix = what, keys, fix
        super().__init__(self.text(keys))

    def text(self, names: tuple[str, ...] | list[str]) -> str:
        """``what`` with ``{i}`` replaced by ``'names[i]'``."""
        return re.sub(r"\{(\d+)\}", lambda m: f"'{names[int(m.group(1))]}'"
                      if int(m.group(1)) < len(names) else m.group(), self.what)


def require_below(obj: Any, low: str, high: str, *, strict: bool = True, why: str = "",
                  fix: str = "") -> None:
    """Raise :class:`Invalid` unless ``obj.<low>`` < ``obj.<high>`` (``<=`` when not ``strict``).

    ``low`` and ``high`` may be dotted paths into nested sections; ``None`` values pass."""
    a, b = _attr(obj, low), _attr(obj, high)
    if a is None or b is None:
        return
    if a < b or (not strict and a == b):
        return
    rel = "below" if strict else "at most"
    raise Invalid(f"{{0}} = {_num_text(a)} must be {rel} {{1}} = {_num_text(b)}"
                  + (f" ({why})" if why else ""), low, high,
                  fix=fix or f"lower {low.rsplit('.', 1)[-1]} or raise {high.rsplit('.', 1)[-1]}")


def _attr(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def _num_text(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def machine_memory_bytes() -> int | None:
    """Physical memory of the computer (or of the container's memory limit, if lower)."""
    total: int | None = None
    try:
        import psutil

        total = int(psutil.virtual_memory().total)
    except Exception:  # psutil missing or unusable here
        try:
            total = int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
        except (AttributeError, ValueError, OSError):
            total = None
    for limit_file in ("/sys/fs/cgroup/memory.max",
                       "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(limit_file).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and (total is None or 0 < int(text) < total):
            total = int(text)
        break
    return total


def format_bytes(n: float) -> str:
    """``n`` bytes as a short text with binary units (``5.57 PiB``)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB"):
        if abs(n) < 1024 or unit == "ZiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} ZiB"  # pragma: no cover - the loop always returns


def wrap_error(err: BiolearnError, *keys: str, named: bool = True, note: str = "") -> Invalid:
    """A :class:`BiolearnError` raised while checking the value of ``keys[0]``, as
    :class:`Invalid`, so that the error points at where those keys were set. ``named``: the
    message starts with the key; ``note`` is appended to it."""
    return Invalid(("{0}: " if named else "") + err.what + note, *keys, fix=err.fix or "")


TOP_KEYS = ("model", "name", "seed", "threads", "data", "params")
_INT64 = 2**63 - 1
_SEED_MAX = 2**32 - 1  # fits every seed API biolearn hands it to (numpy, numba, torch)
_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# PyYAML (YAML 1.1) reads "1e-3" as a string; such strings are accepted where a number is expected.
_FLOAT_RE = re.compile(r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\Z")


# --------------------------------------------------------------------------------------------
# where a key came from, for error messages
# --------------------------------------------------------------------------------------------

class _Where:
    """Maps a dotted key path to 'file line N' or to the --set argument that set it."""

    def __init__(self, source: str, lines: dict[str, int] | None = None):
        self.source = source
        self.lines = lines or {}
        self.overrides: dict[str, str] = {}

    def _set(self, text: str) -> str:
        return f"in '{text}'" if text.startswith("--") else f"in --set '{text}'"

    def _override(self, path: str) -> str | None:
        """The last --set argument that set ``path``, a key inside it or a section holding it."""
        hit = None
        for key, text in self.overrides.items():  # in the order they were applied
            if (key == path or key.startswith(path + ".") or key.startswith(path + "[")
                    or path.startswith(key + ".") or path.startswith(key + "[")):
                hit = text
        return hit

    def __call__(self, path: str) -> str:
        # a --set argument wins over the file: it replaced whatever the file had there
        text = self._override(path)
        if text is not None:
            return self._set(text)
        probe = path
        while True:
            if probe in self.lines:
                return f"in {self.source} line {self.lines[probe]}"
            if "." not in probe and "[" not in probe:
                break
            probe = re.sub(r"(\.[^.\[]*|\[\d+\])$", "", probe)
            if not probe:
                break
        return f"in {self.source}"

    def set_here(self, path: str) -> bool:
        """Whether ``path`` was given explicitly (a --set argument, or a key of the file)."""
        return self._override(path) is not None or path in self.lines

    def of(self, paths: list[str]) -> str:
        """Where a problem involving several keys was set: the places of the keys the user gave
        (file lines, --set arguments), joined; else the place of the first key."""
        places: list[str] = []
        for p in paths:
            if self.set_here(p):
                w = self(p)
                if w not in places:
                    places.append(w)
        if not places:
            return self(paths[0]) if paths else f"in {self.source}"
        sets = [w for w in places if w.startswith("in --set") or w.startswith("in '--")]
        if sets:  # the command line changed something: that is what to look at first
            places = sets + [w for w in places if w not in sets]
        if len(places) == 1:
            return places[0]
        return places[0] + "".join(" and " + w.removeprefix("in ") for w in places[1:])


def _line_map(node: yaml.Node, prefix: str, out: dict[str, int], where: str) -> None:
    """Record the 1-based line of every mapping key; reject duplicate keys."""
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for knode, vnode in node.value:
            key = str(knode.value)
            if key == "<<":
                continue
            path = f"{prefix}.{key}" if prefix else key
            if key in seen:
                raise BiolearnError(
                    f"duplicate key '{path}'",
                    f"in {where} line {knode.start_mark.line + 1}",
                    "keep only one of the two entries",
                )
            seen.add(key)
            out[path] = knode.start_mark.line + 1
            _line_map(vnode, path, out, where)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            path = f"{prefix}[{i}]"
            out[path] = item.start_mark.line + 1
            _line_map(item, path, out, where)


def _read_yaml(path: Path) -> tuple[dict, _Where]:
    where = str(path)
    if not path.exists():
        raise BiolearnError(
            f"config file '{path}' does not exist",
            "in 'biolearn run CONFIG'",
            "check the path; 'biolearn list' shows the configs in ./configs",
        )
    if path.is_dir():
        raise BiolearnError(
            f"config '{path}' is a directory",
            "in 'biolearn run CONFIG'",
            "pass a YAML file such as configs/<name>.yaml",
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise BiolearnError(
            f"config '{path}' is not UTF-8 text", f"at byte {e.start}", "save it as UTF-8 YAML"
        ) from e
    except OSError as e:
        raise BiolearnError(
            f"cannot read config '{path}' ({e.strerror or e})", "in 'biolearn run CONFIG'",
            "check the file permissions",
        ) from e
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        loc = f"in {where} line {mark.line + 1} column {mark.column + 1}" if mark else f"in {where}"
        if e.context_mark is not None and mark is not None and e.context_mark.line != mark.line:
            loc += f" (started at line {e.context_mark.line + 1})"
        what = " ".join(str(p) for p in (e.context, e.problem) if p) or "invalid YAML"
        raise BiolearnError(
            f"invalid YAML: {what}".replace("\n", " "), loc,
            "fix the syntax there (indent with spaces, 'key: value', quote strings containing ':')",
        ) from e
    except (yaml.YAMLError, ValueError) as e:
        raise BiolearnError(
            f"invalid YAML: {e}".replace("\n", " "), f"in {where}", "fix the YAML syntax"
        ) from e
    lines: dict[str, int] = {}
    if node is not None:
        _line_map(node, "", lines, where)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise BiolearnError(
            f"config must be a mapping of keys, got {_tname(data)}", f"in {where}",
            "write 'model: <name>' and the other keys " + ", ".join(TOP_KEYS),
        )
    return data, _Where(where, lines)


# --------------------------------------------------------------------------------------------
# --set overrides
# --------------------------------------------------------------------------------------------

def _printable(text: str) -> str:
    """``text`` with control characters escaped, so an error message stays on one line."""
    return re.sub(r"[\x00-\x1f\x7f]", lambda m: repr(m.group())[1:-1], text)


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``a.b.c=value`` into ``(['a', 'b', 'c'], value)``; the value is read as YAML.

    Raises :class:`BiolearnError` (and nothing else) for any malformed argument.
    """
    if not isinstance(text, str) or "=" not in text:
        raise BiolearnError(
            f"malformed override '{_printable(str(text))}'", "in --set",
            "write --set key.sub=value, e.g. --set params.lr=0.01",
        )
    shown = _printable(text)
    key, raw = text.split("=", 1)
    key = key.strip()
    parts = key.split(".")
    if not key or not all(_KEY_RE.match(p) for p in parts):
        raise BiolearnError(
            f"malformed key '{_printable(key)}' in override '{shown}'", "in --set",
            "use dotted names made of letters, digits and '_', e.g. --set data.n_train=1000",
        )
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except Exception as e:  # yaml errors, and ValueError from e.g. impossible dates
        if isinstance(e, yaml.MarkedYAMLError):
            msg = " ".join(str(p) for p in (e.context, e.problem) if p) or "invalid YAML"
        else:
            msg = str(e)
        msg = " ".join(msg.split())
        raise BiolearnError(
            f"cannot read the value of override '{shown}' ({_printable(msg)})", "in --set",
            "quote strings, e.g. --set name='\"my run\"', or write a plain number/true/false/null",
        ) from e
    if isinstance(value, (_dt.date, _dt.datetime)):
        value = raw.strip()
    return parts, value


def _apply_override(data: dict, parts: list[str], value: Any, text: str, where: _Where) -> None:
    node = data
    for i, part in enumerate(parts[:-1]):
        nxt = node.get(part)
        if nxt is None:
            nxt = node[part] = {}
        if not isinstance(nxt, dict):
            dotted = ".".join(parts[: i + 1])
            raise BiolearnError(
                f"cannot set '{'.'.join(parts)}': '{dotted}' is a value, not a section",
                f"in --set '{text}'", f"set '{dotted}' itself, e.g. --set {dotted}=...",
            )
        node = nxt
    node[parts[-1]] = value
    key = ".".join(parts)
    where.overrides.pop(key, None)  # keep the order in which the arguments were applied
    where.overrides[key] = text


# --------------------------------------------------------------------------------------------
# typed conversion
# --------------------------------------------------------------------------------------------

def _tname(v: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "a list", dict: "a mapping", type(None): "null"}.get(type(v), type(v).__name__)


def _show(v: Any) -> str:
    s = _printable(repr(v))
    return s if len(s) <= 60 else s[:57] + "..."


def _type_desc(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if tp is Any:
        return "any value"
    if tp is bool:
        return "true or false"
    if tp is int:
        return "an integer"
    if tp is float:
        return "a number"
    if tp is str:
        return "a string"
    if tp is type(None):
        return "null"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_desc(a) for a in typing.get_args(tp))
    if origin is list:
        return "a list"
    if origin is tuple:
        return "a list"
    if origin is dict:
        return "a mapping"
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    return getattr(tp, "__name__", str(tp))


class _Mismatch(Exception):
    """Internal: a value does not fit a type; turned into a BiolearnError with the key path."""

    def __init__(self, path: str, expected: str, value: Any):
        self.path, self.expected, self.value = path, expected, value


def _hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except Exception:  # unresolvable annotations: fall back to the raw ones
        return {f.name: f.type for f in dataclasses.fields(cls)}


def _convert(value: Any, tp: Any, path: str, where: _Where) -> Any:
    origin = typing.get_origin(tp)
    if tp is Any or tp is object:
        return value
    if isinstance(tp, str):  # unresolved forward reference: accept as is
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise _Mismatch(path, _type_desc(tp), value)
        last: Exception | None = None
        for a in args:
            if a is type(None):
                continue
            try:
                return _convert(value, a, path, where)
            except _Mismatch as e:
                last = e
        if isinstance(last, _Mismatch) and last.path != path:
            raise last
        raise _Mismatch(path, _type_desc(tp), value)
    if origin is typing.Literal:
        if value in typing.get_args(tp):
            return value
        raise _Mismatch(path, _type_desc(tp), value)
    if dataclasses.is_dataclass(tp):
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise _Mismatch(path, "a mapping of keys", value)
        return build_dataclass(tp, value, path, where)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _Mismatch(path, "true or false", value)
    if tp is int:
        if isinstance(value, bool):
            raise _Mismatch(path, "an integer", value)
        if isinstance(value, int):
            return value
        if isinstance(value, str) and _FLOAT_RE.match(value.strip()):
            value = float(value)
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            return int(value)
        raise _Mismatch(path, "an integer", value)
    if tp is float:
        if isinstance(value, bool):
            raise _Mismatch(path, "a number", value)
        if isinstance(value, (int, float)) or (isinstance(value, str)
                                                and _FLOAT_RE.match(value.strip())):
            try:
                return float(value)
            except OverflowError:  # an integer beyond the float range
                raise _Mismatch(path, "a number within ±1.8e308", value) from None
        raise _Mismatch(path, "a number", value)
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, (_dt.date, _dt.datetime)):
            return value.isoformat()
        raise _Mismatch(path, "a string", value)
    if origin in (list, tuple) or tp in (list, tuple):
        if isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, list):
            raise _Mismatch(path, "a list, e.g. [1, 2]", value)
        args = typing.get_args(tp)
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            if len(value) != len(args):
                raise _Mismatch(path, f"a list of {len(args)} items", value)
            return tuple(_convert(v, a, f"{path}[{i}]", where)
                         for i, (v, a) in enumerate(zip(value, args, strict=True)))
        item = args[0] if args else Any
        out = [_convert(v, item, f"{path}[{i}]", where) for i, v in enumerate(value)]
        return tuple(out) if (origin is tuple or tp is tuple) else out
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise _Mismatch(path, "a mapping", value)
        args = typing.get_args(tp)
        vt = args[1] if len(args) == 2 else Any
        return {str(k): _convert(v, vt, f"{path}.{k}", where) for k, v in value.items()}
    if isinstance(tp, type):
        if isinstance(value, tp):
            return value
        try:
            return tp(value)
        except Exception:
            raise _Mismatch(path, _type_desc(tp), value) from None
    return value


def _flat(value: Any) -> list:
    """The scalars of a value: itself, or the items of (nested) lists and tuples."""
    if isinstance(value, (list, tuple)):
        return [x for v in value for x in _flat(v)]
    return [value]


def _check_meta(value: Any, meta: Any, path: str, where: _Where) -> None:
    if value is None:
        return
    meta = meta or {}
    lo, hi, choices = meta.get("min"), meta.get("max"), meta.get("choices")
    help_ = meta.get("help") or ""
    about = f" ({help_})" if help_ else ""
    for v in _flat(value):
        if choices is not None and v not in choices:
            from biolearn.registry import closest

            hint = closest(str(v), [str(c) for c in choices])
            raise BiolearnError(
                f"invalid value {_show(v)} for '{path}'" + about,
                where(path),
                (hint + " " if hint else "") + "allowed values: "
                + ", ".join(str(c) for c in choices),
            )
        if isinstance(v, float) and not math.isfinite(v) and (
                math.isnan(v) or not meta.get("allow_inf")):
            rng = _range_text(lo, hi)
            raise BiolearnError(
                f"'{path}' = {_show(v)} is not a finite number" + about, where(path),
                "choose a finite value" + (f" {rng}" if rng else ""),
            )
        if isinstance(v, int) and not isinstance(v, bool) and not -_INT64 - 1 <= v <= _INT64:
            raise BiolearnError(  # every integer ends up in a 64-bit NumPy/Numba integer
                f"'{path}' = {_show(v)} is out of range" + about, where(path),
                f"choose a value between {-_INT64 - 1 if lo is None else lo} and "
                f"{_INT64 if hi is None else hi}",
            )
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            bad = (lo is not None and not v >= lo) or (hi is not None and not v <= hi)
            if bad:
                raise BiolearnError(
                    f"'{path}' = {_show(v)} is out of range" + about,
                    where(path), f"choose a value {_range_text(lo, hi)}",
                )


def _range_text(lo: Any, hi: Any) -> str:
    if lo is not None and hi is not None:
        return f"between {lo} and {hi}"
    if lo is not None:
        return f"at least {lo}"
    if hi is not None:
        return f"at most {hi}"
    return ""


def _unknown_key(key: str, path: str, allowed: list[str], where: _Where) -> BiolearnError:
    from biolearn.registry import closest

    hint = closest(key, allowed)
    return BiolearnError(
        f"unknown key '{path}'", where(path),
        (hint + " " if hint else "") + "allowed keys here: " + (", ".join(allowed) or "(none)"),
    )


def build_dataclass(cls: type, data: dict, prefix: str = "", where: _Where | None = None) -> Any:
    """Build ``cls`` from a mapping, converting and checking every field (see module doc)."""
    where = where or _Where("config")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    hints = _hints(cls)
    kwargs: dict[str, Any] = {}
    for key, raw in data.items():
        key = str(key)
        path = f"{prefix}.{key}" if prefix else key
        if key not in fields:
            raise _unknown_key(key, path, list(fields), where)
        f = fields[key]
        try:
            value = _convert(raw, hints.get(key, f.type), path, where)
        except _Mismatch as e:
            help_ = ((f.metadata or {}).get("help") or "") if e.path == path else ""
            raise BiolearnError(
                f"wrong type for '{e.path}': expected {e.expected}, got {_show(e.value)} "
                f"({_tname(e.value)})" + (f" [{help_}]" if help_ else ""),
                where(e.path), f"set '{e.path}' to {e.expected}",
            ) from None
        _check_meta(value, f.metadata, path, where)
        kwargs[key] = value
    for name, f in fields.items():
        if name in kwargs:
            continue
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            path = f"{prefix}.{name}" if prefix else name
            raise BiolearnError(
                f"missing key '{path}'", where(prefix) if prefix else f"in {where.source}",
                f"add '{name}: ...'" + (f" ({f.metadata['help']})"
                                         if f.metadata and f.metadata.get("help") else ""),
            )
        if f.default is not dataclasses.MISSING:
            _check_meta(f.default, f.metadata, f"{prefix}.{name}" if prefix else name, where)
    try:
        obj = cls(**kwargs)
        check = getattr(obj, "validate", None)
        if callable(check):  # cross-field checks, after every field is converted and in range
            check()
    except BiolearnError:
        raise
    except Invalid as e:
        keys = [f"{prefix}.{k}" if prefix else k for k in e.keys]
        raise BiolearnError(
            e.text(keys).replace("\n", " "),
            where.of(keys) if keys else (where(prefix) if prefix else f"in {where.source}"),
            e.fix or "make the values named there agree",
        ) from None
    except (TypeError, ValueError, ArithmeticError) as e:  # a class's own __post_init__ check
        raise BiolearnError(
            f"invalid settings in '{prefix or cls.__name__}': {e}".replace("\n", " "),
            where(prefix) if prefix else f"in {where.source}", "fix the values named there",
        ) from None
    return obj


# --------------------------------------------------------------------------------------------
# public entry points
# --------------------------------------------------------------------------------------------

def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = (),
                seed: int | None = None) -> RunConfig:
    """Read ``path``, apply ``--set`` overrides and a seed override; return the validated config."""
    path = Path(path)
    data, where = _read_yaml(path)
    for text in overrides:
        parts, value = parse_override(text)
        _apply_override(data, parts, value, _printable(text), where)
    return config_from_dict(data, where=where, default_name=path.stem, seed=seed)


def config_from_dict(data: dict, *, where: _Where | None = None, default_name: str = "run",
                     seed: int | None = None) -> RunConfig:
    """Validate a plain mapping (as read from YAML) into a :class:`RunConfig`."""
    from biolearn.registry import get_recipe

    where = where or _Where("config")
    for key in data:
        if str(key) not in TOP_KEYS:
            raise _unknown_key(str(key), str(key), list(TOP_KEYS), where)
    model = data.get("model")
    if model is None:
        raise BiolearnError(
            "missing key 'model'", f"in {where.source}",
            "add 'model: <name>' at the top ('biolearn list' shows the models)",
        )
    if not isinstance(model, str):
        raise BiolearnError(
            f"wrong type for 'model': expected a model name, got {_show(model)}", where("model"),
            "write e.g. 'model: sym_stdp' ('biolearn list' shows the models)",
        )
    recipe = get_recipe(model, where=where("model"))
    name = data.get("name", default_name)
    name = _convert_top(name, str, "name", where)
    if not name or not re.fullmatch(r"[A-Za-z0-9_.+-]+", name) or name in (".", ".."):
        raise BiolearnError(
            f"invalid run name {_show(name)}", where("name"),
            "use letters, digits, '_', '-', '.' or '+' (it becomes a directory name)",
        )
    if seed is not None:
        where.overrides["seed"] = f"--seed {seed}"
        data = {**data, "seed": seed}
    seed_v = _convert_top(data.get("seed", 0), int, "seed", where)
    if not 0 <= seed_v <= _SEED_MAX:
        raise BiolearnError(
            f"'seed' = {seed_v} is out of range", where("seed"),
            f"choose an integer between 0 and {_SEED_MAX}",
        )
    threads = data.get("threads")
    if threads is not None:
        threads = _convert_top(threads, int, "threads", where)
        if threads < 1:
            raise BiolearnError(f"'threads' = {threads} is not positive", where("threads"),
                                "use 1 or more (or leave it out: every core)")
    data_cfg = _convert_top(data.get("data"), DataConfig, "data", where)
    params_cls = recipe.params
    if params_cls is None or not dataclasses.is_dataclass(params_cls):
        params = data.get("params")
    else:
        params = _convert_top(data.get("params"), params_cls, "params", where)
    return RunConfig(model=model, name=name, seed=seed_v, threads=threads, data=data_cfg,
                     params=params)


def _convert_top(value: Any, tp: Any, path: str, where: _Where) -> Any:
    try:
        return _convert(value, tp, path, where)
    except _Mismatch as e:
        raise BiolearnError(
            f"wrong type for '{e.path}': expected {e.expected}, got {_show(e.value)} "
            f"({_tname(e.value)})", where(e.path), f"set '{e.path}' to {e.expected}",
        ) from None


def _plain(v: Any) -> Any:
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return {f.name: _plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, Path):
        return str(v)
    if hasattr(v, "item") and callable(v.item) and getattr(v, "ndim", 1) == 0:
        return v.item()  # numpy scalar
    return v


def to_dict(cfg: RunConfig) -> dict:
    """The resolved config as plain YAML/JSON-ready data (tuples become lists)."""
    return _plain(cfg)


def dump_yaml(cfg: RunConfig) -> str:
    """The resolved config as YAML text; :func:`load_config` reads it back to an equal config."""
    return yaml.safe_dump(to_dict(cfg), sort_keys=False, default_flow_style=None)


def describe_params(cls: type, prefix: str = "params") -> list[tuple[str, str, Any, str]]:
    """``(dotted key, type, default, help)`` for every field of a params dataclass (for docs)."""
    rows: list[tuple[str, str, Any, str]] = []
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints.get(f.name, f.type)
        path = f"{prefix}.{f.name}"
        if dataclasses.is_dataclass(tp):
            rows.extend(describe_params(tp, path))
            continue
        default = (f.default if f.default is not dataclasses.MISSING
                   else f.default_factory() if f.default_factory is not dataclasses.MISSING
                   else None)
        meta = f.metadata or {}
        desc = _type_desc(tp)
        if meta.get("choices") is not None:
            desc += " (one of " + ", ".join(str(c) for c in meta["choices"]) + ")"
        lo, hi = meta.get("min"), meta.get("max")
        if lo is not None or hi is not None:
            desc += f" in [{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}]"
        if meta.get("allow_inf"):
            desc += " (±inf allowed)"
        rows.append((path, desc, _plain(default), meta.get("help", "")))
    return rows
