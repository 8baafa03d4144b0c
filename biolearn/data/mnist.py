"""MNIST and Fashion-MNIST: find local IDX files, verify them, download them when missing.

Search order for the four IDX files (``.gz`` or raw): the explicit ``root`` (``data.root`` /
``--data-root``), then ``$BIOLEARN_DATA``, then ``~/.cache/biolearn``, then Debian's
``/usr/share/datasets`` (package ``dataset-fashion-mnist``). Inside each root the
dataset's own sub-folder (``mnist/`` or ``fashion_mnist/``, plus the common spellings
``MNIST/raw``, ``FashionMNIST/raw`` …) is tried first, then the root itself.

Checksums are SHA-256 digests of the *uncompressed* IDX bytes, because gzip output differs between
compressors. For MNIST they are known (:data:`DATASETS`); for Fashion-MNIST only the official gzip
MD5s published by Zalando Research (Xiao et al. 2017, github.com/zalandoresearch/fashion-mnist)
are known, so a local Fashion-MNIST copy gets header/size/label-range validation only, while a
download is checked against the official gzip MD5. A verified file is converted once to a ``.npy``
file in the array cache (``$BIOLEARN_CACHE`` or ``~/.cache/biolearn/arrays``) keyed by the source's
path, size and mtime, so later loads take tens of milliseconds.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from biolearn.data.idx import MAGIC_IMAGES, MAGIC_LABELS, parse_idx, read_bytes
from biolearn.errors import BiolearnError


@dataclass(frozen=True)
class IdxFileSpec:
    """One of a dataset's four IDX files.

    ``sha256`` is the digest of the uncompressed bytes (None when unknown); ``gz_md5`` is the MD5 of
    the official gzip file as served by the mirrors (checked on download only).
    """

    key: str
    name: str
    magic: int
    sha256: str | None = None
    gz_md5: str | None = None


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset made of four IDX files, its folder names and its download mirrors."""

    name: str
    title: str
    subdirs: tuple[str, ...]
    files: tuple[IdxFileSpec, ...]
    mirrors: tuple[str, ...]
    mirrors_env: str
    image_shape: tuple[int, int] = (28, 28)
    n_classes: int = 10


# Uncompressed SHA-256 of the official MNIST files (LeCun, Cortes & Burges); the uncompressed MD5s
# of the same bytes are 6bbc9ace…, a25bea73…, 2646ac64…, 27ae3e4e…; the gzip MD5s are those of the
# official .gz files (also used by torchvision).
_MNIST_FILES = (
    IdxFileSpec("train_images", "train-images-idx3-ubyte", MAGIC_IMAGES,
                "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
                "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
    IdxFileSpec("train_labels", "train-labels-idx1-ubyte", MAGIC_LABELS,
                "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
                "d53e105ee54ea40749a09fcbcd1e9432"),
    IdxFileSpec("test_images", "t10k-images-idx3-ubyte", MAGIC_IMAGES,
                "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
                "9fb629c4189551a2d022fa330f9573f3"),
    IdxFileSpec("test_labels", "t10k-labels-idx1-ubyte", MAGIC_LABELS,
                "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
                "ec29112dd5afa0611ce80d1b7f02629c"),
)

# Fashion-MNIST (Xiao, Rasul & Vollgraf 2017): only the official gzip MD5s are known here; the
# uncompressed digests are left unset rather than guessed.
_FASHION_FILES = (
    IdxFileSpec("train_images", "train-images-idx3-ubyte", MAGIC_IMAGES, None,
                "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
    IdxFileSpec("train_labels", "train-labels-idx1-ubyte", MAGIC_LABELS, None,
                "25c81989df183df01b3e8a0aad5dffbe"),
    IdxFileSpec("test_images", "t10k-images-idx3-ubyte", MAGIC_IMAGES, None,
                "bef4ecab320f06d8554ea6380940ec79"),
    IdxFileSpec("test_labels", "t10k-labels-idx1-ubyte", MAGIC_LABELS, None,
                "bb300cfdad3c16e7a12a480ee83cd310"),
)

#: Known datasets. Tests may replace an entry (e.g. with digests of generated files).
DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        "mnist", "MNIST", ("mnist", "MNIST", "MNIST/raw"), _MNIST_FILES,
        ("https://ossci-datasets.s3.amazonaws.com/mnist/",
         "https://storage.googleapis.com/cvdf-datasets/mnist/",
         "http://yann.lecun.com/exdb/mnist/"),
        "BIOLEARN_MNIST_MIRRORS"),
    "fashion_mnist": DatasetSpec(
        "fashion_mnist", "Fashion-MNIST",
        ("fashion_mnist", "fashion-mnist", "FashionMNIST", "FashionMNIST/raw", "fashion"),
        _FASHION_FILES,
        ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
         "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/"),
        "BIOLEARN_FASHION_MNIST_MIRRORS"),
}

