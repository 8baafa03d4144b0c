"""Where the tests find full MNIST and Fashion-MNIST copies: the package's own lookup
(:func:`biolearn.data.mnist.find_dataset`: ``$BIOLEARN_DATA``, ``~/.cache/biolearn``, then Debian's
dataset packages), never a download; tests that need one are skipped with a reason otherwise."""

from __future__ import annotations

import pytest

from biolearn.data.mnist import find_dataset


def mnist_root(dataset: str = "mnist") -> str | None:
    """The folder holding the four IDX files of ``dataset``, or ``None``. Inside a test it does
    not see Debian's dataset folder (conftest hides it), so Debian-only copies are looked up at
    import, as ``FASHION_MNIST_ROOT`` is."""
    paths, _, _ = find_dataset(dataset)
    return None if paths is None else str(paths["train_images"].parent)


needs_mnist = pytest.mark.skipif(mnist_root() is None,
                                 reason="full MNIST copy not found (set BIOLEARN_DATA)")
#: looked up at import, before the tests' fixture hides Debian's dataset folder
FASHION_MNIST_ROOT = mnist_root("fashion_mnist")
needs_fashion_mnist = pytest.mark.skipif(
    FASHION_MNIST_ROOT is None,
    reason="Fashion-MNIST not found (set BIOLEARN_DATA, or apt-get install dataset-fashion-mnist)")
