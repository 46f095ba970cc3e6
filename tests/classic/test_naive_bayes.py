"""Naive Bayes: the kernels against NumPy, the learners against scikit-learn."""

import numpy as np
import pytest
from nanoml_classic.naive_bayes import GaussianNB, MultinomialNB
from nanoml_classic.naive_bayes_kernels import (
    class_scatter,
    class_sums,
    gaussian_log_likelihood,
)

from nanoml.data import load_dataset
from nanoml.errors import InputError, ParameterError
from nanoml.testing import check_learner

LEARNERS = [GaussianNB, MultinomialNB]


def _counts(n=60, d=3, seed=0):
    """Non-negative features whose level depends on the class, for the multinomial model."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=n)
    X = rng.poisson(np.where(y[:, None] == 1, [1.0, 4.0, 2.0], [4.0, 1.0, 2.0])[:, :d])
    return X.astype(np.float64), y


@pytest.mark.parametrize("cls", LEARNERS)
def test_contract(cls):
    check_learner(cls, data=_counts())


def test_class_moment_kernels_match_numpy():
    rng = np.random.default_rng(0)
    X = 1e6 + rng.standard_normal((200, 5))  # sums of squares must not cancel
    codes = rng.integers(0, 3, size=200)
    sums, counts = np.zeros((3, 5)), np.zeros(3)
    class_sums(X, codes, sums, counts)
    scatter = np.zeros((3, 5))
    class_scatter(X, codes, sums / counts[:, None], scatter)
    for c in range(3):
        rows = X[codes == c]
        np.testing.assert_allclose(sums[c], rows.sum(axis=0), rtol=1e-14)
        assert counts[c] == len(rows)
        np.testing.assert_allclose(scatter[c], len(rows) * rows.var(axis=0), rtol=1e-8)


def test_gaussian_log_likelihood_kernel_matches_numpy():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((30, 4))
    means, inv_var = rng.standard_normal((3, 4)), rng.uniform(0.5, 2.0, (3, 4))
    offset = rng.standard_normal(3)
    out = np.empty((30, 3))
    gaussian_log_likelihood(X, means, inv_var, offset, out)
    expected = offset - 0.5 * (((X[:, None, :] - means) ** 2) * inv_var).sum(axis=2)
    np.testing.assert_allclose(out, expected, rtol=1e-13)


@pytest.mark.parametrize("dataset", ["iris", "digits"])
def test_gaussian_matches_sklearn(dataset):
    naive_bayes = pytest.importorskip("sklearn.naive_bayes")
    data = load_dataset(dataset)
    model = GaussianNB().fit(data.X_train, data.y_train)
    reference = naive_bayes.GaussianNB().fit(data.X_train, data.y_train)
    np.testing.assert_allclose(model.theta_, reference.theta_, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(model.var_, reference.var_, rtol=1e-10)
    assert model.epsilon_ == pytest.approx(reference.epsilon_, rel=1e-10)
    np.testing.assert_allclose(
        model.predict_proba(data.X_test), reference.predict_proba(data.X_test), atol=1e-8
    )
    np.testing.assert_array_equal(model.predict(data.X_test), reference.predict(data.X_test))


@pytest.mark.parametrize("alpha", [1.0, 0.01])
def test_multinomial_matches_sklearn(alpha):
    naive_bayes = pytest.importorskip("sklearn.naive_bayes")
    data = load_dataset("digits")
    model = MultinomialNB(alpha=alpha).fit(data.X_train, data.y_train)
    reference = naive_bayes.MultinomialNB(alpha=alpha).fit(data.X_train, data.y_train)
    np.testing.assert_allclose(model.feature_log_prob_, reference.feature_log_prob_, rtol=1e-12)
    np.testing.assert_allclose(model.class_log_prior_, reference.class_log_prior_, rtol=1e-12)
    np.testing.assert_allclose(
        model.predict_proba(data.X_test), reference.predict_proba(data.X_test), atol=1e-8
    )
    assert model.score(data.X_test, data.y_test) == pytest.approx(
        reference.score(data.X_test, data.y_test), abs=0.01
    )


def test_gaussian_constant_feature_is_smoothed():
    X, y = _counts()
    X[:, 1] = 3.0
    model = GaussianNB().fit(X, y)
    assert np.all(model.var_[:, 1] > 0) and np.all(np.isfinite(model.predict_proba(X)))


def test_multinomial_rejects_negative_features():
    X, y = _counts()
    X[4, 2] = -1.0
    with pytest.raises(InputError, match=r"non-negative.*-1\.0 at index \(4, 2\)"):
        MultinomialNB().fit(X, y)


@pytest.mark.parametrize("cls", LEARNERS)
def test_string_labels_round_trip(cls):
    X, y = _counts(n=200)
    names = np.array(["ham", "spam"])
    model = cls().fit(X, list(names[y]))
    assert list(model.classes_) == ["ham", "spam"]
    predicted = model.predict(X)
    np.testing.assert_array_equal(predicted, names[cls().fit(X, y).predict(X)])
    assert np.mean(predicted == names[y]) > 0.8
    np.testing.assert_allclose(model.predict_proba(X).sum(axis=1), 1.0, rtol=1e-12)


@pytest.mark.parametrize("cls", LEARNERS)
def test_bad_data_raises_input_error(cls):
    X, y = _counts()
    with pytest.raises(InputError, match="class"):
        cls().fit(X, np.zeros(len(y)))
    with pytest.raises(InputError, match="empty"):
        cls().fit(np.empty((0, 3)), np.empty(0))
    with pytest.raises(InputError, match="samples"):
        cls().fit(X, y[:-1])
    with pytest.raises(InputError, match="NaN"):
        cls().fit(X, np.where(np.arange(len(y)) == 5, np.nan, y))


@pytest.mark.parametrize(
    ("cls", "params", "message"),
    [
        (GaussianNB, {"var_smoothing": -1.0}, "var_smoothing"),
        (MultinomialNB, {"alpha": 0.0}, "alpha"),
    ],
)
def test_bad_hyperparameters_raise_parameter_error(cls, params, message):
    X, y = _counts()
    with pytest.raises(ParameterError, match=message):
        cls(**params).fit(X, y)
