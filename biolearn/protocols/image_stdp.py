"""The image-presentation STDP protocol (Diehl & Cook 2015; Hao et al. 2020): its pieces.

Population names, the ``presentation`` and ``output`` config sections, the network pieces the
recipes share (conductance LIF from a params section, E⇄I lateral inhibition) and
:class:`Presenter`: a 350 ms image as Poisson input, an exact reset instead of the 150 ms rest
unless ``t_rest_ms`` > 0, and "fewer than 5 spikes → raise the intensity and present again".
The recipes (``biolearn.models.sym_stdp``, ``biolearn.models.diehl_cook``) choose populations,
rules and constants; :func:`biolearn.protocols.trainer.run_protocol` runs the whole experiment.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from biolearn.config import param
from biolearn.engine import LIF, Network, SpikeMonitor, connect

#: Population names: Poisson pixel inputs, hidden excitatory and inhibitory layers, class neurons.
INPUT, EXC, INH, CLS = "input", "exc", "inh", "class"


@dataclass
class Presentation:
    """Image presentation protocol (Diehl & Cook 2015; Hao et al. 2020, their code)."""

    dt: float = param(0.5, "time step (ms)", min=0.01, max=1.0)
    t_present_ms: float = param(350.0, "image presentation (ms)", min=1.0)
    t_rest_ms: float = param(150.0, "silent rest between presentations (ms), as in the papers",
                             min=0.0)
    rest: str = param("reset", "how the rest is run. reset: exact rest state (v, conductances, "
                      "traces), θ decays over t_rest_ms; fastest. relax: the neurons are "
                      "simulated through the rest (v relaxes only partly), then the STDP traces "
                      "are cleared. simulate: everything is simulated (the papers' protocol, "
                      "slowest). docs/sym_stdp.md compares them",
                      choices=["reset", "relax", "simulate"])
    min_spikes: int = param(5, "present again with higher intensity if the hidden layer fired "
                            "fewer spikes than this", min=0)
    intensity0: float = param(2.0, "initial input intensity: rate = pixel/8 × intensity Hz "
                              "(2 ⇒ pixel/4, max 63.75 Hz)", min=0.0)
    intensity_step: float = param(1.0, "intensity increment on a re-presentation", min=0.0)
    max_intensity: float = param(32.0, "give up raising the intensity here", min=0.0)
    pixel_mean: float | None = param(None, "scale every image to this mean pixel first (rounded, "
                                     "saturating at 255); Hao et al. use 30 for Fashion-MNIST "
                                     "and raw pixels for MNIST (None)", min=1.0, max=255.0)
    order: str = param("shuffle", "training image order. shuffle: a new random order every pass; "
                       "file: the files' order every pass, as in Hao et al.'s code (train.cc); "
                       "on the sym-STDP headline it costs 1.1 ± 0.8 points (docs/sym_stdp.md)",
                       choices=["shuffle", "file"])

    def images(self, x: np.ndarray) -> np.ndarray:
        """The images as presented: scaled to ``pixel_mean`` when it is set."""
        from biolearn.data import scale_to_mean

        return x if self.pixel_mean is None else scale_to_mean(x, self.pixel_mean)


@dataclass
class Output:
    """What a run leaves on disk besides results.json."""

    spikes_test_images: int = param(100, "test presentations written to spikes.h5", min=0)
    spike_populations: list | None = param(None, "populations in spikes.h5 (None = all)")
    checkpoint_every: int = param(5000, "training images between checkpoints (--resume)", min=1)
    curve_every: int = param(2000, "training images per point of the running-accuracy curve",
                             min=10)
    figures: bool = param(True, "write PNG figures")
    test_workers: int = param(2, "processes sharing the test phase (results do not depend on it)",
                              min=1)
    test_every_epoch: bool = param(False, "also test after every pass but the last (frozen "
                                   "copy; training is unchanged); adds epoch_tests to the metrics")
    test_every: int | None = param(None, "also test every this many training images (frozen "
                                   "copy; Hao et al.'s code tests every 10 000); adds to "
                                   "epoch_tests and redraws training_tests.png", min=1)
    epoch_test_images: int | None = param(None, "test images for those tests (None = all)",
                                          min=1)


def lif(name: str, n: int, p: Any, **extra: Any) -> LIF:
    """A conductance LIF population from a params dataclass with the usual field names."""
    keys = ("tau_m", "v_rest", "v_reset", "v_thresh", "t_ref", "tau_e", "tau_i", "e_e", "e_i")
    kw = {k: getattr(p, k) for k in keys if hasattr(p, k)}
    kw.update(extra)
    return LIF(name, n, synapse="conductance", **kw)


def add_input_and_inhibition(net: Network, n_exc: int, w_ei: float, w_ie: float) -> None:
    """E→I one-to-one and I→E to all excitatory neurons but the partner (Diehl & Cook 2015)."""
    net.connect(connect.one_to_one("exc_inh", EXC, INH, n_exc, w_ei, target="e"))
    net.connect(connect.all_but_self("inh_exc", INH, EXC, n_exc, w_ie, target="i"))


def monitor_all(net: Network) -> None:
    """Record the spikes of every population."""
    net.monitor(SpikeMonitor([p.name for p in net.populations]))


class Presenter:
    """Shows images to a compiled network with the :class:`Presentation` protocol and counts the
    presentations (re-presentations included)."""

    def __init__(self, sim: Any, pres: Presentation, hidden: str = EXC):
        self.sim, self.pres, self.hidden = sim, pres, hidden
        self.n_present = int(round(pres.t_present_ms / pres.dt))
        self.n_rest = int(round(pres.t_rest_ms / pres.dt))
        self.sim.set_recording(None, False)
        self.presentations = 0  # including re-presentations

    def present(self, image: np.ndarray, before: Callable[[], None] | None = None
                ) -> tuple[dict, dict]:
        """Show one image; repeat with higher intensity while the hidden layer is too quiet.

        ``before()`` runs after the rest, before the input starts (scaling, teacher). Returns the
        record of the accepted presentation (:meth:`biolearn.engine.Simulation.run`'s, with its
        start ``t0`` in ms) and the spike counts of every population in it."""
        sim, p = self.sim, self.pres
        intensity = p.intensity0
        hid = sim.slice(self.hidden)
        pixels = image.reshape(-1).astype(np.float64)
        while True:
            if p.rest == "reset":
                sim.reset_state()
                sim.decay_theta(self.n_rest)
            else:  # inputs and teachers silent, as in the papers
                sim.silence()
                sim.run(steps=self.n_rest)
                if p.rest == "relax":
                    sim.clear_traces()
            if before is not None:
                before()
            sim.reset_counts()
            sim.set_rates(INPUT, pixels * (intensity / 8.0))
            t0 = sim.t * sim.dt
            rec = sim.run(steps=self.n_present)
            rec["t0"] = t0
            self.presentations += 1
            n_hid = int(sim.counts[hid].sum())
            if n_hid >= p.min_spikes or intensity >= p.max_intensity:
                return rec, {name: sim.spike_counts(name) for name in sim.pop_index}
            intensity += p.intensity_step
