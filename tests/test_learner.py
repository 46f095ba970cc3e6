"""The Learner base class: hyperparameters, fitted checks, input validation."""

import numpy as np
import pytest
from nanoml_classic.linear import LinearRegression

from nanoml.errors import InputError, NotFittedError, ParameterError
from nanoml.testing import check_learner
from nanoml.validation import check_array, encode_labels


def test_check_learner_passes_for_linear_regression():
    check_learner(LinearRegression)
    check_learner(LinearRegression, params={"solver": "gd", "l2": 0.1})


def test_get_set_params_round_trip():
    model = LinearRegression(lr=0.2)
    assert model.get_params()["lr"] == 0.2
    assert model.set_params(n_iter=5).n_iter == 5
    assert repr(model) == "LinearRegression(lr=0.2, n_iter=5)"
    with pytest.raises(ParameterError, match="no hyperparameter 'alpha'.*valid ones: solver"):
        model.set_params(alpha=1.0)


def test_predict_before_fit_names_the_fix():
    with pytest.raises(NotFittedError, match=r"call fit\(X, y\)"):
        LinearRegression().predict(np.zeros((2, 1)))


@pytest.mark.parametrize(
    "X, fragment",
    [
        (np.array([1.0, 2.0]), "must be 2-D"),
        (np.zeros((0, 3)), "0 samples"),
        (np.array([[1.0, np.inf]]), "NaN or infinity"),
        (np.array([["a", "b"]]), "must be numeric"),
    ],
)
def test_check_array_errors(X, fragment):
    with pytest.raises(InputError, match=fragment):
        check_array(X)


def test_feature_count_mismatch_names_both_counts():
    model = LinearRegression().fit(np.ones((5, 2)) * np.arange(5)[:, None], np.arange(5.0))
    with pytest.raises(InputError, match="has 3 features but the learner was fitted with 2"):
        model.predict(np.zeros((1, 3)))


def test_labels_of_any_type_round_trip():
    for y in (["cat", "dog", "cat"], np.array([3, 7, 3]), [True, False, True]):
        classes, codes = encode_labels(y, 3)
        assert list(classes[codes]) == list(y)
    with pytest.raises(InputError, match="at least 2"):
        encode_labels(["a", "a"], 2)
    with pytest.raises(InputError, match="all numbers or all strings"):
        encode_labels(np.array([1, "a"], dtype=object), 2)


def test_gradient_descent_agrees_with_exact_solution():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((200, 4)) * [1.0, 10.0, 0.1, 3.0] + 5.0
    y = X @ [0.5, -0.2, 4.0, 1.0] - 2.0 + 0.01 * rng.standard_normal(200)
    exact = LinearRegression().fit(X, y)
    gd = LinearRegression(solver="gd", lr=0.5, n_iter=5000).fit(X, y)
    np.testing.assert_allclose(gd.coef_, exact.coef_, rtol=1e-6)
    assert gd.intercept_ == pytest.approx(exact.intercept_, rel=1e-6)
    assert gd.n_iter_ < 5000  # stopped on the gradient tolerance
    losses = np.array(gd.history_["loss"])
    assert np.all(np.diff(losses) <= 1e-12)


def test_linear_regression_matches_scikit_learn():
    linear_model = pytest.importorskip("sklearn.linear_model")
    rng = np.random.default_rng(2)
    X = rng.standard_normal((100, 3))
    y = X @ [1.0, 2.0, -1.0] + rng.standard_normal(100)
    ours = LinearRegression().fit(X, y)
    theirs = linear_model.LinearRegression().fit(X, y)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, rtol=1e-10)
    assert ours.score(X, y) == pytest.approx(theirs.score(X, y), abs=1e-12)


def test_divergent_learning_rate_is_refused():
    X = np.arange(20.0).reshape(-1, 1)
    with pytest.raises(ParameterError, match="diverge"):
        LinearRegression(solver="gd", lr=10.0).fit(X, X[:, 0] ** 2)