#: Download tuning (seconds); tests shorten the back-off.
_LOADED: list[dict] = []  # what load_mnist read in this process, for run provenance

DOWNLOAD_ATTEMPTS = 3
RETRY_BACKOFF_S = 1.0
TIMEOUT_S = 30.0
_CACHE_FORMAT = 1  # bump when the cached-array layout changes
#: Searched last, never written: Debian's dataset packages (``apt-get install
#: dataset-fashion-mnist`` puts the IDX files in ``fashion-mnist/`` there).
SYSTEM_DATASETS = Path("/usr/share/datasets")


# ------------------------------------------------------------------------------------------ places
def _user_cache() -> Path:
    return Path(os.path.expanduser("~")) / ".cache" / "biolearn"


def data_roots(root: str | os.PathLike | None = None) -> list[Path]:
    """Roots searched for dataset files and written by downloads, in order: ``root``,
    ``$BIOLEARN_DATA``, the user cache (:data:`SYSTEM_DATASETS` is searched after them)."""
    out: list[Path] = []
    for r in (root, os.environ.get("BIOLEARN_DATA") or None, _user_cache()):
        if r is None:
            continue
        p = Path(r).expanduser()
        if p not in out:
            out.append(p)
    return out


def array_cache_dir() -> Path:
    """Where verified arrays are cached as ``.npy`` (``$BIOLEARN_CACHE`` or the user cache)."""
    env = os.environ.get("BIOLEARN_CACHE")
    return Path(env).expanduser() if env else _user_cache() / "arrays"


