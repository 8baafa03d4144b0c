"""Shared HDF5 helpers: opening files for reading with user-facing errors."""

from __future__ import annotations

import contextlib
import errno as _errno
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


# ---------------------------------------------------------------------- writing
class FailSoftFile:
    """An unbuffered file for h5py's ``fileobj`` driver that survives a failed write.

    After a write fails inside HDF5's own drivers (full disk, file size limit, I/O error), HDF5's
    metadata cache is left inconsistent: closing raises again, object ids cannot be released, and
    the process can crash with a segmentation fault at exit. Through this file HDF5 never sees the
    failure: the first :class:`OSError` is kept in :attr:`error` and every later write is dropped,
    so HDF5 closes normally, and the file on disk is what it was when the write failed (as after a
    kill at that moment). Each HDF5 write is one ``write()`` to the kernel, as with the default
    driver. An exclusive ``flock`` is held while open, like HDF5's own file locking.
    """

    def __init__(self, path: str | os.PathLike, mode: str):
        self.path = Path(path)
        self.error: OSError | None = None
        self._fh = open(self.path, "w+b" if mode == "w" else "r+b", buffering=0)  # noqa: SIM115
        try:
            import fcntl

            fcntl.flock(self._fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # pragma: no cover - not POSIX
            pass
        except OSError as exc:
            if exc.errno in (_errno.EWOULDBLOCK, _errno.EAGAIN, _errno.EACCES):
                self._fh.close()
                raise BiolearnError("the file is open for writing in another process",
                                    f"file {self.path}",
                                    "wait until the job writing it has ended") from None
            # file systems without locks (some network mounts): go on unlocked

    def seek(self, pos: int, whence: int = 0) -> int:
        return self._fh.seek(pos, whence)

    def tell(self) -> int:
        return self._fh.tell()

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            return self._fh.read()
        out = bytearray()
        while len(out) < size:
            chunk = self._fh.read(size - len(out))
            if not chunk:
                break
            out += chunk
        if len(out) < size:  # past the end: zeros, as HDF5's POSIX driver reads them
            out += bytes(size - len(out))
        return bytes(out)

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        n = len(view)
        if self.error is not None:
            return n
        try:
            while len(view):
                k = self._fh.write(view)
                if not k:
                    raise OSError(_errno.EIO, os.strerror(_errno.EIO), str(self.path))
                view = view[k:]
        except OSError as exc:
            self.error = exc
        return n

    def truncate(self, size: int | None = None) -> int:
        if self.error is None:
            try:
                return self._fh.truncate(size)
            except OSError as exc:
                self.error = exc
        return int(size or 0)

    def flush(self) -> None:
        """Nothing to do: every write already went to the kernel."""

    def fileno(self) -> int:
        return self._fh.fileno()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._fh.close()

    def raise_error(self) -> None:
        """Raise the first failed write as an :class:`OSError` naming this file."""
        if self.error is not None:
            raise as_os_error(self.error, self.path) from self.error


def open_write(path: str | os.PathLike, mode: str = "w", **kw: Any) -> h5py.File:
    """``h5py.File(path, mode, **kw)`` for writing through a :class:`FailSoftFile`.

    Close it with :func:`close_write`, which raises a failed write as one :class:`OSError`.
    ``mode`` is ``"w"`` (create or truncate) or ``"r+"``."""
    if mode not in ("w", "r+"):
        raise ValueError(f"open_write mode must be 'w' or 'r+', not {mode!r}")
    raw = FailSoftFile(path, mode)
    try:
        f = h5py.File(raw, mode, **kw)
    except BaseException:
        raw.close()
        raise
    f._biolearn_raw = raw  # the h5py File keeps no other handle on it for us
    return f


def write_error(f: h5py.File) -> OSError | None:
    """The first failed write of a file opened with :func:`open_write` (None if none)."""
    raw = getattr(f, "_biolearn_raw", None)
    return None if raw is None else raw.error


def close_write(f: h5py.File) -> None:
    """Close a file opened with :func:`open_write`; raise its first failed write, if any."""
    raw = getattr(f, "_biolearn_raw", None)
    try:
        with contextlib.suppress(Exception) if (raw is not None and raw.error) else \
                contextlib.nullcontext():
            f.close()
    finally:
        if raw is not None:
            raw.close()
    if raw is not None:
        raw.raise_error()


@contextlib.contextmanager
def writing(path: str | os.PathLike, mode: str = "w", **kw: Any) -> Iterator[h5py.File]:
    """``with writing(path) as f:`` an HDF5 file opened by :func:`open_write`; on leaving, a
    failed write raises one :class:`OSError` naming the file (the caller decides whether the
    file is kept)."""
    f = open_write(path, mode, **kw)
    try:
        yield f
    except BaseException:
        raw = getattr(f, "_biolearn_raw", None)
        with contextlib.suppress(Exception):
            f.close()
        if raw is not None:
            raw.close()
        raise
    close_write(f)
