"""Constructors for common connectivity patterns, each returning a :class:`Projection`."""

from __future__ import annotations

from typing import Any

import numpy as np

from biolearn.engine.front import Projection


def dense(name: str, pre: str, post: str, w: np.ndarray, **kw: Any) -> Projection:
    """All-to-all from an [n_pre, n_post] weight matrix (row = presynaptic neuron)."""
    w = np.asarray(w, np.float64)
    n_pre, n_post = w.shape
    i, j = np.divmod(np.arange(n_pre * n_post, dtype=np.int64), n_post)
    return Projection(name, pre, post, i, j, w.ravel(), dense_shape=(n_pre, n_post), **kw)


def one_to_one(name: str, pre: str, post: str, n: int, w: Any, **kw: Any) -> Projection:
    """Neuron k → neuron k."""
    k = np.arange(n, dtype=np.int64)
    return Projection(name, pre, post, k, k, w, **kw)


def all_but_self(name: str, pre: str, post: str, n: int, w: Any, **kw: Any) -> Projection:
    """Neuron k → every neuron except k (Diehl & Cook inhibition, I→E)."""
    i, j = np.divmod(np.arange(n * n, dtype=np.int64), n)
    keep = i != j
    return Projection(name, pre, post, i[keep], j[keep],
                      np.broadcast_to(np.asarray(w, float), (n * n,))[keep]
                      if np.ndim(w) else w, **kw)


def fixed_probability(name: str, pre: str, post: str, n_pre: int, n_post: int, p: float,
                      w: Any, rng: np.random.Generator, allow_self: bool = True,
                      **kw: Any) -> Projection:
    """Each pair connected independently with probability ``p`` (Brette et al. 2007)."""
    i_all, j_all = [], []
    for i in range(n_pre):  # one Bernoulli row per presynaptic neuron: O(n_pre·n_post) draws
        j = np.flatnonzero(rng.random(n_post) < p)
        if not allow_self:
            j = j[j != i]
        i_all.append(np.full(len(j), i, np.int64))
        j_all.append(j)
    i = np.concatenate(i_all) if i_all else np.zeros(0, np.int64)
    j = np.concatenate(j_all) if j_all else np.zeros(0, np.int64)
    return Projection(name, pre, post, i, j, w, **kw)


def fixed_indegree(name: str, pre: str, post: str, n_pre: int, n_post: int, k: int, w: Any,
                   rng: np.random.Generator, **kw: Any) -> Projection:
    """Each postsynaptic neuron receives exactly ``k`` distinct random inputs (scaling sweeps)."""
    j = np.repeat(np.arange(n_post, dtype=np.int64), k)
    i = np.concatenate([rng.choice(n_pre, size=k, replace=False) for _ in range(n_post)])
    return Projection(name, pre, post, i.astype(np.int64), j, w, **kw)
