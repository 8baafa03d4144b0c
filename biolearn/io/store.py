"""Run store: weights (``weights.h5``), JSON results and provenance, all written atomically.

Every writer here writes to a temporary file in the destination directory and moves it into place
with :func:`os.replace`, so a run that dies mid-write leaves either the previous file or the new
one, never a half-written file.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import functools
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from biolearn.errors import BiolearnError
from biolearn.io._h5 import as_os_error, decode_attr, libver, open_read, writing

_JSON_ATTRS = "__json_attrs__"  # names of root attributes stored as JSON text


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success move it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


# ---------------------------------------------------------------------- weights.h5
def _native_attr(value: Any) -> Any | None:
    """Value as an HDF5-storable attribute, or None if it has to go through JSON."""
    if isinstance(value, (bool, int, float, str, np.generic)):
        return value
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        return value
    if isinstance(value, (list, tuple)) and value and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        return np.asarray(value)
    return None


def save_weights(path: str | os.PathLike, arrays: Mapping[str, np.ndarray],
                 attrs: Mapping[str, Any] | None = None, compression_level: int = 4) -> Path:
    """Write named arrays to an HDF5 file (gzip + shuffle), atomically.

    Names may contain ``/`` to form groups (``"exc/weights"``). ``attrs`` become root attributes;
    values HDF5 cannot hold natively (dicts, None, mixed lists) are stored as JSON text and decoded
    again by :func:`load_weights`. Returns the path written.
    """
    path = Path(path)
    where = f"save_weights({path.name})"
    try:
        with atomic_path(path) as tmp, writing(tmp, "w", libver=libver()) as f:
            for name, value in arrays.items():
                if not isinstance(name, str) or not name.strip("/"):
                    raise BiolearnError(f"invalid array name {name!r}", where,
                                        "use a non-empty name")
                arr = np.asarray(value)
                if arr.dtype.kind in "US":
                    arr = arr.astype(object).astype(h5py.string_dtype())
                elif arr.dtype.kind not in "biufc":
                    raise BiolearnError(f"array {name!r} has unsupported dtype {arr.dtype}", where,
                                        "store numeric, boolean or string arrays")
                kw: dict[str, Any] = {}
                if arr.ndim and arr.size and arr.dtype.kind in "biufc":
                    kw = {"compression": "gzip", "compression_opts": compression_level,
                          "shuffle": True}
                f.create_dataset(name.strip("/"), data=arr, **kw)
            json_keys = []
            for key, value in (attrs or {}).items():
                native = _native_attr(value)
                if native is None:
                    f.attrs[key] = json.dumps(to_jsonable(value))
                    json_keys.append(key)
                else:
                    f.attrs[key] = native
            if json_keys:
                f.attrs[_JSON_ATTRS] = json.dumps(json_keys)
    except (OSError, RuntimeError) as exc:  # full disk, size limit: no file is left behind
        raise as_os_error(exc, path) from exc
    return path


def load_weights(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read a file written by :func:`save_weights` (or any HDF5 file of plain datasets).

    Returns ``(arrays, attrs)``: every dataset under its full name (``"exc/weights"``) and the root
    attributes as Python values.
    """
    arrays: dict[str, np.ndarray] = {}
    with open_read(path, "weights file") as f:

        def visit(name: str, obj: Any) -> None:
            if isinstance(obj, h5py.Dataset):
                if h5py.check_string_dtype(obj.dtype) is not None:
                    arrays[name] = obj.asstr()[()]
                else:
                    arrays[name] = obj[()]

        f.visititems(visit)
        raw = {k: decode_attr(v) for k, v in f.attrs.items()}
    json_keys = json.loads(raw.pop(_JSON_ATTRS, "[]"))
    attrs = {k: (json.loads(v) if k in json_keys else v) for k, v in raw.items()}
    return arrays, attrs


# ---------------------------------------------------------------------- JSON
def to_jsonable(obj: Any) -> Any:
    """Convert ``obj`` into JSON-ready Python: numpy scalars/arrays, paths, dataclasses, sets.

    Non-finite floats become ``None`` (JSON has no NaN or infinity).
    """
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, (set, frozenset)):
        return [to_jsonable(v) for v in sorted(obj, key=repr)]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.floating) and obj.dtype.itemsize < 8:
        return to_jsonable(float(str(obj)))  # float32 0.9 -> 0.9, not 0.8999999761581421
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, (bool, int, str)) or obj is None:
        return obj
    if isinstance(obj, complex):
        return [obj.real, obj.imag]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(dataclasses.asdict(obj))
    if isinstance(obj, (_dt.datetime, _dt.date)):
        return obj.isoformat()
    if isinstance(obj, bytes):
        return obj.decode("utf-8", errors="replace")
    raise TypeError(f"cannot convert {type(obj).__name__} to JSON")


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` atomically (temporary file, fsync, rename): readers never see half a file."""
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
    return path


def write_json_atomic(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON, atomically."""
    return write_text_atomic(path, json.dumps(to_jsonable(obj), indent=2, allow_nan=False) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file, with a :class:`BiolearnError` if it is missing or malformed."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise BiolearnError("JSON file not found", f"file {path}", "check the path") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BiolearnError(f"malformed JSON ({exc})", f"file {path}",
                            "re-run the job that wrote it") from None


# ---------------------------------------------------------------------- provenance
def utc_now() -> str:
    """Current UTC time, ISO 8601 with a ``Z`` suffix (second resolution)."""
    now = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0)
    return now.isoformat().replace("+00:00", "Z")


def _git(root: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                             timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_info(root: str | os.PathLike | None = None) -> dict[str, Any]:
    """Commit and dirty flag of the git checkout holding the biolearn sources (None if none)."""
    if root is None:
        import biolearn

        root = Path(biolearn.__file__).resolve().parent.parent
    root = Path(root)
    top = _git(root, "rev-parse", "--show-toplevel")
    if top is None or Path(top).resolve() != root.resolve():
        return {"git_commit": None, "git_dirty": None}  # installed copy, or someone else's repo
    commit = _git(root, "rev-parse", "HEAD")  # None in a repository without commits
    status = _git(root, "status", "--porcelain", "--untracked-files=no")
    return {"git_commit": commit, "git_dirty": None if status is None else bool(status)}


@functools.cache
def process_git_info() -> dict[str, Any]:
    """:func:`git_info` read once per process, at its first run, when biolearn's code is loaded:
    a commit landing later (a sweep worker runs one run after another) does not relabel it."""
    return git_info()


def _version(module: str) -> str | None:
    try:
        from importlib.metadata import PackageNotFoundError, version
    except ImportError:  # pragma: no cover
        return None
    try:
        return version(module)
    except PackageNotFoundError:
        mod = sys.modules.get(module)
        return getattr(mod, "__version__", None)


def provenance(git: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """Where a result came from: biolearn version, git commit, library versions, UTC time.

    ``git`` is the commit the result's code came from (:func:`process_git_info`; read now if
    None). Keyword arguments (e.g. ``seed=``, ``start_utc=``) are added to the returned dict.
    """
    import biolearn

    info: dict[str, Any] = {"biolearn_version": biolearn.__version__}
    info.update(git_info() if git is None else git)
    info.update({
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": _version("numba"),
        "h5py": h5py.__version__,
        "hdf5": h5py.version.hdf5_version,
        "platform": platform.platform(),
        "time_utc": utc_now(),
    })
    info.update(extra)
    return info
