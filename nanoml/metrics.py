"""Evaluation metrics, one plain function each."""

import numpy as np

from nanoml.errors import InputError


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


def confusion_matrix(y_true, y_pred, labels=None):
    """Counts of (true, predicted) label pairs: row i, column j counts the rows whose true
    label is ``labels[i]`` and whose prediction is ``labels[j]``. `labels` defaults to the
    sorted labels seen in either array; pairs with a label outside `labels` are not counted
    (scikit-learn's convention)."""
    y_true, y_pred = np.asarray(y_true).ravel(), np.asarray(y_pred).ravel()
    _check_lengths(y_true, y_pred, "y_pred")
    labels = np.union1d(y_true, y_pred) if labels is None else np.asarray(labels).ravel()
    rows, cols = _positions(y_true, labels), _positions(y_pred, labels)
    kept = (rows >= 0) & (cols >= 0)
    matrix = np.zeros((labels.size, labels.size), dtype=np.int64)
    np.add.at(matrix, (rows[kept], cols[kept]), 1)
    return matrix


def roc_curve(y_true, y_score, pos_label=None):
    """The receiver operating characteristic of scores that grow with the odds of
    `pos_label` (default: the larger of the two labels): -> (false positive rates, true
    positive rates, thresholds), one point per distinct score from the highest down, after
    a first point (0, 0) at threshold +inf. scikit-learn's ``roc_curve`` with
    ``drop_intermediate=False``."""
    y_true = np.asarray(y_true).ravel()
    score = np.asarray(y_score, dtype=np.float64).ravel()
    _check_lengths(y_true, score, "y_score")
    if not np.all(np.isfinite(score)):
        raise InputError("y_score holds NaN or infinite values; ROC needs finite scores")
    if pos_label is None:
        seen = np.unique(y_true)
        if seen.size > 2:
            raise InputError(
                f"y_true holds {seen.size} labels; ROC needs two, or a pos_label to count "
                "against all others"
            )
        pos_label = seen[-1] if seen.size else None
    order = np.argsort(-score, kind="mergesort")
    score, positive = score[order], y_true[order] == pos_label
    # the last row of each run of equal scores: a threshold admits all of them or none
    last = np.r_[np.flatnonzero(np.diff(score)), score.size - 1]
    true_pos = np.cumsum(positive)[last]
    false_pos = last + 1 - true_pos
    if true_pos.size == 0 or true_pos[-1] == 0 or false_pos[-1] == 0:
        raise InputError(
            f"y_true needs rows of both the positive label ({pos_label!r}) and others for "
            "a ROC curve"
        )
    fpr = np.r_[0.0, false_pos] / false_pos[-1]
    tpr = np.r_[0.0, true_pos] / true_pos[-1]
    return fpr, tpr, np.r_[np.inf, score[last]]


def roc_auc(y_true, y_score, pos_label=None):
    """Area under the ROC curve: the chance that a random positive row scores above a
    random negative one, ties counting half (1 perfect, 0.5 chance)."""
    fpr, tpr, _ = roc_curve(y_true, y_score, pos_label)
    return float(np.trapezoid(tpr, fpr))


def _check_lengths(y_true, other, name):
    if y_true.shape[0] != other.shape[0]:
        raise InputError(
            f"y_true has {y_true.shape[0]} rows but {name} has {other.shape[0]}; they must match"
        )


def _positions(values, labels):
    """Index of each value in `labels` (in any order), -1 where it is not there."""
    if labels.size == 0:
        return np.full(values.shape, -1, dtype=np.int64)
    order = np.argsort(labels, kind="stable")
    ranked = labels[order]
    at = np.minimum(np.searchsorted(ranked, values), labels.size - 1)
    return np.where(ranked[at] == values, order[at], -1)
