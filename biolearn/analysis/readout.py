"""Classification read-outs of spiking activity and their metrics.

Neuron-label assignment (Diehl & Cook 2015): each neuron takes the class for which its mean
response over labelled presentations is highest; a presentation is classified as the class whose
assigned neurons fire most on average.
"""

from __future__ import annotations

import numpy as np


def assign_labels(counts: np.ndarray, labels: np.ndarray, n_classes: int = 10) -> np.ndarray:
    """counts [n_samples, n_neurons] → the class each neuron responds to most (Diehl & Cook)."""
    counts = np.asarray(counts, np.float64)
    labels = np.asarray(labels)
    rates = np.zeros((n_classes, counts.shape[1]))
    for c in range(n_classes):
        m = labels == c
        if m.any():
            rates[c] = counts[m].mean(axis=0)
    return rates.argmax(axis=0)


def class_allocation(counts: np.ndarray, labels: np.ndarray, assignments: np.ndarray,
                     n_classes: int = 10) -> dict:
    """How the hidden layer shares itself among the classes: neurons assigned to each class, and
    the mean hidden spike count per image of each true class. A layer that gives most neurons to
    one class (e.g. the high-ink digits 0 and 8) shows up here before it shows in the accuracy.

    :func:`assign_labels` calls a neuron that was silent while it was labelled a 0, so
    ``silent_per_class`` counts the neurons of each class with no spike in ``counts`` at all."""
    counts = np.asarray(counts, np.float64)
    labels = np.asarray(labels)
    assignments = np.asarray(assignments, np.int64)
    per_image = counts.sum(axis=1)
    silent = counts.sum(axis=0) == 0
    return {
        "neurons_per_class": np.bincount(assignments, minlength=n_classes)[:n_classes].tolist(),
        "silent_per_class": np.bincount(assignments[silent],
                                        minlength=n_classes)[:n_classes].tolist(),
        "hidden_spikes_per_image": [float(per_image[labels == c].mean()) if (labels == c).any()
                                    else None for c in range(n_classes)],
    }


def _class_means(counts: np.ndarray, assignments: np.ndarray, n_classes: int,
                 empty: float) -> np.ndarray:
    """[image, class] mean count of the neurons assigned to each class (``empty`` for none)."""
    scores = np.full((counts.shape[0], n_classes), empty)
    for c in range(n_classes):
        m = assignments == c
        if m.any():
            scores[:, c] = counts[:, m].mean(axis=1)
    return scores


def vote(counts: np.ndarray, assignments: np.ndarray, n_classes: int = 10) -> np.ndarray:
    """Predict the class whose assigned neurons have the highest mean count (−1 if all silent)."""
    counts = np.asarray(counts, np.float64)
    pred = _class_means(counts, assignments, n_classes, -1.0).argmax(axis=1)
    pred[counts.sum(axis=1) == 0] = -1
    return pred


def vote_in_sample(counts: np.ndarray, labels: np.ndarray, n_classes: int = 10) -> np.ndarray:
    """The vote with each neuron labelled from the very responses it is scored on.

    Optimistic (the labels see the test set), so not a test accuracy: it is the read-out Hao et
    al.'s code printed before June 2019 (``train.cc``, ``assignmentsTestDataSet``;
    ``evaluation.cc``, ``get_new_assignments`` and ``get_recognized_number``), kept to compare
    with numbers read that way. As there, a neuron that never fires gets no label and no vote,
    and an image with no hidden spike is called class 0 (the first of equal scores)."""
    counts = np.asarray(counts, np.float64)
    assignments = assign_labels(counts, labels, n_classes)
    assignments[counts.sum(axis=0) == 0] = -1
    return _class_means(counts, assignments, n_classes, 0.0).argmax(axis=1)


def argmax_or_silent(counts: np.ndarray) -> np.ndarray:
    """Class-neuron read-out: the most active output neuron, −1 when none fired."""
    counts = np.asarray(counts)
    pred = counts.argmax(axis=1)
    pred[counts.sum(axis=1) == 0] = -1
    return pred


def argmax_first(counts: np.ndarray) -> np.ndarray:
    """Class-neuron read-out of Hao et al.'s code (``evaluation.cc``,
    ``cla_get_recognized_number``): the first most active neuron, so an image with no class spike
    is called class 0."""
    return np.asarray(counts).argmax(axis=1)


def confusion(pred: np.ndarray, labels: np.ndarray, n_classes: int = 10) -> np.ndarray:
    """[true, predicted] counts; silent predictions (−1) count as errors and are left out."""
    cm = np.zeros((n_classes, n_classes), np.int64)
    ok = pred >= 0
    np.add.at(cm, (np.asarray(labels)[ok], np.asarray(pred)[ok]), 1)
    return cm


def classification_metrics(pred: np.ndarray, labels: np.ndarray, n_classes: int = 10) -> dict:
    """Accuracy, per-class accuracy, confusion matrix and the fraction of silent presentations."""
    labels = np.asarray(labels)
    pred = np.asarray(pred)
    per_class = [float(np.mean(pred[labels == c] == c)) if np.any(labels == c) else None
                 for c in range(n_classes)]
    return {
        "accuracy": float(np.mean(pred == labels)),
        "per_class_accuracy": per_class,
        "confusion_matrix": confusion(pred, labels, n_classes).tolist(),
        "silent_fraction": float(np.mean(pred < 0)),
    }
