"""Side-by-side timing against peer simulators, run as ``biolearn bench NAME``.

Installed as ``biolearn.benchmarks``. Each module registers with :func:`register_bench`.
"""
