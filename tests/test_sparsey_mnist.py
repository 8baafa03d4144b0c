"""Sparsey MNIST recipe: preprocessing against hand-made cases, and a small end-to-end run."""

from __future__ import annotations

import numpy as np
import pytest
from mnist_data import mnist_root, needs_mnist

from biolearn.models.sparsey_mnist import preprocess, select_per_class


def test_thinning_gives_one_pixel_strokes():
    img = np.zeros((1, 28, 28), dtype=np.uint8)
    img[0, 5:23, 11:16] = 255            # a 5-pixel-wide vertical bar
    sk = preprocess(img, deskew=False, skeleton=True, dilate=0)[0]
    rows = sk[8:20]
    assert np.all(rows.sum(axis=1) == 1)  # one pixel per row in the middle of the bar
    assert np.all(np.nonzero(rows)[1] == 13)
    thick = preprocess(img, deskew=False, skeleton=True, dilate=1)[0]
    assert np.all(thick[8:20].sum(axis=1) == 3)


def test_deskew_straightens_a_slanted_stroke():
    img = np.zeros((1, 28, 28), dtype=np.uint8)
    for y in range(6, 22):                # slope 0.5 px per row
        x = int(round(8 + 0.5 * (y - 6)))
        img[0, y, x:x + 3] = 255
    out = preprocess(img, deskew=True, skeleton=False, dilate=0)[0]
    cols = [np.nonzero(out[y])[0].mean() for y in range(9, 19) if out[y].any()]
    assert np.ptp(cols) <= 1.0            # was 5 pixels of drift before deskewing
    assert 11 <= np.mean(cols) <= 16      # and centred


def test_select_per_class():
    y = np.array([0, 1, 0, 2, 1, 2, 0])
    assert list(select_per_class(y, 2, 3)) == [0, 1, 2, 3, 4, 5]


@pytest.mark.slow
@needs_mnist
def test_small_run_beats_chance_by_far(tmp_path):
    from biolearn.config import DataConfig, RunConfig
    from biolearn.models import sparsey_mnist
    from biolearn.runner import RunContext

    cfg = RunConfig(model="sparsey_mnist", data=DataConfig(root=mnist_root(), n_test=300),
                    params=sparsey_mnist.SparseyMnistParams(per_class=30))
    ctx = RunContext(out_dir=tmp_path, seed=0, quiet=True)
    m = sparsey_mnist.run(cfg, ctx)
    assert m["n_train"] == 300 and m["n_test"] == 300
    assert m["test_accuracy"] > 0.6        # chance is 0.1
    assert (tmp_path / "sparsey_mnist.png").exists()
