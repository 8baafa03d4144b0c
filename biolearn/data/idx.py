"""IDX files (the MNIST container format), read and written as NumPy arrays.

Layout (LeCun et al., "The MNIST database", file-format section): a big-endian 4-byte magic number
``0x00 0x00 <dtype code> <ndim>``, then ``ndim`` big-endian uint32 dimension sizes, then the payload
in C order. MNIST images have magic 2051 (uint8, 3 dims: count, rows, cols); labels 2049 (uint8,
1 dim). Both gzip-compressed (``*.gz``) and raw files are accepted.
"""

from __future__ import annotations

import gzip
import os
import struct
import tempfile
import zlib
from pathlib import Path

import numpy as np

from biolearn.errors import BiolearnError

#: IDX type code -> big-endian NumPy dtype.
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODE_OF_KIND = {("u", 1): 0x08, ("i", 1): 0x09, ("i", 2): 0x0B, ("i", 4): 0x0C, ("f", 4): 0x0D,
                 ("f", 8): 0x0E}

MAGIC_IMAGES = 2051  #: uint8, 3 dims
MAGIC_LABELS = 2049  #: uint8, 1 dim

_FIX = ("delete it and run again so that biolearn downloads a fresh copy, "
        "or point data.root / $BIOLEARN_DATA at a good copy")


def _corrupt(path: str | os.PathLike, what: str) -> BiolearnError:
    return BiolearnError(f"IDX file is unreadable: {what}", f"file {path}", _FIX)


def read_bytes(path: str | os.PathLike) -> bytes:
    """Return the uncompressed content of ``path`` (gunzipped when it is gzip data).

    Compression is detected from the gzip magic bytes, not from the file name.
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(2)
            fh.seek(0)
            if head == b"\x1f\x8b":
                with gzip.GzipFile(fileobj=fh) as gz:
                    return gz.read()
            return fh.read()
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise _corrupt(path, f"gzip stream is truncated or damaged ({exc})") from None
    except OSError as exc:
        raise BiolearnError(f"cannot read IDX file ({exc.strerror or exc})", f"file {path}",
                            "check that the file exists and is readable") from None


def parse_idx(data: bytes, path: str | os.PathLike = "<bytes>",
              expected_magic: int | None = None) -> np.ndarray:
    """Decode uncompressed IDX ``data`` into an array in native byte order.

    Validates the magic number, the dimension header and that the payload has exactly the size the
    header announces. ``path`` only names the source in error messages.
    """
    if len(data) < 4:
        raise _corrupt(path, f"file has {len(data)} bytes, too short for an IDX header")
    zero, code, ndim = struct.unpack(">HBB", data[:4])
    magic = struct.unpack(">I", data[:4])[0]
    if zero != 0 or code not in IDX_DTYPES or ndim == 0:
        raise _corrupt(path, f"bad magic number {magic} (0x{magic:08x}); expected an IDX file "
                             f"such as {MAGIC_IMAGES} (images) or {MAGIC_LABELS} (labels)")
    if expected_magic is not None and magic != expected_magic:
        raise _corrupt(path, f"magic number {magic}, expected {expected_magic} "
                             f"({'images' if expected_magic == MAGIC_IMAGES else 'labels'})")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise _corrupt(path, f"header announces {ndim} dimensions but the file ends after "
                             f"{len(data)} bytes")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    dtype = IDX_DTYPES[code]
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    got = len(data) - header
    if got != expected:
        kind = "truncated" if got < expected else "has trailing bytes"
        raise _corrupt(path, f"payload {kind}: header {dims} needs {expected} bytes, found {got}")
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)
    return arr.astype(dtype.newbyteorder("="), copy=True)


def read_idx(path: str | os.PathLike, expected_magic: int | None = None) -> np.ndarray:
    """Read an IDX file (``.gz`` or raw) into a native-endian array.

    Raises :class:`BiolearnError` naming the file for truncated, corrupt or wrong-magic files.
    """
    return parse_idx(read_bytes(path), path, expected_magic)


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode ``array`` as uncompressed IDX bytes (magic + big-endian dims + big-endian payload)."""
    arr = np.asarray(array)
    if arr.ndim == 0 or arr.ndim > 255:
        raise ValueError(f"IDX needs 1..255 dimensions, got {arr.ndim}")
    code = _CODE_OF_KIND.get((arr.dtype.kind, arr.dtype.itemsize))
    if code is None:
        raise ValueError(f"dtype {arr.dtype} has no IDX type code")
    header = struct.pack(f">HBB{arr.ndim}I", 0, code, arr.ndim, *arr.shape)
    return header + np.ascontiguousarray(arr, dtype=IDX_DTYPES[code]).tobytes()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and ``os.replace``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write ``array`` as an IDX file, gzip-compressed when ``path`` ends in ``.gz`` (atomic)."""
    data = idx_bytes(array)
    if str(path).endswith(".gz"):
        data = gzip.compress(data, compresslevel=6, mtime=0)
    atomic_write_bytes(path, data)
