"""Event-driven spiking engine: declarative front, flat-array compilation, Numba kernels.

Example::

    from biolearn.engine import Network, LIF, PoissonSource, connect
    net = Network(dt=0.1)
    net.add(PoissonSource("in", 100, rates=20.0))
    net.add(LIF("out", 10, synapse="current"))
    net.connect(connect.dense("w", "in", "out", np.full((100, 10), 0.5)))
    sim = net.compile(seed=1)
    out = sim.run(1000.0)          # ms
"""

from biolearn.engine import connect
from biolearn.engine.front import (
    LIF,
    Network,
    PoissonSource,
    Projection,
    SpikeMonitor,
    SpikeSource,
    StateMonitor,
)
from biolearn.engine.simulation import Simulation

__all__ = ["LIF", "Network", "PoissonSource", "Projection", "Simulation", "SpikeMonitor",
           "SpikeSource", "StateMonitor", "connect"]