def get_spec(dataset: str) -> DatasetSpec:
    """The :class:`DatasetSpec` for ``dataset``; unknown names give a :class:`BiolearnError`."""
    try:
        return DATASETS[dataset]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(str(dataset), DATASETS, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise BiolearnError(f"unknown dataset '{dataset}'", "data.dataset",
                            f"{hint}allowed: {', '.join(DATASETS)}") from None


def _candidate_dirs(spec: DatasetSpec, roots: list[Path]) -> list[Path]:
    dirs: list[Path] = []
    for r in roots:
        for d in [r / s for s in spec.subdirs] + [r]:
            if d not in dirs:
                dirs.append(d)
    return dirs


def _find_in(d: Path, f: IdxFileSpec) -> Path | None:
    dotted = f.name.replace("-idx", ".idx")  # train-images.idx3-ubyte, another common spelling
    for n in (f.name + ".gz", f.name, dotted + ".gz", dotted):
        p = d / n
        if p.is_file():
            return p
    return None


def find_dataset(dataset: str = "mnist", root: str | os.PathLike | None = None
                 ) -> tuple[dict[str, Path] | None, list[Path], list[str]]:
    """Look for a complete copy of ``dataset``.

    Returns ``(paths, searched_dirs, notes)``: ``paths`` maps file keys (``train_images`` …) to the
    files of the first directory holding all four, or is None; ``notes`` describe partial copies.
    """
    spec = get_spec(dataset)
    searched = _candidate_dirs(spec, data_roots(root) + [SYSTEM_DATASETS])
    notes: list[str] = []
    for d in searched:
        if not d.is_dir():
            continue
        found = {f.key: _find_in(d, f) for f in spec.files}
        have = {k: p for k, p in found.items() if p is not None}
        if len(have) == len(spec.files):
            return have, searched, notes
        if have:
            missing = [f.name for f in spec.files if found[f.key] is None]
            notes.append(f"{d} has only {len(have)} of the 4 files (missing {', '.join(missing)})")
    return None, searched, notes


# -------------------------------------------------------------------------------------- verifying
def _known_digests() -> dict[str, tuple[str, str]]:
    return {f.sha256: (s.title, f.name) for s in DATASETS.values() for f in s.files if f.sha256}


def _subdir(title: str) -> str:
    return next((s.subdirs[0] for s in DATASETS.values() if s.title == title), title)


def _fix_file(spec: DatasetSpec) -> str:
    return (f"delete it so that biolearn downloads {spec.title} again, or point data.root / "
            "$BIOLEARN_DATA at a good copy")


def _validate(data: bytes, path: str | os.PathLike, f: IdxFileSpec, spec: DatasetSpec
              ) -> np.ndarray:
    """Check digest (when known), header and shape of one file's uncompressed bytes.

    Order: another known file in this place (swapped or misplaced files), an empty file, the IDX
    structure (truncated, wrong kind), and only then the digest of a well-formed file."""
    digest = hashlib.sha256(data).hexdigest()
    if digest != f.sha256:
        other = _known_digests().get(digest)
        if other is not None and other != (spec.title, f.name):
            found, expected = f"{other[0]}'s {other[1]}", f"{spec.title}'s {f.name}"
            fix = (f"put the {other[0]} files in a '{_subdir(other[0])}/' sub-folder and the "
                   f"{spec.title} files in '{spec.subdirs[0]}/'" if other[0] != spec.title else
                   f"the files are swapped or misnamed: rename this one to {other[1]} (keeping "
                   f"its .gz), and give {f.name} the right content")
            raise BiolearnError(f"wrong file: it holds {found}, not {expected} expected here",
                                f"file {path}", fix)
    if not data:
        raise BiolearnError("data file is empty (0 bytes of data): truncated or never written",
                            f"file {path}", _fix_file(spec))
    arr = parse_idx(data, path, f.magic)
    if f.sha256 is not None and digest != f.sha256:
        raise BiolearnError(
            f"checksum mismatch: SHA-256 of the uncompressed data is {digest[:16]}…, expected "
            f"{f.sha256[:16]}… (official {spec.title} {f.name})", f"file {path}",
            _fix_file(spec))
    if f.magic == MAGIC_IMAGES and arr.shape[1:] != spec.image_shape:
        raise BiolearnError(
            f"images are {arr.shape[1]}x{arr.shape[2]}, {spec.title} images are "
            f"{spec.image_shape[0]}x{spec.image_shape[1]}", f"file {path}", _fix_file(spec))
    if f.magic == MAGIC_LABELS and arr.size and int(arr.max()) >= spec.n_classes:
        raise BiolearnError(f"label {int(arr.max())} out of range 0..{spec.n_classes - 1}",
                            f"file {path}", _fix_file(spec))
    return arr


def _cache_path(path: Path, f: IdxFileSpec, spec: DatasetSpec) -> tuple[Path, str]:
    st = path.stat()
    where = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]
    what = hashlib.sha1(f"{st.st_size}:{st.st_mtime_ns}:{f.sha256}:{f.magic}:{spec.image_shape}:"
                        f"{_CACHE_FORMAT}".encode()).hexdigest()[:12]
    prefix = f"{spec.name}-{f.name}-{where}-"
    return array_cache_dir() / f"{prefix}{what}.npy", prefix


def _save_cache(cache: Path, prefix: str, arr: np.ndarray) -> None:
    """Store ``arr`` atomically and drop stale entries for the same source; never fails loudly."""
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npy", dir=cache.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                np.save(fh, arr, allow_pickle=False)
            os.replace(tmp, cache)
        finally:
            Path(tmp).unlink(missing_ok=True)
        for old in cache.parent.glob(prefix + "*.npy"):
            if old != cache:
                old.unlink(missing_ok=True)
    except OSError:
        pass  # read-only or full cache: loading still works, only slower


