"""Linear classifiers: the kernels against NumPy, the learners against scikit-learn."""

import warnings

import numpy as np
import pytest
from nanoml_classic import logistic
from nanoml_classic.logistic import LinearSVM, LogisticRegression, softmax_objective
from nanoml_classic.logistic_kernels import (
    hinge_dual_cd,
    normalise_rows,
    shift_rows_by_max,
    softmax_cross_entropy,
)

from nanoml.data import load_dataset
from nanoml.errors import ConvergenceWarning, InputError, ParameterError
from nanoml.testing import check_learner

LEARNERS = [LogisticRegression, LinearSVM]


def _standardised(name):
    """An embedded dataset with features scaled as the solvers like them."""
    data = load_dataset(name)
    mean, std = data.X_train.mean(axis=0), data.X_train.std(axis=0) + 1e-12
    return (data.X_train - mean) / std, data.y_train, (data.X_test - mean) / std, data.y_test


def _reference_softmax(logits, codes):
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(shifted).sum(axis=1))
    loss = (log_norm - shifted[np.arange(len(codes)), codes]).sum()
    prob = np.exp(shifted - log_norm[:, None])
    prob[np.arange(len(codes)), codes] -= 1.0
    return loss, prob


def _hinge_objective(X, y_signs, w, C):
    """LinearSVC's primal: the bias is a penalised weight on a constant feature."""
    margins = y_signs * (X @ w[:-1] + w[-1])
    return 0.5 * w @ w + C * np.maximum(0.0, 1.0 - margins).sum()


@pytest.mark.parametrize("cls", LEARNERS)
def test_contract(cls):
    check_learner(cls)


@pytest.mark.parametrize("scale", [5.0, 800.0])  # 800: saturating logits must not overflow
@pytest.mark.parametrize("n_classes", [2, 4])
def test_softmax_cross_entropy_matches_numpy(scale, n_classes):
    rng = np.random.default_rng(0)
    logits = scale * rng.standard_normal((50, n_classes))
    codes = rng.integers(0, n_classes, size=50)
    expected_loss, expected_grad = _reference_softmax(logits, codes)
    out = logits.copy()
    assert softmax_cross_entropy(out, codes) == pytest.approx(expected_loss, rel=1e-12)
    np.testing.assert_allclose(out, expected_grad, atol=1e-14)


