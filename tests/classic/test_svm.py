"""Kernel SVM: the SMO solution against scikit-learn's LIBSVM, the row cache, shrinking,
bad input."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from nanoml_classic import svm
from nanoml_classic.svm import SVC, solve_binary

from nanoml import Learner
from nanoml.data import load_dataset
from nanoml.errors import ConvergenceWarning, InputError, ParameterError
from nanoml.testing import check_learner


def _standardised(name):
    data = load_dataset(name)
    mean, std = data.X_train.mean(axis=0), data.X_train.std(axis=0)
    std[std == 0] = 1.0
    return (data.X_train - mean) / std, data.y_train, (data.X_test - mean) / std, data.y_test


def _sklearn_ovo_decision(reference, X):
    """scikit-learn's pairwise decision values, positive favouring the pair's first class."""
    values = reference.decision_function(X)
    return -values[:, None] if values.ndim == 1 else values


@pytest.mark.parametrize("dataset", ["breast-cancer", "iris", "digits"])
def test_decision_function_has_scikit_learns_sign_and_shape_and_argmax_is_predict(dataset):
    sk_svm = pytest.importorskip("sklearn.svm")
    X, y, X_test, _ = _standardised(dataset)
    model = SVC(tol=1e-8).fit(X, y)
    reference = sk_svm.SVC(tol=1e-8, break_ties=True).fit(X, y)
    ours, theirs = model.decision_function(X_test), reference.decision_function(X_test)
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, atol=1e-4)
    if ours.ndim == 1:
        np.testing.assert_array_equal(model.predict(X_test), model.classes_[(ours > 0) * 1])
    else:
        np.testing.assert_array_equal(model.predict(X_test),
                                      model.classes_[np.argmax(ours, axis=1)])
    np.testing.assert_array_equal(model.predict(X_test), reference.predict(X_test))


@pytest.mark.parametrize("kernel", ["rbf", "linear"])
def test_contract(kernel):
    check_learner(SVC, params={"kernel": kernel})


@pytest.mark.parametrize("kernel", ["rbf", "linear"])
@pytest.mark.parametrize("dataset", ["moons", "iris", "breast-cancer", "digits"])
def test_matches_sklearn(dataset, kernel):
    sk_svm = pytest.importorskip("sklearn.svm")
    X, y, X_test, y_test = _standardised(dataset)
    model = SVC(kernel=kernel).fit(X, y)
    reference = sk_svm.SVC(kernel=kernel, decision_function_shape="ovo").fit(X, y)
    assert model.gamma_ == pytest.approx(reference._gamma, rel=1e-12)
    assert model.score(X_test, y_test) >= reference.score(X_test, y_test) - 0.01
    # the same convex problem solved to the same tolerance: close decision values
    np.testing.assert_allclose(
        model.pairwise_decision(X_test), _sklearn_ovo_decision(reference, X_test), atol=0.02
    )


def test_tight_tolerance_reaches_sklearns_solution():
    sk_svm = pytest.importorskip("sklearn.svm")
    X, y, X_test, _ = _standardised("breast-cancer")
    model = SVC(C=3.0, tol=1e-8).fit(X, y)
    reference = sk_svm.SVC(C=3.0, tol=1e-8).fit(X, y)
    order = np.argsort(reference.support_)  # theirs lists support vectors class by class
    np.testing.assert_array_equal(model.support_, reference.support_[order])
    # for two classes scikit-learn flips LIBSVM's signs so that positive means classes_[1]
    np.testing.assert_allclose(model.dual_coef_, -reference.dual_coef_[:, order], atol=1e-4)
    np.testing.assert_allclose(model.intercept_, -reference.intercept_, atol=1e-5)
    np.testing.assert_allclose(
        model.pairwise_decision(X_test), _sklearn_ovo_decision(reference, X_test), atol=1e-5
    )


@pytest.mark.parametrize("kernel", ["rbf", "linear"])
def test_kernel_matrix_and_gram_match_numpy(kernel, monkeypatch):
    rng = np.random.default_rng(0)
    A, B = rng.standard_normal((30, 5)), rng.standard_normal((20, 5))

    def reference(P, R):
        if kernel == "linear":
            return P @ R.T
        return np.exp(-0.3 * ((P[:, None, :] - R[None, :, :]) ** 2).sum(axis=2))

    np.testing.assert_allclose(svm.kernel_matrix(A, B, kernel, 0.3), reference(A, B),
                               rtol=1e-12, atol=1e-12)
    with ThreadPoolExecutor(2) as pool:
        blocks = svm._gram(A, kernel, 0.3, pool, 2)
        monkeypatch.setattr(svm, "SMALL_GRAM", 0)  # one GEMM, then exp by chunks
        whole = svm._gram(A, kernel, 0.3, pool, 2)
    np.testing.assert_allclose(blocks, reference(A, A), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(whole, reference(A, A), rtol=1e-12, atol=1e-12)


def _rounding(alpha, cached_rows):
    """Bound on the error of the training decision values the solver returns: cached rows
    are single precision (as LIBSVM's), so each term α_j K_ij may be off by 2⁻²⁴ α_j."""
    return 1e-9 if cached_rows is None else 2.0**-22 * np.sum(alpha)


def _kkt_violation(X, y, alpha, rho, C, gamma):
    """Largest breach of the C-SVC optimality conditions by (α, ρ)."""
    K = np.exp(-gamma * ((X[:, None, :] - X[None, :, :]) ** 2).sum(axis=2))
    margin = y * (K @ (alpha * y) - rho)
    free = (alpha > 0) & (alpha < C)
    return max(
        np.max(np.abs(y @ alpha)),
        np.max(1 - margin[alpha == 0], initial=0.0),  # outside the margin
        np.max(margin[alpha == C] - 1, initial=0.0),  # inside the margin
        np.max(np.abs(margin[free] - 1), initial=0.0),  # on the margin
    )


@pytest.mark.parametrize("shrinking", [False, True], ids=["plain", "shrinking"])
@pytest.mark.parametrize("rows", [None, 160, 3], ids=["gram", "all-rows-cache", "3-row-cache"])
def test_solver_reaches_the_optimality_conditions(rows, shrinking):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((160, 3))
    y = np.where(X[:, 0] * X[:, 1] + 0.3 * rng.standard_normal(160) > 0, 1.0, -1.0)
    if rows is None:  # rows read from the training set's kernel matrix
        kwargs = {"gram": svm.kernel_matrix(X, X, "rbf", 0.5)}
    else:  # rows computed on demand (with 3 slots: eviction all the time; with all of
        # them: entries of cached rows copied across, K being symmetric)
        kwargs = {"budget": rows * 8 * 160}
    alpha, rho, n_iter, decision = solve_binary(X, y, "rbf", 0.5, 2.0, 1e-6,
                                                shrinking=shrinking, **kwargs)
    assert 0 < n_iter < 100_000
    assert np.all((alpha >= 0) & (alpha <= 2.0))
    assert _kkt_violation(X, y, alpha, rho, 2.0, 0.5) < 1e-5
    K = np.exp(-0.5 * ((X[:, None, :] - X[None, :, :]) ** 2).sum(axis=2))
    np.testing.assert_allclose(decision, K @ (alpha * y) - rho, atol=_rounding(alpha, rows))


def test_shrinking_reconstructs_the_gradient():
    """Large C on overlapping classes: many α at C, shrunk for long stretches; the
    solution must be the one found without shrinking, from cache rows and gram alike."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((400, 2))
    y = np.where(X[:, 0] + 0.8 * rng.standard_normal(400) > 0, 1.0, -1.0)
    plain = solve_binary(X, y, "rbf", 1.0, 50.0, 1e-6, shrinking=False)
    for budget in (svm.CACHE_BYTES, 8 * 8 * 400):
        shrunk = solve_binary(X, y, "rbf", 1.0, 50.0, 1e-6, budget=budget)
        np.testing.assert_allclose(shrunk[3], plain[3], atol=1e-4)
        assert shrunk[1] == pytest.approx(plain[1], abs=1e-4)


@pytest.mark.parametrize("budget", [svm.CACHE_BYTES, 4 * 8 * 400], ids=["all-rows", "4-rows"])
def test_iteration_cap_warns_and_leaves_a_consistent_state(budget):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((400, 2))
    y = np.where(X[:, 0] + 0.8 * rng.standard_normal(400) > 0, 1.0, -1.0)
    with pytest.warns(ConvergenceWarning, match="1500 iterations"):
        alpha, rho, n_iter, decision = solve_binary(X, y, "rbf", 1.0, 50.0, 1e-6,
                                                    budget=budget, max_iter=1500)
    assert n_iter == 1500
    K = np.exp(-((X[:, None, :] - X[None, :, :]) ** 2).sum(axis=2))
    np.testing.assert_allclose(decision, K @ (alpha * y) - rho, atol=_rounding(alpha, 4))


@pytest.mark.parametrize("dataset", ["moons", "iris"])
def test_row_cache_and_whole_gram_agree(dataset, monkeypatch):
    X, y, X_test, _ = _standardised(dataset)
    whole = SVC(C=10.0, tol=1e-8).fit(X, y)
    monkeypatch.setattr(svm, "CACHE_BYTES", 16 * 8 * len(y))
    cached = SVC(C=10.0, tol=1e-8).fit(X, y)
    # cached rows are single precision, the whole matrix double: same optimum only
    np.testing.assert_allclose(
        cached.pairwise_decision(X_test), whole.pairwise_decision(X_test), atol=1e-5
    )
    np.testing.assert_allclose(cached.prob_a_, whole.prob_a_, rtol=1e-4)


@pytest.mark.parametrize("cached", [False, True], ids=["whole-gram", "row-cache"])
def test_float32_data_reaches_the_float64_solution(cached, monkeypatch):
    X, y, X_test, _ = _standardised("digits")
    X, X_test = X + 3.0, X_test + 3.0  # off the origin: the float32 rows are centred first
    if cached:
        monkeypatch.setattr(svm, "CACHE_BYTES", 16 * 8 * len(y))
    wide = SVC(tol=1e-6).fit(X, y)
    seen = []
    solve = svm.solve_binary

    def spy(rows, *args, **kwargs):
        seen.append(rows.dtype)
        return solve(rows, *args, **kwargs)

    monkeypatch.setattr(svm, "solve_binary", spy)
    single = SVC(tol=1e-6).fit(X.astype(np.float32), y)
    assert set(seen) == {np.dtype(np.float32)}
    assert single.support_vectors_.dtype == np.float64
    np.testing.assert_allclose(
        single.pairwise_decision(X_test), wide.pairwise_decision(X_test), atol=1e-3
    )
    assert np.mean(single.predict(X_test) == wide.predict(X_test)) >= 0.995


def test_gamma_choices():
    X = np.random.default_rng(0).standard_normal((40, 4)) * 3.0
    y = np.arange(40) % 2
    assert SVC().fit(X, y).gamma_ == pytest.approx(1.0 / (4 * X.var()))
    assert SVC(gamma="auto").fit(X, y).gamma_ == 0.25
    assert SVC(gamma=0.7).fit(X, y).gamma_ == 0.7


def test_string_labels_round_trip(tmp_path):
    X, y, X_test, y_test = _standardised("iris")
    names = np.array(["setosa", "versicolor", "virginica"])
    model = SVC().fit(X, list(names[y]))
    path = tmp_path / "svm.npz"
    model.save(path)
    loaded = Learner.load(path)
    np.testing.assert_array_equal(loaded.predict(X_test), model.predict(X_test))
    assert np.mean(loaded.predict(X_test) == names[y_test]) > 0.9


def test_bad_input_raises():
    X = np.random.default_rng(0).standard_normal((10, 2))
    with pytest.raises(InputError, match="class"):
        SVC().fit(X, np.zeros(10))
    with pytest.raises(InputError, match="empty"):
        SVC().fit(np.empty((0, 2)), [])
    with pytest.raises(InputError, match="samples"):
        SVC().fit(X, np.arange(9) % 2)


@pytest.mark.parametrize(
    "params, words",
    [({"C": 0.0}, "C"), ({"kernel": "poly"}, "kernel"), ({"gamma": "big"}, "gamma"),
     ({"gamma": -1.0}, "gamma"), ({"tol": 0}, "tol")],
)
def test_bad_parameters_raise(params, words):
    X = np.random.default_rng(0).standard_normal((10, 2))
    with pytest.raises(ParameterError, match=words):
        SVC(**params).fit(X, np.arange(10) % 2)