def load_idx_verified(path: Path, f: IdxFileSpec, spec: DatasetSpec) -> np.ndarray:
    """Read and verify one IDX file, using the ``.npy`` array cache when it is current."""
    cache, prefix = _cache_path(path, f, spec)
    if cache.is_file():
        try:
            return np.load(cache, allow_pickle=False)
        except (OSError, ValueError):
            cache.unlink(missing_ok=True)
    arr = _validate(read_bytes(path), path, f, spec)
    _save_cache(cache, prefix, arr)
    return arr


# ------------------------------------------------------------------------------------ downloading
class _DownloadFailed(Exception):
    def __init__(self, name: str, errors: list[str]):
        self.name, self.errors = name, errors
        super().__init__(f"{name}: " + "; ".join(errors))


def mirror_list(spec: DatasetSpec, mirrors: list[str] | tuple[str, ...] | str | None = None
                ) -> list[str]:
    """Base URLs to try: ``mirrors`` if given, else ``$BIOLEARN_<DATASET>_MIRRORS`` (comma or space
    separated), else the canonical list in :data:`DATASETS`."""
    if mirrors is None:
        mirrors = os.environ.get(spec.mirrors_env) or list(spec.mirrors)
    if isinstance(mirrors, str):
        mirrors = mirrors.replace(",", " ").split()
    return [m if m.endswith("/") else m + "/" for m in mirrors]


def _fetch(url: str, dest: Path, quiet: bool) -> None:
    from tqdm.auto import tqdm

    req = urllib.request.Request(url, headers={"User-Agent": "biolearn"})
    with urllib.request.urlopen(req, timeout=TIMEOUT_S) as resp, open(dest, "wb") as out:
        total = resp.headers.get("Content-Length")
        with tqdm(total=int(total) if total else None, unit="B", unit_scale=True,
                  unit_divisor=1024, desc=url.rsplit("/", 1)[-1], leave=False,
                  disable=True if quiet else None) as bar:
            while chunk := resp.read(1 << 16):
                out.write(chunk)
                bar.update(len(chunk))


def _check_download(tmp: Path, url: str, f: IdxFileSpec, spec: DatasetSpec) -> None:
    raw = tmp.read_bytes()
    if not raw:
        raise ValueError("empty response (0 bytes)")
    data = read_bytes(tmp)
    if f.sha256 is not None:
        digest = hashlib.sha256(data).hexdigest()
        if digest != f.sha256:
            raise ValueError(f"checksum mismatch (SHA-256 {digest[:16]}…, expected "
                             f"{f.sha256[:16]}…)")
    elif f.gz_md5 is not None and raw[:2] == b"\x1f\x8b":
        digest = hashlib.md5(raw).hexdigest()
        if digest != f.gz_md5:
            raise ValueError(f"checksum mismatch (gzip MD5 {digest}, expected {f.gz_md5})")
    try:
        _validate(data, url, f, spec)
    except BiolearnError as exc:
        raise ValueError(exc.what) from None


def _download_file(f: IdxFileSpec, spec: DatasetSpec, dest_dir: Path, mirrors: list[str],
                   quiet: bool) -> Path:
    """Fetch ``<mirror><name>.gz`` into ``dest_dir`` with retries; atomic, verified, or nothing."""
    dest = dest_dir / (f.name + ".gz")
    errors: list[str] = []
    alive = list(mirrors)
    for attempt in range(DOWNLOAD_ATTEMPTS):
        for base in list(alive):
            url = base + f.name + ".gz"
            fd, tmp_name = tempfile.mkstemp(prefix=f".{f.name}.", suffix=".part", dir=dest_dir)
            os.close(fd)
            tmp = Path(tmp_name)
            try:
                _fetch(url, tmp, quiet)
                _check_download(tmp, url, f, spec)
                os.replace(tmp, dest)
                return dest
            except urllib.error.HTTPError as exc:
                errors.append(f"{url}: HTTP {exc.code}")
                if 400 <= exc.code < 500 and exc.code not in (408, 429):
                    alive.remove(base)  # permanent: do not ask this mirror again
            except (ValueError, BiolearnError) as exc:
                errors.append(f"{url}: {exc}")
                alive.remove(base)  # wrong content will not improve with retries
            except (urllib.error.URLError, OSError) as exc:
                reason = getattr(exc, "reason", None) or exc
                errors.append(f"{url}: {reason}")
            finally:
                tmp.unlink(missing_ok=True)
        if not alive:
            break
        if attempt + 1 < DOWNLOAD_ATTEMPTS:
            time.sleep(RETRY_BACKOFF_S * 2**attempt)
    raise _DownloadFailed(f.name + ".gz", errors)


