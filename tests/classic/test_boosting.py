"""Histogram gradient boosting: kernels against NumPy, one tree against a NumPy grower,
accuracy and R² against scikit-learn, missing values, persistence."""

import numba
import numpy as np
import pytest
from nanoml_classic import boosting
from nanoml_classic import boosting_kernels as kernels
from nanoml_classic.boosting import (
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    bin_thresholds,
)

from nanoml import Learner
from nanoml.testing import check_learner


def _problem(n, d=6, classes=3, seed=0, missing=0.0):
    """Classes cut from a nonlinear score of the first features; optional NaN holes."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    score = X[:, 0] + np.sin(2 * X[:, 1]) + 0.5 * X[:, 2] * X[:, 3]
    y = np.digitize(score + 0.3 * rng.standard_normal(n),
                    np.quantile(score, np.linspace(0, 1, classes + 1)[1:-1]))
    X[rng.random(X.shape) < missing] = np.nan
    return X, y


def _binned(X, max_bins=255):
    thresholds, counts = bin_thresholds(X, max_bins, np.random.default_rng(0))
    Xb = np.empty((X.shape[1], X.shape[0]), np.uint8)
    kernels.bin_features(X, thresholds, counts, Xb)
    return Xb, thresholds, counts + 1


def _numpy_histogram(Xb, rows, g, h):
    hist = np.zeros((Xb.shape[0], kernels.N_BINS, 3))
    for f in range(Xb.shape[0]):
        for channel, weight in enumerate((g[rows], h[rows], np.ones(len(rows)))):
            np.add.at(hist[f, :, channel], Xb[f, rows], weight)
    return hist


@pytest.mark.parametrize("cls", [GradientBoostingClassifier, GradientBoostingRegressor])
def test_contract(cls):
    check_learner(cls, params={"max_iter": 5})


def test_binning_matches_searchsorted():
    X, _ = _problem(300, missing=0.1)
    X[:, 5] = np.round(X[:, 5])  # few distinct values: bins at their midpoints
    Xb, thresholds, n_bins = _binned(X, max_bins=16)
    for f in range(X.shape[1]):
        edges = thresholds[f, : n_bins[f] - 1]
        expected = np.where(np.isnan(X[:, f]), kernels.MISSING_BIN,
                            np.searchsorted(edges, X[:, f]))
        np.testing.assert_array_equal(Xb[f], expected)
    assert n_bins[0] == 16 and n_bins[5] == len(np.unique(X[~np.isnan(X[:, 5]), 5]))


@pytest.mark.parametrize("d", [6, 8, 19])  # features go 8 at a time: short, full, tail
def test_histogram_and_subtraction_match_numpy(d):
    X, _ = _problem(400, d=d, missing=0.05)
    Xb, _, _ = _binned(X)
    rng = np.random.default_rng(1)
    g, h = rng.standard_normal(400), rng.random(400)
    rows = rng.permutation(400).astype(np.int64)
    parent = np.empty((X.shape[1], kernels.N_BINS, 3))
    child = np.empty_like(parent)
    kernels.build_histogram(Xb, rows, 0, 400, g, h, parent, np.empty((0, kernels.N_BINS, 3)))
    np.testing.assert_allclose(parent, _numpy_histogram(Xb, rows, g, h), atol=1e-12)
    for end in (150, 151):
        sibling = parent.copy()
        kernels.build_histogram(Xb, rows, 0, end, g, h, child, sibling)
        np.testing.assert_allclose(child, _numpy_histogram(Xb, rows[:end], g, h), atol=1e-12)
        np.testing.assert_allclose(sibling, _numpy_histogram(Xb, rows[end:], g, h),
                                   atol=1e-12)


def test_bin_edges_are_scikit_learns():
    binning = pytest.importorskip("sklearn.ensemble._hist_gradient_boosting.binning")
    rng = np.random.default_rng(3)
    X = np.column_stack([  # few distinct values, many (pixel-like, with ties), continuous
        rng.integers(0, 7, 3000), rng.integers(0, 256, 3000) * (rng.random(3000) < 0.4),
        rng.standard_normal(3000)]).astype(np.float64)
    thresholds, counts = boosting.bin_thresholds(X, 255, rng)
    theirs = binning._BinMapper(n_bins=256, random_state=0).fit(X).bin_thresholds_
    for f in range(X.shape[1]):
        np.testing.assert_array_equal(thresholds[f, : counts[f]], theirs[f])


def _numpy_best_split(Xb, n_bins, rows, g, h, l2, min_leaf):
    """(gain, feature, bin, missing_left) by trying every threshold and missing side."""
    G, H, n = g[rows].sum(), h[rows].sum(), len(rows)
    best = (0.0, -1, -1, False)
    for f in range(Xb.shape[0]):
        codes = Xb[f, rows]
        missing = codes == kernels.MISSING_BIN
        for b in range(n_bins[f]):
            for missing_left in ((False, True) if missing.any() else (None,)):
                left = (codes <= b) & ~missing
                left |= missing & bool(missing_left)
                if missing_left is None:
                    missing_left = left.sum() >= n - left.sum()
                if min(left.sum(), n - left.sum()) < min_leaf:
                    continue
                gl, hl = g[rows][left].sum(), h[rows][left].sum()
                gain = gl**2 / (hl + l2) + (G - gl) ** 2 / (H - hl + l2) - G**2 / (H + l2)
                if gain > best[0] + 1e-9:
                    best = (gain, f, b, bool(missing_left))
    return best


def _numpy_tree_predictions(Xb, n_bins, g, h, params):
    """Leaf-wise growth by the NumPy best split: the value each row's leaf gives it."""
    l2, min_leaf = params["l2_regularization"], params["min_samples_leaf"]
    leaves = [np.arange(Xb.shape[1])]
    splits = [_numpy_best_split(Xb, n_bins, leaves[0], g, h, l2, min_leaf)]
    while len(leaves) < params["max_leaf_nodes"]:
        k = int(np.argmax([s[0] for s in splits]))
        gain, f, b, missing_left = splits[k]
        if gain <= 0:
            break
        rows, codes = leaves[k], Xb[f, leaves[k]]
        left = np.where(codes == kernels.MISSING_BIN, missing_left, codes <= b)
        leaves[k:k + 1] = [rows[left], rows[~left]]
        splits[k:k + 1] = [_numpy_best_split(Xb, n_bins, r, g, h, l2, min_leaf)
                           for r in (rows[left], rows[~left])]
    out = np.empty(Xb.shape[1])
    for rows in leaves:
        out[rows] = -params["learning_rate"] * g[rows].sum() / (h[rows].sum() + l2)
    return out


