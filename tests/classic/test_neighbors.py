"""k-nearest neighbours: the selection kernel against NumPy, the learner against sklearn."""

import numpy as np
import pytest
from nanoml_classic import neighbors
from nanoml_classic.neighbors import KNeighborsClassifier
from nanoml_classic.neighbors_kernels import merge_smallest

from nanoml import Learner
from nanoml.data import load_dataset
from nanoml.errors import InputError, ParameterError
from nanoml.testing import check_learner


def test_contract():
    check_learner(KNeighborsClassifier)


@pytest.mark.parametrize("k", [1, 4])
def test_merge_smallest_matches_a_full_sort(k):
    rng = np.random.default_rng(0)
    dist = rng.integers(0, 30, size=(7, 90)).astype(np.float64)  # many ties
    best_dist, best_index = np.full((7, k), np.inf), np.full((7, k), -1)
    # zero norms and cross products of -dist/2 make the kernel's distances exactly `dist`
    cross, query_sq, ref_sq = -dist / 2, np.zeros(7), np.zeros(90)
    for first in range(0, 90, 25):  # blocks of 25 columns, the last one partial
        cols = slice(first, first + 25)
        merge_smallest(cross[:, cols], query_sq, ref_sq[cols], first, best_dist, best_index)
    order = np.argsort(dist, axis=1, kind="stable")[:, :k]  # ties: lower index first
    np.testing.assert_array_equal(best_index, order)
    np.testing.assert_array_equal(best_dist, np.take_along_axis(dist, order, axis=1))


def test_kneighbors_in_small_blocks_matches_numpy(monkeypatch):
    """Force many query and training blocks, so the running merge is exercised."""
    monkeypatch.setattr(neighbors, "QUERY_BLOCK", 5)
    monkeypatch.setattr(neighbors, "CROSS_BLOCK", 5 * 16)
    monkeypatch.setattr(neighbors, "SERIAL_PAIRS", 0)  # through the thread pool
    rng = np.random.default_rng(1)
    X, queries = 1e4 + rng.standard_normal((203, 3)), 1e4 + rng.standard_normal((41, 3))
    dist, index = KNeighborsClassifier(n_neighbors=6).fit(X, np.arange(203) % 2).kneighbors(
        queries
    )
    full = np.sqrt(((queries[:, None, :] - X[None, :, :]) ** 2).sum(axis=2))
    np.testing.assert_array_equal(index, np.argsort(full, axis=1)[:, :6])
    np.testing.assert_allclose(dist, np.sort(full, axis=1)[:, :6], rtol=1e-9)


@pytest.mark.parametrize("weights", ["uniform", "distance"])
@pytest.mark.parametrize("dataset", ["iris", "digits"])
def test_matches_sklearn(dataset, weights):
    sk_neighbors = pytest.importorskip("sklearn.neighbors")
    data = load_dataset(dataset)
    model = KNeighborsClassifier(n_neighbors=7, weights=weights).fit(data.X_train, data.y_train)
    reference = sk_neighbors.KNeighborsClassifier(n_neighbors=7, weights=weights)
    reference.fit(data.X_train, data.y_train)
    dist, index = model.kneighbors(data.X_test)
    ref_dist, _ = reference.kneighbors(data.X_test)
    np.testing.assert_allclose(dist, ref_dist, rtol=1e-7, atol=1e-7)
    np.testing.assert_allclose(
        model.predict_proba(data.X_test), reference.predict_proba(data.X_test), atol=1e-7
    )
    assert model.score(data.X_test, data.y_test) >= reference.score(data.X_test, data.y_test) - 0.01


def test_distance_weights_trust_an_exact_match():
    X = np.array([[0.0, 0.0], [1.0, 0.0], [1.1, 0.0], [1.2, 0.0]])
    model = KNeighborsClassifier(n_neighbors=4, weights="distance").fit(X, [0, 1, 1, 1])
    np.testing.assert_array_equal(model.predict_proba(X[:1]), [[1.0, 0.0]])
    uniform = KNeighborsClassifier(n_neighbors=4).fit(X, [0, 1, 1, 1])
    np.testing.assert_array_equal(uniform.predict_proba(X[:1]), [[0.25, 0.75]])


def test_string_labels_round_trip(tmp_path):
    data = load_dataset("iris")
    names = np.array(["setosa", "versicolor", "virginica"])
    model = KNeighborsClassifier().fit(data.X_train, names[data.y_train])
    path = tmp_path / "knn.npz"
    model.save(path)
    loaded = Learner.load(path)
    np.testing.assert_array_equal(loaded.predict(data.X_test), model.predict(data.X_test))
    assert np.mean(loaded.predict(data.X_test) == names[data.y_test]) > 0.9


def test_bad_input_raises():
    X = np.random.default_rng(0).standard_normal((10, 2))
    with pytest.raises(InputError, match="class"):
        KNeighborsClassifier().fit(X, np.zeros(10))
    with pytest.raises(InputError, match="empty"):
        KNeighborsClassifier().fit(np.empty((0, 2)), [])
    with pytest.raises(ParameterError, match="n_neighbors=11 exceeds"):
        KNeighborsClassifier(n_neighbors=11).fit(X, np.arange(10) % 2)
    with pytest.raises(ParameterError, match="weights"):
        KNeighborsClassifier(weights="gaussian").fit(X, np.arange(10) % 2)
