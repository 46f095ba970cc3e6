"""The classification metrics behind the run folders' figures, against scikit-learn."""

import numpy as np
import pytest

from nanoml import metrics
from nanoml.errors import InputError

sk_metrics = pytest.importorskip(
    "sklearn.metrics", reason="scikit-learn is the reference (pip install -e '.[test]')"
)


@pytest.mark.parametrize("kind", ["int", "str"])
def test_confusion_matrix_matches_scikit_learn(kind):
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 4, 300)
    y_pred = np.where(rng.random(300) < 0.7, y_true, rng.integers(0, 5, 300))  # 4: unseen in y
    if kind == "str":
        names = np.array(["cat", "dog", "ant", "eel", "bee"])
        y_true, y_pred = names[y_true], names[y_pred]
    np.testing.assert_array_equal(
        metrics.confusion_matrix(y_true, y_pred), sk_metrics.confusion_matrix(y_true, y_pred)
    )
    order = np.unique(y_true)[::-1][:3]  # a subset of the labels, in a chosen order
    np.testing.assert_array_equal(
        metrics.confusion_matrix(y_true, y_pred, labels=order),
        sk_metrics.confusion_matrix(y_true, y_pred, labels=order),
    )


@pytest.mark.parametrize("ties", [False, True])
def test_roc_curve_and_auc_match_scikit_learn(ties):
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 400)
    score = y + rng.normal(0, 1.0, 400)
    if ties:
        score = np.round(score, 1)  # many equal scores: each is one point of the curve
    ours = metrics.roc_curve(y, score)
    theirs = sk_metrics.roc_curve(y, score, drop_intermediate=False)
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b)
    assert metrics.roc_auc(y, score) == pytest.approx(sk_metrics.roc_auc_score(y, score))


def test_roc_takes_a_positive_label_among_others():
    rng = np.random.default_rng(2)
    y = rng.choice(np.array(["no", "yes", "maybe"]), 200)
    score = (y == "yes") + rng.normal(0, 0.8, 200)
    expected = sk_metrics.roc_auc_score(y == "yes", score)
    assert metrics.roc_auc(y, score, pos_label="yes") == pytest.approx(expected)
    assert metrics.roc_auc(y == "yes", -score) == pytest.approx(1 - expected)


@pytest.mark.parametrize(
    "y, score, fragment",
    [
        ([0, 0, 0], [0.1, 0.2, 0.3], "both"),
        ([0, 1, 2], [0.1, 0.2, 0.3], "three|3 labels"),
        ([0, 1], [0.1], "2 rows but y_score has 1"),
        ([0, 1], [0.1, np.nan], "NaN"),
    ],
)
def test_roc_refuses_what_has_no_curve(y, score, fragment):
    with pytest.raises(InputError, match=fragment):
        metrics.roc_curve(y, score)
