"""Label read-outs of a hidden layer (Diehl & Cook 2015 neuron labelling and vote)."""

from __future__ import annotations

import numpy as np

from biolearn.analysis import readout


def test_assign_vote_and_allocation_on_a_hand_made_layer():
    # 4 neurons; neurons 0 and 1 answer class 0, neuron 2 class 1, neuron 3 class 2.
    counts = np.array([[3, 2, 0, 0],   # class 0
                       [4, 1, 0, 1],   # class 0
                       [0, 0, 5, 0],   # class 1
                       [1, 0, 0, 2],   # class 2
                       [0, 0, 0, 0]])  # class 2, silent
    labels = np.array([0, 0, 1, 2, 2])
    a = readout.assign_labels(counts, labels, n_classes=3)
    np.testing.assert_array_equal(a, [0, 0, 1, 2])
    np.testing.assert_array_equal(readout.vote(counts, a, n_classes=3), [0, 0, 1, 2, -1])
    alloc = readout.class_allocation(counts, labels, a, n_classes=4)
    assert alloc["neurons_per_class"] == [2, 1, 1, 0]
    assert alloc["silent_per_class"] == [0, 0, 0, 0]
    # a neuron that never fires, labelled as assign_labels labels it (class 0), is counted
    silent = np.hstack([counts, np.zeros((5, 1), int)])
    a = readout.assign_labels(silent, labels, n_classes=3)
    np.testing.assert_array_equal(a, [0, 0, 1, 2, 0])
    alloc = readout.class_allocation(silent, labels, a, n_classes=4)
    assert alloc["neurons_per_class"] == [3, 1, 1, 0]
    assert alloc["silent_per_class"] == [1, 0, 0, 0]
    assert alloc["hidden_spikes_per_image"] == [5.5, 5.0, 1.5, None]


def test_the_in_sample_vote_reads_structure_into_noise():
    # Spike counts that carry no information about the labels: labels taken from a disjoint set
    # of images give chance, labels taken from the scored images themselves do not.
    rng = np.random.default_rng(0)
    counts = rng.poisson(2.0, size=(400, 2000))
    labels = rng.integers(0, 10, size=400)
    own = np.mean(readout.vote_in_sample(counts[:200], labels[:200]) == labels[:200])
    held_out = readout.assign_labels(counts[200:], labels[200:])
    fair = np.mean(readout.vote(counts[:200], held_out) == labels[:200])
    assert abs(fair - 0.1) < 0.07
    assert own > 0.9


def test_the_in_sample_vote_leaves_silent_neurons_out_and_calls_a_silent_image_0():
    # Hao et al.'s get_new_assignments labels only neurons that fired; get_recognized_number
    # takes the first of equal class means. Neurons: 0 answers class 0, 1 class 1, 2 class 3
    # (mean 6 on 3s against 1 on 0s), 3 never fires.
    counts = np.array([[4, 0, 0, 0],   # a 0
                       [3, 0, 2, 0],   # a 0 that neuron 2 answers too
                       [0, 3, 0, 0],   # a 1
                       [0, 0, 6, 0],   # a 3
                       [0, 0, 0, 0]])  # a 2, silent
    labels = np.array([0, 0, 1, 3, 2])
    np.testing.assert_array_equal(readout.vote_in_sample(counts, labels, n_classes=4),
                                  [0, 0, 1, 3, 0])
    # labelled as the argmax of its zeros, the silent neuron joins class 0 and halves its mean:
    # image 1 becomes a 3 (1.5 against 2)
    labelled = readout.vote(counts, readout.assign_labels(counts, labels, n_classes=4),
                            n_classes=4)
    np.testing.assert_array_equal(labelled, [0, 3, 1, 3, -1])
