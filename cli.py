"""Command-line entry point from a checkout: ``python cli.py run configs/stdp_mnist.yaml``.

The commands live in :mod:`biolearn.cli` (installed as the ``biolearn`` console command).
"""

from biolearn.cli import main

if __name__ == "__main__":  # pragma: no cover
    main()
