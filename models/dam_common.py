"""Dataset access shared by the DAM recipes (MNIST / Fashion-MNIST through :mod:`biolearn.data`)."""

from __future__ import annotations

import numpy as np

from biolearn.errors import BiolearnError


def load_images(cfg, ctx) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train uint8 [S, 28, 28], y_train, x_test, y_test) for ``cfg.data``."""
    try:
        from biolearn.data import load_mnist
    except ImportError:
        from biolearn.data.mnist import load_mnist
    d = cfg.data
    if d.dataset == "none":
        raise BiolearnError("this recipe needs images", "data.dataset",
                            "set data.dataset to mnist or fashion_mnist")
    root = d.root if d.root is not None else getattr(ctx, "data_root", None)
    return load_mnist(root, d.dataset, d.n_train, d.n_test, quiet=ctx.quiet)
