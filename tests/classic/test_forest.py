"""Random forests: accuracy against scikit-learn, reproducibility across thread counts."""

import numba
import numpy as np
import pytest
from nanoml_classic.forest import RandomForestClassifier, RandomForestRegressor

from nanoml import Learner
from nanoml.data import load_dataset
from nanoml.errors import InputError, ParameterError
from nanoml.testing import check_learner


@pytest.mark.parametrize("cls", [RandomForestClassifier, RandomForestRegressor])
def test_contract(cls):
    check_learner(cls, params={"n_estimators": 5})


@pytest.mark.parametrize("dataset", ["digits", "breast-cancer"])
def test_classifier_accuracy_matches_sklearn(dataset):
    ensemble = pytest.importorskip("sklearn.ensemble")
    ours, theirs = [], []
    for seed in range(2):
        data = load_dataset(dataset, seed=seed)
        model = RandomForestClassifier(seed=seed).fit(data.X_train, data.y_train)
        reference = ensemble.RandomForestClassifier(random_state=seed, n_jobs=2)
        reference.fit(data.X_train, data.y_train)
        ours.append(model.score(data.X_test, data.y_test))
        theirs.append(reference.score(data.X_test, data.y_test))
    assert np.mean(ours) >= np.mean(theirs) - 0.01


def test_regressor_r2_matches_sklearn():
    ensemble = pytest.importorskip("sklearn.ensemble")
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, size=(600, 4))
    y = np.sin(X[:, 0]) * X[:, 1] + 0.1 * rng.standard_normal(600)
    X_test = rng.uniform(-2, 2, size=(300, 4))
    y_test = np.sin(X_test[:, 0]) * X_test[:, 1]
    ours = RandomForestRegressor(n_estimators=50).fit(X, y).score(X_test, y_test)
    theirs = ensemble.RandomForestRegressor(n_estimators=50, random_state=0, n_jobs=2)
    assert ours >= theirs.fit(X, y).score(X_test, y_test) - 0.01


def test_same_forest_whatever_the_thread_count():
    data = load_dataset("breast-cancer")
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        serial = RandomForestClassifier(n_estimators=12, seed=3).fit(data.X_train, data.y_train)
    finally:
        numba.set_num_threads(threads)
    parallel = RandomForestClassifier(n_estimators=12, seed=3).fit(data.X_train, data.y_train)
    for name in ("feature_", "threshold_", "left_", "right_", "value_", "roots_"):
        np.testing.assert_array_equal(getattr(serial, name), getattr(parallel, name))
    other = RandomForestClassifier(n_estimators=12, seed=4).fit(data.X_train, data.y_train)
    assert not np.array_equal(other.threshold_, parallel.threshold_)


def test_probabilities_average_the_trees():
    data = load_dataset("iris")
    forest = RandomForestClassifier(n_estimators=9).fit(data.X_train, data.y_train)
    proba = forest.predict_proba(data.X_test)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    per_tree = []
    for t, root in enumerate(forest.roots_):
        single = RandomForestClassifier(n_estimators=1)
        end = forest.roots_[t + 1] if t + 1 < len(forest.roots_) else len(forest.feature_)
        single.feature_ = forest.feature_[root:end]
        single.threshold_ = forest.threshold_[root:end]
        single.left_ = np.where(forest.left_[root:end] >= 0, forest.left_[root:end] - root, -1)
        single.right_ = np.where(forest.right_[root:end] >= 0, forest.right_[root:end] - root, -1)
        single.value_ = forest.value_[root:end]
        single.roots_ = np.zeros(1, dtype=np.int64)
        single.classes_, single.n_features_in_ = forest.classes_, forest.n_features_in_
        per_tree.append(single.predict_proba(data.X_test))
    np.testing.assert_allclose(proba, np.mean(per_tree, axis=0), rtol=1e-12)


def test_string_labels_round_trip(tmp_path):
    data = load_dataset("iris")
    names = np.array(["setosa", "versicolor", "virginica"])
    model = RandomForestClassifier(n_estimators=10).fit(data.X_train, names[data.y_train])
    assert set(model.predict(data.X_test)) <= set(names)
    path = tmp_path / "forest.npz"
    model.save(path)
    loaded = Learner.load(path)
    np.testing.assert_array_equal(loaded.predict(data.X_test), model.predict(data.X_test))


def test_bad_input_raises():
    X = np.random.default_rng(0).standard_normal((30, 4))
    with pytest.raises(InputError, match="class"):
        RandomForestClassifier(n_estimators=3).fit(X, np.ones(30))
    with pytest.raises(InputError, match="empty"):
        RandomForestRegressor(n_estimators=3).fit(np.empty((0, 4)), np.empty(0))
    with pytest.raises(ParameterError, match="n_estimators"):
        RandomForestClassifier(n_estimators=0).fit(X, np.arange(30) % 2)
    with pytest.raises(ParameterError, match="max_features"):
        RandomForestRegressor(max_features=0.0).fit(X, np.arange(30.0))
