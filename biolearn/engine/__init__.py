"""Event-driven spiking engine: declarative front, flat-array compilation, Numba kernels.

Example::

    from biolearn.engine import Network, LIF, PoissonSource, connect
    net = Network(dt=0.1)
    net.add(PoissonSource("in", 100, rates=20.0))
    net.add(LIF("out", 10, synapse="current"))
    net.connect(connect.dense("w", "in", "out", np.full((100, 10), 0.5)))
    sim = net.compile(seed=1)
    out = sim.run(1000.0)          # ms

Any neuron model or plasticity rule is a definition in Brian2's equation syntax
(:class:`NeuronModel`, :class:`SynapseModel`, used through :class:`Neurons` and
``Projection(rule=...)``); the kernels are generated from the definitions (docs/models.md).
"""

from biolearn.engine import connect
from biolearn.engine.definitions import NeuronModel, SynapseModel
from biolearn.engine.front import (
    LIF,
    Network,
    Neurons,
    PoissonSource,
    Projection,
    SpikeMonitor,
    SpikeSource,
    StateMonitor,
)
from biolearn.engine.simulation import Simulation, default_threads, set_default_threads

__all__ = ["LIF", "Network", "NeuronModel", "Neurons", "PoissonSource", "Projection", "Simulation",
           "SpikeMonitor", "SpikeSource", "StateMonitor", "SynapseModel", "connect",
           "default_threads", "set_default_threads"]
