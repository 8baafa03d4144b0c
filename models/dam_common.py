"""Dataset access shared by the DAM recipes (MNIST / Fashion-MNIST through :mod:`biolearn.data`)."""

from __future__ import annotations

import numpy as np


def load_images(cfg, ctx) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train uint8 [S, 28, 28], y_train, x_test, y_test) for ``cfg.data``."""
    from biolearn.data import load_for_run

    return load_for_run(cfg, ctx)