@pytest.mark.parametrize("direct_rows", [0, 10**9])  # stored histograms; rows only
def test_one_tree_matches_numpy_grower(direct_rows, monkeypatch):
    monkeypatch.setattr(boosting, "DIRECT_ROWS", direct_rows)
    X, y = _problem(240, d=4, missing=0.1)
    y = y.astype(np.float64)
    params = {"max_iter": 1, "max_leaf_nodes": 6, "min_samples_leaf": 10,
              "l2_regularization": 1.0, "learning_rate": 0.5, "max_bins": 32}
    model = GradientBoostingRegressor(**params).fit(X, y)
    Xb, _, n_bins = _binned(X, max_bins=32)
    g = (model.baseline_[0] - y).astype(np.float32).astype(np.float64)  # as the model does
    h = np.ones_like(y)
    expected = _numpy_tree_predictions(Xb, n_bins, g, h, params)
    assert (model.left_ != kernels.LEAF).sum() == params["max_leaf_nodes"] - 1
    np.testing.assert_allclose(model.predict(X) - model.baseline_[0], expected, atol=1e-12)


def test_missing_values_go_to_the_better_side():
    rng = np.random.default_rng(0)
    x = rng.random(400)
    for missing_class in (0, 1):
        X = x[:, None].copy()
        y = (x > 0.5).astype(np.int64)
        X[:60, 0] = np.nan
        y[:60] = missing_class
        model = GradientBoostingClassifier(max_iter=3, max_leaf_nodes=2).fit(X, y)
        # class 0 lies left (x <= 0.5), so missing rows of class 0 must go left
        assert model.missing_left_[0] == (missing_class == 0)
        assert (model.predict(np.full((5, 1), np.nan)) == missing_class).all()


