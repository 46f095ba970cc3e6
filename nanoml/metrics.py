"""Evaluation metrics, one plain function each."""

import numpy as np


def accuracy(y_true, y_pred):
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))


def mean_squared_error(y_true, y_pred):
    diff = np.asarray(y_true, dtype=np.float64) - np.asarray(y_pred, dtype=np.float64)
    return float(np.mean(diff * diff))


def r2_score(y_true, y_pred):
    """Coefficient of determination; 1 is perfect, 0 is predicting the mean."""
    y_true = np.asarray(y_true, dtype=np.float64)
    total = np.sum((y_true - y_true.mean()) ** 2)
    resid = np.sum((y_true - np.asarray(y_pred, dtype=np.float64)) ** 2)
    if total == 0.0:
        return 1.0 if resid == 0.0 else 0.0
    return float(1.0 - resid / total)


def adjusted_rand_index(labels_a, labels_b):
    """Agreement of two partitions, corrected for chance (1 identical, ~0 random)."""
    _, a = np.unique(np.asarray(labels_a), return_inverse=True)
    _, b = np.unique(np.asarray(labels_b), return_inverse=True)
    table = np.zeros((a.max() + 1, b.max() + 1), dtype=np.int64)
    np.add.at(table, (a, b), 1)

    def pairs(counts):
        counts = counts.astype(np.float64)
        return float(np.sum(counts * (counts - 1) / 2))

    index = pairs(table)
    rows, cols = pairs(table.sum(axis=1)), pairs(table.sum(axis=0))
    n = a.shape[0]
    expected = rows * cols / (n * (n - 1) / 2) if n > 1 else 0.0
    best = (rows + cols) / 2
    if best == expected:
        return 1.0
    return float((index - expected) / (best - expected))
