"""Label spreading against scikit-learn's LabelSpreading on the same partly labelled data."""

import numpy as np
import pytest
from nanoml_classic.semi_supervised import LabelSpreading

from nanoml.data import load_dataset
from nanoml.errors import InputError, ParameterError
from nanoml.testing import check_learner


def _moons(n=300, seed=0):
    """Two interleaved half circles: label spreading's textbook case."""
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, np.pi, n)
    y = rng.integers(2, size=n)
    upper = np.c_[np.cos(t), np.sin(t)]
    X = np.where(y[:, None] == 0, upper, np.c_[1.0, 0.5] - upper)
    return X + 0.08 * rng.standard_normal((n, 2)), y


def test_contract():
    check_learner(LabelSpreading)
    check_learner(LabelSpreading, params={"kernel": "rbf", "gamma": 2.0, "labelled_fraction": 1.0})


def test_default_run_hides_most_labels_and_matches_sklearn_on_digits():
    semi_supervised = pytest.importorskip("sklearn.semi_supervised")
    data = load_dataset("digits")
    ours = LabelSpreading().fit(data.X_train, data.y_train)
    counts = np.bincount(data.y_train)
    np.testing.assert_array_equal(
        np.bincount(data.y_train[ours.labelled_]), np.round(0.1 * counts).astype(int)
    )
    masked = np.where(ours.labelled_, data.y_train, -1)
    theirs = semi_supervised.LabelSpreading(kernel="knn", n_neighbors=7, alpha=0.2)
    theirs.fit(data.X_train, masked)
    ours_accuracy = ours.score(data.X_test, data.y_test)
    assert ours_accuracy > 0.9
    assert ours_accuracy == pytest.approx(theirs.score(data.X_test, data.y_test), abs=0.01)
    assert np.mean(ours.transduction_ == theirs.transduction_) > 0.99


def test_rbf_matches_sklearn_exactly():
    semi_supervised = pytest.importorskip("sklearn.semi_supervised")
    X, y = _moons()
    masked = np.where(np.random.default_rng(1).random(y.size) < 0.05, y, -1)
    ours = LabelSpreading(kernel="rbf", labelled_fraction=1.0).fit(X[:200], masked[:200])
    theirs = semi_supervised.LabelSpreading(kernel="rbf", gamma=20, alpha=0.2)
    theirs.fit(X[:200], masked[:200])
    assert ours.n_iter_ == theirs.n_iter_
    np.testing.assert_allclose(ours.label_distributions_, theirs.label_distributions_, atol=1e-12)
    np.testing.assert_allclose(ours.predict_proba(X[200:]), theirs.predict_proba(X[200:]),
                               atol=1e-12)
    assert ours.score(X[200:], y[200:]) == theirs.score(X[200:], y[200:])


def test_labelled_fraction_keeps_given_unlabelled_rows_hidden():
    X, y = _moons()
    y = y.copy()
    y[::2] = -1
    model = LabelSpreading(labelled_fraction=0.2, seed=3).fit(X, y)
    assert not model.labelled_[::2].any()
    assert model.labelled_.sum() == sum(round(0.2 * np.sum(y == c)) for c in (0, 1))
    other = LabelSpreading(labelled_fraction=0.2, seed=4).fit(X, y)
    assert (other.labelled_ != model.labelled_).any()
    everything = LabelSpreading(labelled_fraction=1.0).fit(X, y)
    np.testing.assert_array_equal(everything.labelled_, y != -1)


def test_string_labels_round_trip():
    X, y = _moons()
    masked = np.where(np.random.default_rng(0).random(y.size) < 0.2, y, -1)
    names = np.array(["-1", "left", "right"])[masked + 1]
    by_name = LabelSpreading(labelled_fraction=1.0).fit(X, names)
    by_code = LabelSpreading(labelled_fraction=1.0).fit(X, masked)
    np.testing.assert_array_equal(by_name.classes_, ["left", "right"])
    expected = np.array(["left", "right"])[by_code.predict(X)]
    np.testing.assert_array_equal(by_name.predict(X), expected)


@pytest.mark.parametrize(
    "y_change, words",
    [(lambda y: np.full_like(y, -1), "no labelled sample"),
     (lambda y: np.where(y == 1, -1, y), "1 class")],
)
def test_bad_labels(y_change, words):
    X, y = _moons(n=40)
    with pytest.raises(InputError, match=words):
        LabelSpreading(labelled_fraction=1.0).fit(X, y_change(y))


@pytest.mark.parametrize(
    "params, error, words",
    [({"alpha": 1.0}, ParameterError, "alpha"), ({"alpha": 0.0}, ParameterError, "alpha"),
     ({"kernel": "linear"}, ParameterError, "kernel"),
     ({"labelled_fraction": 0.0}, ParameterError, "labelled_fraction"),
     ({"gamma": -1.0}, ParameterError, "gamma"),
     ({"n_neighbors": 41}, InputError, "n_neighbors=41")],
)
def test_bad_parameters(params, error, words):
    X, y = _moons(n=40)
    with pytest.raises(error, match=words):
        LabelSpreading(**params).fit(X, y)