def test_stored_and_direct_searches_grow_the_same_trees(monkeypatch):
    X, y = _problem(1500, d=11, missing=0.05)  # 11 features: a full group and a tail
    fits = []
    for direct_rows in (0, 10**9):
        monkeypatch.setattr(boosting, "DIRECT_ROWS", direct_rows)
        fits.append(GradientBoostingClassifier(max_iter=4).fit(X, y))
    stored, direct = fits
    for name in ("feature_", "threshold_", "left_", "missing_left_"):
        np.testing.assert_array_equal(getattr(stored, name), getattr(direct, name))
    np.testing.assert_allclose(stored.value_, direct.value_, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("direct_rows", [0, 10**9])
def test_same_model_whatever_the_thread_count(direct_rows, monkeypatch):
    monkeypatch.setattr(boosting, "DIRECT_ROWS", direct_rows)
    X, y = _problem(300)
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        serial = GradientBoostingClassifier(max_iter=5).fit(X, y)
    finally:
        numba.set_num_threads(threads)
    parallel = GradientBoostingClassifier(max_iter=5).fit(X, y)
    for name in ("feature_", "threshold_", "left_", "value_"):
        np.testing.assert_array_equal(getattr(serial, name), getattr(parallel, name))


def test_classifier_accuracy_matches_sklearn():
    ensemble = pytest.importorskip("sklearn.ensemble", reason="scikit-learn is the reference")
    ours, theirs = [], []
    for seed in range(3):
        X, y = _problem(800, seed=seed, missing=0.05)
        model = GradientBoostingClassifier(max_iter=20, seed=seed).fit(X[:500], y[:500])
        reference = ensemble.HistGradientBoostingClassifier(
            max_iter=20, early_stopping=False, random_state=seed).fit(X[:500], y[:500])
        ours.append(model.score(X[500:], y[500:]))
        theirs.append(reference.score(X[500:], y[500:]))
    assert np.mean(ours) >= np.mean(theirs) - 0.015


def test_binary_probabilities_match_sklearn():
    ensemble = pytest.importorskip("sklearn.ensemble", reason="scikit-learn is the reference")
    X, y = _problem(500, classes=2)
    model = GradientBoostingClassifier(max_iter=10).fit(X, y)
    reference = ensemble.HistGradientBoostingClassifier(max_iter=10, early_stopping=False)
    proba = model.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert np.abs(proba - reference.fit(X, y).predict_proba(X)).mean() < 0.02


def test_regressor_r2_matches_sklearn():
    ensemble = pytest.importorskip("sklearn.ensemble", reason="scikit-learn is the reference")
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, size=(900, 4))
    y = np.sin(X[:, 0]) * X[:, 1] + 0.1 * rng.standard_normal(900)
    ours = GradientBoostingRegressor(max_iter=50).fit(X[:600], y[:600])
    theirs = ensemble.HistGradientBoostingRegressor(max_iter=50, early_stopping=False)
    theirs.fit(X[:600], y[:600])
    assert ours.score(X[600:], y[600:]) >= theirs.score(X[600:], y[600:]) - 0.01


def test_early_stopping_stops_and_saves(tmp_path):
    X, y = _problem(400, classes=2, seed=1)
    labels = np.array(["no", "yes"])[y]
    model = GradientBoostingClassifier(max_iter=200, early_stopping=True, learning_rate=0.5)
    model.fit(X, labels)
    assert model.n_iter_ < 200 and len(model.validation_score_) == model.n_iter_ + 1
    X[:20, 0] = np.nan
    model.save(tmp_path / "model.npz")
    loaded = Learner.load(tmp_path / "model.npz")
    assert type(loaded) is GradientBoostingClassifier
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X))
