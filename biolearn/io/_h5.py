"""Shared HDF5 helpers: opening files for reading with user-facing errors."""

from __future__ import annotations

import errno as _errno
import os
import re
from pathlib import Path

import h5py

from biolearn.errors import BiolearnError

#: File-format bounds for every file biolearn writes. The low bound "earliest" keeps superblock
#: version 0, which (unlike version 3) carries no "open for writing" flag: a writer killed with
#: SIGKILL therefore leaves a file that any HDF5 >= 1.8 reader (h5py, libsonata, bmtk) opens without
#: ``h5clear``. The high bound stops HDF5 2.x from encoding objects in formats 1.x readers reject.
LIBVER: tuple[str, str] = ("earliest", "v110")


def libver() -> tuple[str, str] | str:
    """The ``libver`` argument for :func:`h5py.File` (falls back when ``v110`` is unknown)."""
    return LIBVER if "v110" in _known_libvers() else "earliest"


def _known_libvers() -> set[str]:
    try:
        from h5py._hl import files

        return set(files.libver_dict)
    except (ImportError, AttributeError):  # pragma: no cover - very old or very new h5py
        return {"earliest", "latest"}


def open_read(path: str | os.PathLike, what: str = "HDF5 file") -> h5py.File:
    """Open ``path`` read-only, turning every failure into a :class:`BiolearnError`.

    File locking is disabled so that a file still being written by a running job can be inspected
    (its content is consistent up to the writer's last flush).
    """
    p = Path(path)
    if not p.exists():
        raise BiolearnError(f"{what} not found", f"file {p}",
                            "check the path (run directories hold spikes.h5 and weights.h5)")
    if p.is_dir():
        raise BiolearnError(f"expected an {what}, got a directory", f"path {p}",
                            "pass a file inside it, e.g. spikes.h5 or weights.h5")
    try:
        is_h5 = h5py.is_hdf5(p)
    except OSError as exc:
        raise BiolearnError(f"cannot read {what} ({exc})", f"file {p}",
                            "check the file's permissions") from None
    if not is_h5:
        raise BiolearnError(f"not an HDF5 file (no HDF5 signature; {p.stat().st_size} bytes)",
                            f"file {p}",
                            "pass an .h5 file written by biolearn or another HDF5 tool; a file cut "
                            "short while being copied must be copied again")
    try:
        return h5py.File(p, "r", locking=False)
    except TypeError:  # pragma: no cover - h5py < 3.5 has no locking argument
        pass
    except OSError as exc:
        # Within the process that is writing the file, HDF5 insists on the writer's flags.
        if "locking" not in str(exc):
            raise _unreadable(p, exc, what) from None
    try:
        return h5py.File(p, "r")
    except OSError as exc:
        raise _unreadable(p, exc, what) from None


def _unreadable(p: Path, exc: Exception, what: str) -> BiolearnError:
    msg = str(exc).split("(", 1)[0].strip() or type(exc).__name__
    if "already open for write" in str(exc):
        return BiolearnError(f"{what} is marked as still open by a writer", f"file {p}",
                             f"if no job is writing it, clear the flag with: h5clear -s {p}")
    return BiolearnError(f"{what} is damaged or truncated ({msg})", f"file {p}",
                         "re-run the job that wrote it, or restore the file from a good copy")


def decode_attr(value: object) -> object:
    """HDF5 attribute value → plain Python (bytes → str, numpy scalars → Python scalars)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if hasattr(value, "dtype") and getattr(value, "shape", None) == ():
        return value.item()  # type: ignore[union-attr]
    return value


_ERRNO_RE = re.compile(r"errno = (\d+)")
_MSG_RE = re.compile(r"error message = '([^']*)'")


def as_os_error(exc: BaseException, path: str | os.PathLike) -> OSError:
    """An :class:`OSError` naming ``path`` for a failed HDF5 write, with the system's reason.

    h5py reports a failed ``write()`` (full disk, file size limit, I/O error) as an OSError or
    RuntimeError whose text holds HDF5's error stack, e.g. ``... errno = 28, error message = 'No
    space left on device' ...``; this keeps the errno and the short reason only."""
    text = str(exc)
    code = getattr(exc, "errno", None)
    if not code:
        m = _ERRNO_RE.search(text)
        code = int(m.group(1)) if m else None
    if code:
        reason = os.strerror(code)
    else:
        m = _MSG_RE.search(text)
        reason = m.group(1) if m else (" ".join(text.split("(", 1)[0].split())
                                       or type(exc).__name__)
        code = _errno.EIO
    return OSError(code, reason, str(path))
