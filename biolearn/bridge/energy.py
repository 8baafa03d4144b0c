"""Energy proxies per image: synaptic events for spiking networks, MACs for analogue networks.

An SNN pays per delivered spike: one synaptic operation (an accumulate) per spike and per
outgoing synapse, ``Σ_neurons spikes × fan-out`` (Merolla et al. 2014, Science 345:668, "synaptic
events"; the SynOps count of Rueckauer et al. 2017, Front Neurosci 11:682, section 2.4). A dense
ANN pays one multiply-accumulate per weight per forward pass, ``Σ_layers n_in × n_out``. The two
are counts, not joules: an accumulate is cheaper than a MAC on most hardware (Horowitz 2014, ISSCC:
32-bit float add 0.9 pJ vs multiply 3.7 pJ at 45 nm).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def mlp_macs(sizes: Sequence[int]) -> int:
    """Multiply-accumulates of one forward pass of a dense MLP with layer sizes ``sizes``."""
    return int(sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True)))


def feedforward_events(spikes_per_layer: Sequence[float], fan_out: Sequence[int]) -> float:
    """Synaptic events of a dense feed-forward SNN: Σ_l (spikes of layer l) × (its fan-out)."""
    return float(sum(s * f for s, f in zip(spikes_per_layer, fan_out, strict=True)))


def fan_out(net: Any) -> dict[str, np.ndarray]:
    """Outgoing synapses per neuron, per population, summed over the projections of ``net``."""
    sizes = {p.name: p.n for p in net.populations}
    out = {name: np.zeros(n, np.int64) for name, n in sizes.items()}
    for q in net.projections:
        out[q.pre] += np.bincount(q.i, minlength=sizes[q.pre])
    return out


def network_events(counts: dict[str, np.ndarray], fanout: dict[str, np.ndarray]) -> float:
    """Synaptic events of spike counts ``{population: per-neuron counts}`` given the fan-out."""
    return float(sum(np.dot(np.asarray(c, np.float64), fanout[name])
                     for name, c in counts.items() if name in fanout))
