"""Figures: the raster of one presentation is drawn on the presentation's own time axis."""

from __future__ import annotations

import numpy as np
import pytest

from biolearn.analysis import plots


def test_raster_time_axis_starts_at_the_presentation_and_shows_every_class():
    t0 = 2.1e7  # a test presentation late in a run: absolute times are huge
    spikes = {"exc": (t0 + np.array([1.0, 40.0, 349.5]), np.array([3, 0, 99])),
              "class": (t0 + np.array([12.0, 200.0]), np.array([2, 7])),
              "inh": (np.zeros(0), np.zeros(0, np.int64))}
    fig = plots.raster(spikes, "test presentation 0", t0=t0,
                       sizes={"exc": 100, "class": 10, "inh": 100}, duration=350.0)
    axes = {ax.get_ylabel(): ax for ax in fig.axes}
    assert set(axes) == {"exc", "class", "inh"}  # a silent population keeps its panel
    assert axes["class"].get_xlim() == pytest.approx((0.0, 350.0))
    x = np.concatenate([line.get_xdata() for ax in fig.axes for line in ax.lines])
    np.testing.assert_allclose(np.sort(x), [1.0, 12.0, 40.0, 200.0, 349.5])
    assert axes["class"].get_ylim() == pytest.approx((-0.5, 9.5))
    assert list(axes["class"].get_yticks()) == list(range(10))  # all ten classes labelled
    assert axes["exc"].get_ylim() == pytest.approx((-0.5, 99.5))
    assert "start of the presentation" in fig.axes[-1].get_xlabel()


def test_raster_without_offset_keeps_times():
    fig = plots.raster({"out": (np.array([5.0, 900.0]), np.array([0, 1]))}, "spikes")
    np.testing.assert_allclose(fig.axes[0].lines[0].get_xdata(), [5.0, 900.0])
    assert fig.axes[0].get_xlabel() == "time (ms)"
