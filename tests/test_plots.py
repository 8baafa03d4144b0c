"""Figures: the raster of one presentation is drawn on the presentation's own time axis; the tests
during training mark the ends of the passes."""

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


def test_training_tests_marks_the_end_of_every_pass_but_the_last():
    tests = [{"images_trained": n, "test_accuracy": 0.5 + n / 1000, "test_accuracy_vote": 0.5,
              "hidden_allocation": {"neurons_per_class": [n // 100, 3]}}
             for n in (50, 100, 150, 200, 250, 300)]
    fig = plots.training_tests(tests, pass_length=100)
    acc, alloc = fig.axes[:2]

    def vertical(ax):
        return sorted(line.get_xdata()[0] for line in ax.lines
                      if len(set(line.get_xdata())) == 1 and line.get_linestyle() == ":")

    assert vertical(acc) == vertical(alloc) == [100, 200]  # not 300: the run's end
    curves = {line.get_label(): line for line in acc.lines}
    np.testing.assert_allclose(curves["class neurons"].get_ydata(),
                               [55, 60, 65, 70, 75, 80])
    assert "end of a pass" in [t.get_text() for t in acc.get_legend().get_texts()]
    assert vertical(plots.training_tests(tests).axes[0]) == []
    assert "fire in the test" not in [line.get_label() for line in alloc.lines]


def test_training_tests_draws_the_hidden_neurons_that_fire_in_the_test():
    """One line per test size: the final test on more images is not joined to the others."""
    tests = [{"images_trained": n, "test_accuracy": 0.5, "test_accuracy_vote": 0.5,
              "n_test_images": size,
              "hidden_allocation": {"neurons_per_class": [7, 3],
                                    "silent_per_class": [s, 1]}}
             for n, s, size in ((10, 6, 20), (20, 4, 20), (30, 0, 20), (30, 0, 100))]
    tests.insert(0, {"images_trained": 5, "test_accuracy": 0.5,
                     "hidden_allocation": {"neurons_per_class": [7, 3]}})  # older record
    fig = plots.training_tests(tests)
    (right,) = [ax for ax in fig.axes if ax.get_ylabel() == "hidden neurons that fire"]
    lines = {line.get_label(): line for line in right.lines}
    assert set(lines) == {"fire in the test (20 images)", "fire in the test (100 images)"}
    np.testing.assert_allclose(lines["fire in the test (20 images)"].get_xdata(), [10, 20, 30])
    np.testing.assert_allclose(lines["fire in the test (20 images)"].get_ydata(), [3, 5, 9])
    np.testing.assert_allclose(lines["fire in the test (100 images)"].get_ydata(), [9])
    assert not any("fire" in line.get_label() for line in fig.axes[1].lines)
    acc = {line.get_label(): line for line in fig.axes[0].lines}
    assert set(acc) == {f"{name} ({size} images)" for name in ("class neurons", "hidden vote")
                        for size in (20, 100)} | {"class neurons"}
    np.testing.assert_allclose(acc["class neurons (20 images)"].get_xdata(), [10, 20, 30])
    np.testing.assert_allclose(acc["hidden vote (100 images)"].get_xdata(), [30])
    np.testing.assert_allclose(acc["class neurons"].get_xdata(), [5])  # the older record


def test_training_tests_draws_the_spread_of_theta_where_recorded():
    def test(n, lo):  # percentiles in another order than drawn
        return {"images_trained": n, "test_accuracy": 0.5,
                "hidden_theta": {"percentiles": [50, 5, 95, 25, 75],
                                 "theta_mv": [lo + 2, lo, lo + 4, lo + 1, lo + 3]}}

    odd = {"images_trained": 40, "test_accuracy": 0.5,
           "hidden_theta": {"percentiles": [10, 90], "theta_mv": [0.0, 1.0]}}
    fig = plots.training_tests([test(10, 20.0), test(20, 22.0), odd])
    assert len(fig.axes) == 3  # accuracy, allocation, θ
    panel = fig.axes[2]
    median = {line.get_label(): line for line in panel.lines}["median"]
    np.testing.assert_allclose(median.get_xdata(), [10, 20])  # the record without them left out
    np.testing.assert_allclose(median.get_ydata(), [22.0, 24.0])
    bands = {c.get_label(): c.get_paths()[0].vertices[:, 1] for c in panel.collections}
    np.testing.assert_allclose(sorted(set(bands["5–95 %"])), [20.0, 22.0, 24.0, 26.0])
    np.testing.assert_allclose(sorted(set(bands["25–75 %"])), [21.0, 23.0, 25.0])
    assert panel.get_xlabel() == "training images seen" and fig.axes[1].get_xlabel() == ""
    assert len(plots.training_tests([{"images_trained": 5, "test_accuracy": 0.5}]).axes) == 2
