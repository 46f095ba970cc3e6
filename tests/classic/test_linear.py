"""Linear regressors: kernels and solvers against NumPy, the learners against scikit-learn."""

import numpy as np
import pytest
from nanoml_classic.linear import (
    ElasticNet,
    Lasso,
    LinearRegression,
    Ridge,
    centered_gram,
    least_squares,
)
from nanoml_classic.linear_kernels import enet_dense_cd, enet_gram_cd

from nanoml.errors import InputError, ParameterError
from nanoml.testing import check_learner

LEARNERS = [LinearRegression, Ridge, Lasso, ElasticNet]


def _regression(n=200, d=8, offset=0.0, seed=0):
    """A noisy linear target on correlated features, half of them irrelevant."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) @ (np.eye(d) + 0.3 * rng.standard_normal((d, d)))
    coef = np.where(np.arange(d) < d // 2, rng.standard_normal(d) * 3, 0.0)
    return X + offset, X @ coef + 1.5 + 0.5 * rng.standard_normal(n)


def _enet_objective(X, y, coef, intercept, alpha, l1_ratio):
    r = y - X @ coef - intercept
    return (r @ r / (2 * len(y)) + alpha * l1_ratio * np.abs(coef).sum()
            + 0.5 * alpha * (1 - l1_ratio) * coef @ coef)


@pytest.mark.parametrize("cls", LEARNERS)
def test_contract(cls):
    check_learner(cls)


def test_contract_gradient_descent():
    check_learner(LinearRegression, params={"solver": "gd", "n_iter": 50})


@pytest.mark.parametrize("offset", [0.0, 1e6])
def test_centered_gram_matches_numpy(offset):
    X, y = _regression(offset=offset)
    x_mean, y_mean, gram, xty, yty = centered_gram(X, y)
    Xc, yc = X - X.mean(axis=0), y - y.mean()
    np.testing.assert_allclose(x_mean, X.mean(axis=0), rtol=1e-14)
    assert y_mean == pytest.approx(y.mean(), rel=1e-14)
    # a mean 1e6 times the spread would cancel every digit of the rank-one correction
    np.testing.assert_allclose(gram, Xc.T @ Xc, rtol=1e-9)
    np.testing.assert_allclose(xty, Xc.T @ yc, rtol=1e-9)
    assert yty == pytest.approx(yc @ yc, rel=1e-12)


@pytest.mark.parametrize("shape", [(200, 8), (20, 40)])
@pytest.mark.parametrize("alpha", [0.0, 3.0])
def test_least_squares_matches_normal_equations(shape, alpha):
    X, y = _regression(*shape)
    coef, intercept = least_squares(X, y, alpha)
    # the optimum's gradient vanishes: Xcᵀ(Xc w - yc) + alpha w = 0 and b = ȳ - x̄·w
    Xc, yc = X - X.mean(axis=0), y - y.mean()
    np.testing.assert_allclose(Xc.T @ (Xc @ coef - yc) + alpha * coef, 0.0, atol=1e-8)
    assert intercept == pytest.approx(y.mean() - X.mean(axis=0) @ coef)


def test_least_squares_rank_deficient_takes_minimum_norm():
    X, y = _regression()
    X = np.hstack([X, X[:, :1]])  # a duplicated column: XᵀX is singular
    coef, _ = least_squares(X, y, 0.0)
    Xc = X - X.mean(axis=0)
    expected = np.linalg.pinv(Xc) @ (y - y.mean())
    np.testing.assert_allclose(coef, expected, atol=1e-9)
    assert coef[0] == pytest.approx(coef[-1])


@pytest.mark.parametrize("l1_ratio", [1.0, 0.5, 0.0])
def test_gram_and_dense_coordinate_descent_agree(l1_ratio):
    X, y = _regression(n=100, d=12)
    n = X.shape[0]
    x_mean, y_mean, gram, xty, yty = centered_gram(X, y)
    Xc = np.asfortranarray(X - x_mean)
    l1, l2 = 0.1 * l1_ratio * n, 0.1 * (1 - l1_ratio) * n
    w_gram, w_dense = np.zeros(12), np.zeros(12)
    sweeps_gram, gap_gram = enet_gram_cd(gram, xty, yty, w_gram, l1, l2, 1000, 1e-8)
    sweeps_dense, gap_dense = enet_dense_cd(Xc, y - y_mean, w_dense, l1, l2, 1000, 1e-8)
    np.testing.assert_allclose(w_gram, w_dense, atol=1e-9)
    assert sweeps_gram == sweeps_dense < 1000
    assert 0 <= gap_gram <= 1e-8 * yty and gap_dense == pytest.approx(gap_gram, abs=1e-6)


def test_lasso_solution_meets_optimality_conditions():
    X, y = _regression(d=10)
    alpha = 0.2
    model = Lasso(alpha=alpha, tol=1e-10).fit(X, y)
    r = y - model.predict(X)
    corr = (X - X.mean(axis=0)).T @ r / len(y)  # subgradient condition of the L1 term
    active = model.coef_ != 0
    assert 0 < active.sum() < 10
    np.testing.assert_allclose(corr[active], alpha * np.sign(model.coef_[active]), atol=1e-7)
    assert np.all(np.abs(corr[~active]) <= alpha + 1e-9)
    assert r.mean() == pytest.approx(0.0, abs=1e-10)


def test_gradient_descent_reaches_the_exact_solution():
    X, y = _regression(d=4)
    exact = LinearRegression().fit(X, y)
    gd = LinearRegression(solver="gd", n_iter=5000, tol=1e-12).fit(X, y)
    np.testing.assert_allclose(gd.coef_, exact.coef_, rtol=1e-6)
    assert gd.intercept_ == pytest.approx(exact.intercept_, rel=1e-6)
    losses = np.array(gd.history_["loss"])
    assert np.all(np.diff(losses) <= 1e-12) and gd.n_iter_ == len(losses) < 5000


SKLEARN_PAIRS = [
    (LinearRegression, {}, "LinearRegression", {}),
    (Ridge, {"alpha": 5.0}, "Ridge", {"alpha": 5.0}),
    (Lasso, {"alpha": 0.1}, "Lasso", {"alpha": 0.1}),
    (ElasticNet, {"alpha": 0.1, "l1_ratio": 0.3}, "ElasticNet", {"alpha": 0.1, "l1_ratio": 0.3}),
]


@pytest.mark.parametrize("shape", [(300, 8), (30, 50)])
@pytest.mark.parametrize(("ours", "params", "theirs", "their_params"), SKLEARN_PAIRS)
def test_matches_sklearn(shape, ours, params, theirs, their_params):
    linear_model = pytest.importorskip("sklearn.linear_model")
    X, y = _regression(*shape)
    X_test, y_test = _regression(*shape, seed=1)
    model = ours(**params).fit(X, y)
    reference = getattr(linear_model, theirs)(**their_params).fit(X, y)
    np.testing.assert_allclose(model.coef_, reference.coef_, rtol=1e-6, atol=1e-6)
    assert model.intercept_ == pytest.approx(reference.intercept_, rel=1e-6, abs=1e-6)
    assert model.score(X_test, y_test) == pytest.approx(
        reference.score(X_test, y_test), abs=0.01
    )


def test_elastic_net_matches_sklearn_objective_on_offset_features():
    linear_model = pytest.importorskip("sklearn.linear_model")
    X, y = _regression(offset=1e5)  # means 1e5 times the spread: centring must be exact
    model = ElasticNet(alpha=0.05, l1_ratio=0.7, tol=1e-8).fit(X, y)
    reference = linear_model.ElasticNet(alpha=0.05, l1_ratio=0.7, tol=1e-8).fit(X, y)
    np.testing.assert_allclose(model.coef_, reference.coef_, rtol=1e-5, atol=1e-6)
    mine = _enet_objective(X, y, model.coef_, model.intercept_, 0.05, 0.7)
    theirs = _enet_objective(X, y, reference.coef_, reference.intercept_, 0.05, 0.7)
    assert mine <= theirs * (1 + 1e-9)


@pytest.mark.parametrize("cls", LEARNERS)
def test_bad_data_raises_input_error(cls):
    X, y = _regression(n=20, d=3)
    with pytest.raises(InputError, match="empty"):
        cls().fit(np.empty((0, 3)), np.empty(0))
    with pytest.raises(InputError, match="samples"):
        cls().fit(X, y[:-2])
    bad = y.copy()
    bad[3] = np.nan
    with pytest.raises(InputError, match="NaN"):
        cls().fit(X, bad)


@pytest.mark.parametrize(
    ("cls", "params", "message"),
    [
        (Ridge, {"alpha": -1.0}, "alpha"),
        (Lasso, {"alpha": 0.0}, "alpha"),
        (ElasticNet, {"l1_ratio": 1.5}, "l1_ratio"),
        (ElasticNet, {"max_iter": 0}, "max_iter"),
        (LinearRegression, {"solver": "svd"}, "solver"),
    ],
)
def test_bad_hyperparameters_raise_parameter_error(cls, params, message):
    X, y = _regression(n=20, d=3)
    with pytest.raises(ParameterError, match=message):
        cls(**params).fit(X, y)
