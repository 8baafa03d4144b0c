"""Code generation from model definitions, one module per target.

A target is a module with ``NAME`` and ``generate(neurons, synapses, slots) -> str`` (the source of
a kernel module exposing ``run_steps``). :func:`kernel_module` generates the module for a
network's models, writes it to the on-disk cache keyed by a hash of the source and imports it.
Today's target is ``numba_cpu``; a multi-threaded CPU target or a CUDA target (``numba.cuda``)
would be further modules here, fed by the same definitions.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

from biolearn.engine.codegen import numba_cpu

TARGETS = {numba_cpu.NAME: numba_cpu}


def cache_dir() -> Path:
    """Where generated modules (and Numba's compiled code beside them) are kept:
    ``$BIOLEARN_KERNEL_CACHE``, else ``~/.cache/biolearn/kernels``."""
    root = os.environ.get("BIOLEARN_KERNEL_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "biolearn" / "kernels"


_LOADED: dict[str, ModuleType] = {}


def kernel_module(neurons: list, synapses: list, slots: dict[str, int],
                  target: str = "numba_cpu") -> ModuleType:
    """The compiled kernel module for these model IRs (generated, cached, imported once)."""
    gen = TARGETS[target]
    src = gen.generate(neurons, synapses, slots)
    key = hashlib.sha1((target + "\n" + src).encode()).hexdigest()[:20]
    if key in _LOADED:
        return _LOADED[key]
    name = f"biolearn_kernels_{key}"
    d = cache_dir()
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{name}.py"
    if not path.exists() or path.read_text() != src:
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(src)
        os.replace(tmp, path)  # atomic: concurrent processes never import a half-written file
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    _LOADED[key] = mod
    return mod
