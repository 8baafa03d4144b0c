"""COBA benchmark (Brette et al. 2007, benchmark 1): biolearn vs Brian2 (Cython runtime and C++
standalone) on the same 4000-neuron network, 1 s at dt 0.1 ms.

Run: ``biolearn bench coba --json`` or ``python -m biolearn.benchmarks.coba``; the last printed
line is the JSON result (timings in s: biolearn cold = first call in a process with an empty Numba
cache, warm = a second process reusing it; Brian2 C++ build time apart from run time).
"""

from __future__ import annotations

from biolearn.benchmarks._common import brette_bench, main_print
from biolearn.registry import register_bench


@register_bench("coba", "Brette et al. 2007 COBA, 4000 LIF, 1 s: biolearn vs Brian2 cython/cpp")
def run(quiet: bool = False, threads: int = 1) -> dict:
    """COBA network side by side with Brian2 (runtime Cython and cpp_standalone)."""
    return brette_bench("coba", quiet=quiet, threads=threads)


if __name__ == "__main__":
    main_print(run())