def _download_target(spec: DatasetSpec, root: str | os.PathLike | None
                     ) -> tuple[Path | None, bool]:
    """The first writable download folder, and whether it was created here."""
    for r in data_roots(root):
        d = r / spec.subdirs[0]
        existed = d.is_dir()
        try:
            d.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(d, os.W_OK):
            return d, not existed
    return None, False


def download_dataset(dataset: str = "mnist", root: str | os.PathLike | None = None,
                     mirrors: list[str] | str | None = None, quiet: bool = False) -> Path:
    """Download the files of ``dataset`` that are missing from its download folder.

    The folder is ``<root>/<dataset>`` for the first writable root of :func:`data_roots`. Each file
    is verified before it is moved into place. Returns the folder.
    """
    spec = get_spec(dataset)
    dest, created = _download_target(spec, root)
    if dest is None:
        raise BiolearnError(f"no writable folder to download {spec.title} into",
                            "searched " + ", ".join(str(r) for r in data_roots(root)),
                            "set data.root or $BIOLEARN_DATA to a writable directory")
    urls = mirror_list(spec, mirrors)
    todo = [f for f in spec.files if _find_in(dest, f) is None]
    if todo and not quiet:
        print(f"downloading {spec.title} into {dest}", file=sys.stderr)
    try:
        for f in todo:
            _download_file(f, spec, dest, urls, quiet)
    except BaseException:
        if created and dest.is_dir() and not any(dest.iterdir()):
            dest.rmdir()  # leave no empty folder behind a failed download
        raise
    return dest


# ---------------------------------------------------------------------------------------- loading
def _missing_error(spec: DatasetSpec, roots: list[Path], notes: list[str],
                   download_errors: list[str] | None) -> BiolearnError:
    names = ", ".join(f.name + ".gz" for f in spec.files)
    what = f"{spec.title} not found: need the four IDX files {names} (raw or .gz)"
    subs = ", ".join(s + "/" for s in spec.subdirs)
    searched = [*roots, SYSTEM_DATASETS]
    where = (f"searched {', '.join(str(r) for r in searched)} (each directly and in the "
             f"sub-folders {subs})")
    if notes:
        where += "; " + "; ".join(notes)
    fix = (f"put the four files in one of those folders (e.g. {roots[-1] / spec.subdirs[0]}), "
           f"or set data.root / --data-root / $BIOLEARN_DATA to the folder holding them")
    if download_errors is None:
        fix += ", or enable downloading (download=True)"
    else:
        shown = download_errors[:4] + (["…"] if len(download_errors) > 4 else [])
        fix += (f" (download failed: {'; '.join(shown)}; "
                f"mirrors can be set with ${spec.mirrors_env})")
    return BiolearnError(what, where, fix)


def _check_n(n: int | None, available: int, key: str) -> int:
    if n is None:
        return available
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise BiolearnError(f"{key} must be a non-negative integer or null, got {n!r}",
                            f"data.{key}", "set it to a count such as 1000, or null for all")
    if n > available:
        raise BiolearnError(f"{key}={n} exceeds the {available} available examples",
                            f"data.{key}", f"use at most {available}, or null for all")
    return int(n)


