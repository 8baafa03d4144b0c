"""Numba kernels that do not depend on any model: synaptic scaling of weight columns, and the
float32 threshold decay of a rest that the exact reset replaces.

The event loop and the neuron and plasticity updates are generated from the model definitions
(:mod:`biolearn.engine.codegen`).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def normalize_columns(syn_w, col_ptr, c0, n_post, csc_syn, target):
    """Synaptic scaling: rescale each postsynaptic neuron's incoming weights to sum ``target``.

    ``target`` is a scalar array of length 1 or one value per neuron (Diehl & Cook 2015, Hao et al.
    2020: w_ij ← w_ij · target / Σ_i w_ij). Neurons whose weights sum to 0 are left unchanged.
    """
    for j in range(n_post):
        c = c0 + j
        tot = 0.0
        for k in range(col_ptr[c], col_ptr[c + 1]):
            tot += syn_w[csc_syn[k]]
        if tot > 0.0:
            f = (target[j] if target.shape[0] > 1 else target[0]) / tot
            for k in range(col_ptr[c], col_ptr[c + 1]):
                syn_w[csc_syn[k]] *= f


@njit(cache=True)
def normalize_dense(w, n_post, target):
    """:func:`normalize_columns` for a dense projection stored row-major ([n_pre, n_post] flat):
    two contiguous passes instead of strided column walks."""
    n_pre = w.shape[0] // n_post
    tot = np.zeros(n_post)
    for i in range(n_pre):
        row = w[i * n_post:(i + 1) * n_post]
        for j in range(n_post):
            tot[j] += row[j]
    f = np.ones(n_post)
    for j in range(n_post):
        if tot[j] > 0.0:
            f[j] = (target[j] if target.shape[0] > 1 else target[0]) / tot[j]
    for i in range(n_pre):
        row = w[i * n_post:(i + 1) * n_post]
        for j in range(n_post):
            row[j] *= f[j]


@njit(cache=True)
def decay_float32(x, rate, steps):
    """``steps`` Euler steps ``x ← float32(x − rate·x)`` in place (the ``hao_f32`` threshold of
    :func:`biolearn.engine.neurons.lif_model`, in the generated kernel's order). A neuron stops
    at a fixed point, where the step is below half of x's float32 spacing."""
    for i in range(x.shape[0]):
        v = x[i]
        for _ in range(steps):
            nv = float(np.float32(v - rate * v))
            if nv == v:
                break
            v = nv
        x[i] = v
