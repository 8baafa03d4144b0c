"""Where the tests find the full MNIST copy: the package's own lookup
(:func:`biolearn.data.mnist.find_dataset`: ``$BIOLEARN_DATA``, then ``~/.cache/biolearn``), never
a download; tests that need it are skipped with a reason otherwise."""

from __future__ import annotations

import pytest

from biolearn.data.mnist import find_dataset


def mnist_root() -> str | None:
    """The folder holding the four MNIST IDX files, or ``None``."""
    paths, _, _ = find_dataset("mnist")
    return None if paths is None else str(paths["train_images"].parent)


needs_mnist = pytest.mark.skipif(mnist_root() is None,
                                 reason="full MNIST copy not found (set BIOLEARN_DATA)")