def load_mnist(root: str | os.PathLike | None = None, dataset: str = "mnist",
               n_train: int | None = None, n_test: int | None = None, download: bool = True,
               quiet: bool = False, *, mirrors: list[str] | str | None = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Load MNIST (or Fashion-MNIST with ``dataset="fashion_mnist"``).

    Returns ``(x_train, y_train, x_test, y_test)``: images uint8 ``[N, 28, 28]`` (0..255), labels
    uint8 ``[N]``. ``n_train`` / ``n_test`` keep the first N examples of the official order (None =
    all). When no local copy exists and ``download`` is true, the files are fetched from the mirrors
    (``mirrors`` argument, ``$BIOLEARN_MNIST_MIRRORS`` / ``$BIOLEARN_FASHION_MNIST_MIRRORS``, or the
    canonical list). Every problem is a :class:`BiolearnError` saying what, where and how to fix.
    """
    spec = get_spec(dataset)
    paths, _, notes = find_dataset(dataset, root)
    if paths is None:
        if not download:
            raise _missing_error(spec, data_roots(root), notes, None)
        try:
            download_dataset(dataset, root, mirrors, quiet)
        except _DownloadFailed as exc:
            raise _missing_error(spec, data_roots(root), notes, exc.errors) from None
        paths, _, notes = find_dataset(dataset, root)
        if paths is None:  # pragma: no cover - the download folder is one of the searched ones
            raise _missing_error(spec, data_roots(root), notes, [])
    arrs = {f.key: load_idx_verified(paths[f.key], f, spec) for f in spec.files}
    _record_loaded(spec, paths)
    for split in ("train", "test"):
        x, y = arrs[f"{split}_images"], arrs[f"{split}_labels"]
        if len(x) != len(y):
            raise BiolearnError(
                f"{split} set has {len(x)} images but {len(y)} labels",
                f"files {paths[f'{split}_images']} and {paths[f'{split}_labels']}",
                _fix_file(spec).replace("delete it", "delete both"))
    n_tr = _check_n(n_train, len(arrs["train_images"]), "n_train")
    n_te = _check_n(n_test, len(arrs["test_images"]), "n_test")
    return (arrs["train_images"][:n_tr], arrs["train_labels"][:n_tr],
            arrs["test_images"][:n_te], arrs["test_labels"][:n_te])


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _record_loaded(spec: DatasetSpec, paths: dict[str, Path]) -> None:
    """Note which files were read, with their checksums, for :func:`loaded_datasets`.

    A file with a known digest was verified against it (``sha256_uncompressed``, the digest of the
    uncompressed IDX bytes); otherwise the SHA-256 of the file as stored is computed
    (``sha256_file``)."""
    files: dict[str, dict] = {}
    for f in spec.files:
        path = paths[f.key]
        entry: dict = {"path": str(path.resolve())}
        if f.sha256 is not None:
            entry["sha256_uncompressed"] = f.sha256
        else:
            try:
                entry["sha256_file"] = _file_sha256(path)
            except OSError:  # pragma: no cover - it was just read
                entry["sha256_file"] = None
        files[path.name] = entry
    folders = sorted({str(paths[f.key].resolve().parent) for f in spec.files})
    record = {"dataset": spec.name, "folder": folders[0] if len(folders) == 1 else folders,
              "files": files}
    _LOADED.append(record)


def loaded_datasets() -> list[dict]:
    """Datasets :func:`load_mnist` has read in this process, in order: name, folder and each
    file's path and SHA-256. :func:`biolearn.runner.execute` puts the ones a run read into the
    provenance of its results.json."""
    import copy

    return copy.deepcopy(_LOADED)


def load_for_run(cfg: Any, ctx: Any, datasets: tuple[str, ...] = ("mnist", "fashion_mnist")
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The images of a run's ``cfg.data`` (dataset, n_train, n_test) from the run's data root
    (``ctx.data_root``: ``--data-root``, else ``data.root``, else ``$BIOLEARN_DATA``; the usual
    search after it). Refuses a dataset the recipe cannot use (``datasets``)."""
    d = cfg.data
    if d.dataset not in datasets:
        raise BiolearnError(f"dataset '{d.dataset}' is not supported by this recipe",
                            "data.dataset", "use " + " or ".join(datasets))
    root = getattr(ctx, "data_root", None) or d.root
    return load_mnist(root, d.dataset, d.n_train, d.n_test, quiet=ctx.quiet)


def load_fashion_mnist(root: str | os.PathLike | None = None, n_train: int | None = None,
                       n_test: int | None = None, download: bool = True, quiet: bool = False, *,
                       mirrors: list[str] | str | None = None
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fashion-MNIST (Xiao et al. 2017); same contract as :func:`load_mnist`."""
    return load_mnist(root, "fashion_mnist", n_train, n_test, download, quiet, mirrors=mirrors)
