"""``compare``: sym-STDP, Diehl & Cook, a backprop MLP and a surrogate-gradient SNN on one task.

The recipe behind ``biolearn compare CONFIG`` (also runnable with ``biolearn run``). Everything is
in :mod:`biolearn.bridge.compare`; the params are :class:`biolearn.bridge.compare.CompareParams`.
"""

from __future__ import annotations

from biolearn.bridge.compare import CompareParams, run_compare
from biolearn.registry import register


@register("compare", CompareParams,
          "side by side: STDP recipes vs backprop MLP vs surrogate-gradient SNN (accuracy, time, "
          "synaptic events / MACs)")
def run(cfg, ctx) -> dict:
    return run_compare(cfg, ctx)