def test_softmax_kernels_match_numpy_step_by_step():
    rng = np.random.default_rng(1)
    logits = 3 * rng.standard_normal((30, 5))
    codes = rng.integers(0, 5, size=30)
    shifted, picked = logits.copy(), np.empty(30)
    shift_rows_by_max(shifted, codes, picked)
    np.testing.assert_array_equal(shifted, logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_array_equal(picked, shifted[np.arange(30), codes])
    probs = np.exp(shifted)
    expected = probs / probs.sum(axis=1, keepdims=True)
    expected[np.arange(30), codes] -= 1.0
    loss = normalise_rows(probs, codes, picked)
    np.testing.assert_allclose(probs, expected, atol=1e-15)
    assert loss == pytest.approx((np.log(np.exp(shifted).sum(axis=1)) - picked).sum(), rel=1e-13)


@pytest.mark.parametrize("dataset", ["iris", "breast-cancer"])
def test_logistic_fit_meets_optimality_conditions(dataset):
    # at the optimum of C·Σ cross-entropy + ½||W||², C·(P - Y)ᵀX + W = 0 and Σ(P - Y) = 0
    X, y, _, _ = _standardised(dataset)
    C = 0.5
    model = LogisticRegression(C=C, max_iter=1000, tol=1e-9).fit(X, y)
    logits = X @ model.coef_.T + model.intercept_
    if logits.shape[1] == 1:  # the sigmoid model: class 0's logit is 0
        logits = np.hstack([np.zeros_like(logits), logits])
    residual = _reference_softmax(logits, np.searchsorted(model.classes_, y))[1]
    if model.coef_.shape[0] == 1:
        residual = residual[:, 1:]
    scale = C * len(y)
    np.testing.assert_allclose((C * residual.T @ X + model.coef_) / scale, 0.0, atol=1e-8)
    np.testing.assert_allclose(residual.sum(axis=0) / len(y), 0.0, atol=1e-8)


@pytest.mark.parametrize(
    ("dataset", "C"), [("digits", 1.0), ("breast-cancer", 0.3), ("iris", 10.0)]
)
def test_logistic_matches_sklearn(dataset, C):
    linear_model = pytest.importorskip("sklearn.linear_model")
    X, y, X_test, y_test = _standardised(dataset)
    model = LogisticRegression(C=C, max_iter=500, tol=1e-8).fit(X, y)
    reference = linear_model.LogisticRegression(C=C, max_iter=500, tol=1e-8).fit(X, y)
    assert model.coef_.shape == reference.coef_.shape
    np.testing.assert_allclose(model.coef_, reference.coef_, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(model.intercept_, reference.intercept_, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(
        model.predict_proba(X_test), reference.predict_proba(X_test), atol=1e-5
    )
    assert abs(model.score(X_test, y_test) - reference.score(X_test, y_test)) <= 0.01


@pytest.mark.parametrize("dataset", ["iris", "breast-cancer"])
def test_linear_svm_matches_liblinear(dataset):
    svm = pytest.importorskip("sklearn.svm")
    X, y, X_test, y_test = _standardised(dataset)
    model = LinearSVM(C=0.5, tol=1e-6, max_iter=5000, standardize=False).fit(X, y)
    reference = svm.LinearSVC(loss="hinge", C=0.5, tol=1e-6, max_iter=5000).fit(X, y)
    assert model.coef_.shape == reference.coef_.shape
    assert abs(model.score(X_test, y_test) - reference.score(X_test, y_test)) <= 0.01
    classes = np.unique(y)
    positives = classes[1:] if len(classes) == 2 else classes
    for row, positive in enumerate(positives):
        signs = np.where(y == positive, 1.0, -1.0)
        ours = _hinge_objective(X, signs, np.append(model.coef_[row], model.intercept_[row]), 0.5)
        theirs = _hinge_objective(
            X, signs, np.append(reference.coef_[row], reference.intercept_[row]), 0.5
        )
        assert ours == pytest.approx(theirs, rel=1e-4)


def test_hinge_dual_cd_reaches_the_primal_optimum():
    # a dual optimum's w is a primal optimum: no small step lowers the primal objective
    rng = np.random.default_rng(0)
    X = rng.standard_normal((80, 3))
    signs = np.where(X[:, 0] + 0.3 * rng.standard_normal(80) > 0, 1.0, -1.0)
    w = np.zeros(4)
    epochs = hinge_dual_cd(X, signs, 1.0, 10000, 1e-10, np.random.default_rng(0), w)
    assert epochs < 10000
    best = _hinge_objective(X, signs, w, 1.0)
    for direction in np.vstack([np.eye(4), -np.eye(4), rng.standard_normal((20, 4))]):
        assert _hinge_objective(X, signs, w + 1e-4 * direction, 1.0) >= best - 1e-9


@pytest.mark.filterwarnings("ignore::nanoml.errors.ConvergenceWarning")  # capped on purpose
def test_linear_svm_is_reproducible_from_seed():
    X, y, _, _ = _standardised("iris")
    first = LinearSVM(seed=3, max_iter=20).fit(X, y).coef_
    np.testing.assert_array_equal(first, LinearSVM(seed=3, max_iter=20).fit(X, y).coef_)


@pytest.mark.parametrize("cls", LEARNERS)
@pytest.mark.parametrize("n_classes", [2, 3])
def test_string_labels_round_trip(cls, n_classes):
    X, y, X_test, y_test = _standardised("iris")
    names = np.array(["setosa", "versicolor", "virginica"])
    keep, keep_test = y < n_classes, y_test < n_classes
    model = cls().fit(X[keep], list(names[y[keep]]))
    assert list(model.classes_) == list(names[:n_classes])
    predicted = model.predict(X_test[keep_test])
    assert predicted.dtype.kind == "U"
    assert np.mean(predicted == names[y_test[keep_test]]) > 0.8
    numeric = cls().fit(X[keep], y[keep]).predict(X_test[keep_test])
    np.testing.assert_array_equal(predicted, names[numeric])


@pytest.mark.parametrize("cls", LEARNERS)
def test_bad_data_raises_input_error(cls):
    X, y, _, _ = _standardised("iris")
    with pytest.raises(InputError, match="class"):
        cls().fit(X[:10], np.zeros(10))
    with pytest.raises(InputError, match="empty"):
        cls().fit(np.empty((0, 4)), np.empty(0))
    with pytest.raises(InputError, match="samples"):
        cls().fit(X, y[:-1])
    with pytest.raises(InputError, match="NaN"):
        cls().fit(X, np.where(np.arange(len(y)) == 5, np.nan, y))


@pytest.mark.parametrize("cls", LEARNERS)
@pytest.mark.parametrize(("param", "value"), [("C", 0.0), ("max_iter", 0), ("tol", -1.0)])
def test_bad_hyperparameters_raise_parameter_error(cls, param, value):
    X, y, _, _ = _standardised("iris")
    with pytest.raises(ParameterError, match=param):
        cls(**{param: value}).fit(X, y)


def test_linear_svm_standardises_dense_features_and_answers_in_their_units():
    data = load_dataset("breast-cancer")  # features from 1e-3 to 1e3: LIBLINEAR crawls
    majority = np.mean(data.y_test == np.bincount(data.y_train).argmax())
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = LinearSVM().fit(data.X_train, data.y_train)
    assert model.score(data.X_test, data.y_test) >= majority + 0.25
    mean, std = data.X_train.mean(axis=0), data.X_train.std(axis=0)
    scaled = LinearSVM(standardize=False).fit((data.X_train - mean) / std, data.y_train)
    np.testing.assert_allclose(model.coef_, scaled.coef_ / std, rtol=1e-10)
    np.testing.assert_allclose(model.decision_function(data.X_test),
                               scaled.decision_function((data.X_test - mean) / std), atol=1e-8)


@pytest.mark.parametrize("n_classes", [2, 4])
def test_objective_in_blocks_matches_numpy_and_finite_differences(n_classes, monkeypatch):
    monkeypatch.setattr(logistic, "BLOCK_BYTES", 7 * 6 * 8)  # blocks of 7 rows, last partial
    rng = np.random.default_rng(2)
    X, codes = rng.standard_normal((40, 6)), rng.integers(0, n_classes, size=40)
    m = 1 if n_classes == 2 else n_classes
    W, b = rng.standard_normal((m, 6)), rng.standard_normal(m)
    loss, grad_W, grad_b = softmax_objective(X, codes, W, b, n_classes == 2)
    logits = X @ W.T + b
    if m == 1:
        logits = np.hstack([np.zeros((40, 1)), logits])
    expected_loss, residual = _reference_softmax(logits, codes)
    residual = residual[:, 1:] if m == 1 else residual
    assert loss == pytest.approx(expected_loss, rel=1e-12)
    np.testing.assert_allclose(grad_W, residual.T @ X, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(grad_b, residual.sum(axis=0), rtol=1e-10, atol=1e-12)
    step = 1e-6
    for i, j in [(0, 0), (m - 1, 5)]:
        up, down = W.copy(), W.copy()
        up[i, j] += step
        down[i, j] -= step
        numeric = (softmax_objective(X, codes, up, b, m == 1)[0]
                   - softmax_objective(X, codes, down, b, m == 1)[0]) / (2 * step)
        assert grad_W[i, j] == pytest.approx(numeric, rel=1e-6)


def test_float32_features_give_the_float64_solution():
    X, y, _, _ = _standardised("digits")
    double = LogisticRegression(C=0.1, max_iter=500).fit(X, y)
    single = LogisticRegression(C=0.1, max_iter=500).fit(X.astype(np.float32), y)
    assert single.coef_.dtype == np.float64
    np.testing.assert_allclose(single.coef_, double.coef_, atol=1e-4)
    np.testing.assert_allclose(single.intercept_, double.intercept_, atol=1e-4)


def test_objective_shared_among_threads_matches_one_thread():
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(3)
    X, codes = rng.standard_normal((101, 5)), rng.integers(0, 3, size=101)
    W, b = rng.standard_normal((3, 5)), rng.standard_normal(3)
    alone = softmax_objective(X, codes, W, b, False)
    with ThreadPoolExecutor(max_workers=2) as pool:
        shared = softmax_objective(X, codes, W, b, False, pool, 2)
    assert shared[0] == pytest.approx(alone[0], rel=1e-12)
    np.testing.assert_allclose(shared[1], alone[1], rtol=1e-12)
    np.testing.assert_allclose(shared[2], alone[2], rtol=1e-12)
