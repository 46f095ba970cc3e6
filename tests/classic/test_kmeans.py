"""k-means: kernels against NumPy, the learner against scikit-learn from the same centres."""

import numpy as np
import pytest
from nanoml_classic.kmeans import KMeans, _shifted
from nanoml_classic.kmeans_kernels import assign, centred_norms, lloyd_step

from nanoml import Learner
from nanoml.errors import InputError, ParameterError
from nanoml.metrics import adjusted_rand_index
from nanoml.testing import check_learner


def _blobs(n=600, d=3, centres=5, spread=2.5, seed=0):
    """Overlapping Gaussian blobs: Lloyd needs several iterations to settle on them."""
    rng = np.random.default_rng(seed)
    means = rng.uniform(-10, 10, size=(centres, d))
    truth = rng.integers(centres, size=n)
    return means[truth] + spread * rng.standard_normal((n, d)), truth


def _reference_distances(X, centres):
    return ((X[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)


@pytest.mark.parametrize("offset", [0.0, 1e8], ids=["centred", "far-from-origin"])
@pytest.mark.parametrize("n", [1000, 1003])  # 1003: the last block of four rows is partial
def test_assign_matches_numpy(n, offset):
    X, _ = _blobs(n=n)
    X += offset
    centres = X[:4].copy()
    labels, distances = np.empty(n, dtype=np.int64), np.empty(n)
    assign(X, centres, *_shifted(centres, X.mean(axis=0)), labels, distances)
    full = _reference_distances(X, centres)
    np.testing.assert_array_equal(labels, full.argmin(axis=1))
    np.testing.assert_allclose(distances, full.min(axis=1), rtol=1e-12)


@pytest.mark.parametrize("offset", [0.0, 1e8], ids=["centred", "far-from-origin"])
@pytest.mark.parametrize("n", [1000, 1003])
def test_lloyd_step_matches_serial_numpy(n, offset):
    X, _ = _blobs(n=n)
    X += offset
    centres = X[:4].copy()
    previous = np.random.default_rng(1).integers(4, size=n)
    labels, distances = previous.copy(), np.empty(n)
    sums, counts = np.empty((7, 4, 3)), np.empty((7, 4), dtype=np.int64)
    mean, x_sq = X.mean(axis=0), np.empty(n)
    centred_norms(X, mean, x_sq)
    np.testing.assert_allclose(x_sq, ((X - mean) ** 2).sum(axis=1), rtol=1e-12)
    shifted, offsets = _shifted(centres, mean)
    changed = lloyd_step(X, x_sq, shifted, offsets, labels, distances, sums, counts)

    full = _reference_distances(X, centres)
    expected = full.argmin(axis=1)
    np.testing.assert_array_equal(labels, expected)
    # from ||x - mean||² + 2·key, whose dot product rounds at about eps·|x|·|c - mean|
    np.testing.assert_allclose(distances, full.min(axis=1), rtol=1e-9, atol=1e-9 + 1e-14 * offset)
    assert changed == np.count_nonzero(previous != expected)
    ref_sums = np.zeros((4, 3))
    np.add.at(ref_sums, expected, X)
    np.testing.assert_allclose(sums.sum(axis=0), ref_sums, rtol=1e-12)
    np.testing.assert_array_equal(counts.sum(axis=0), np.bincount(expected, minlength=4))


def test_contract():
    check_learner(KMeans)
    check_learner(KMeans, params={"n_clusters": 4, "n_init": 2, "seed": 3})


def test_matches_sklearn_from_the_same_centres():
    sklearn_cluster = pytest.importorskip("sklearn.cluster")
    X, _ = _blobs()
    rng = np.random.default_rng(0)
    for _ in range(3):
        init = X[rng.choice(X.shape[0], 5, replace=False)]
        ours = KMeans(n_clusters=5, init=init).fit(X)
        theirs = sklearn_cluster.KMeans(n_clusters=5, init=init, n_init=1).fit(X)
        assert ours.n_iter_ == theirs.n_iter_ > 2
        assert ours.inertia_ == pytest.approx(theirs.inertia_, rel=0.01)
        assert adjusted_rand_index(ours.labels_, theirs.labels_) == 1.0
        np.testing.assert_allclose(ours.cluster_centers_, theirs.cluster_centers_, atol=1e-8)


def test_empty_cluster_is_relocated_like_sklearn():
    sklearn_cluster = pytest.importorskip("sklearn.cluster")
    X, _ = _blobs()
    init = X[:5].copy()
    init[4] = 1e3  # no row is nearest to this centre at the first step
    ours = KMeans(n_clusters=5, init=init).fit(X)
    theirs = sklearn_cluster.KMeans(n_clusters=5, init=init, n_init=1).fit(X)
    assert np.bincount(ours.labels_, minlength=5).min() > 0
    assert ours.inertia_ == pytest.approx(theirs.inertia_, rel=0.01)


@pytest.mark.parametrize("offset", [0.0, 1e9], ids=["centred", "far-from-origin"])
def test_kmeans_plusplus_finds_separated_blobs(offset):
    X, truth = _blobs(spread=0.3)
    X += offset
    for seed in range(5):
        model = KMeans(n_clusters=5, seed=seed).fit(X)
        assert adjusted_rand_index(truth, model.labels_) == 1.0


def test_more_starts_never_raise_inertia_and_seed_reproduces():
    X, _ = _blobs()
    one = KMeans(n_clusters=5, seed=2).fit(X)
    again = KMeans(n_clusters=5, seed=2).fit(X)
    np.testing.assert_array_equal(one.labels_, again.labels_)
    many = KMeans(n_clusters=5, n_init=6, seed=2).fit(X)
    assert many.inertia_ <= one.inertia_


def test_predict_score_and_evaluate():
    X, truth = _blobs(spread=0.3)
    model = KMeans(n_clusters=5).fit(X)
    full = _reference_distances(X[:50], model.cluster_centers_)
    np.testing.assert_array_equal(model.predict(X[:50]), full.argmin(axis=1))
    assert model.score(X) == pytest.approx(-model.inertia_, rel=1e-12)
    results = model.evaluate(X[:50], truth[:50])
    assert results["inertia"] == pytest.approx(full.min(axis=1).sum(), rel=1e-12)
    assert results["adjusted_rand_index"] == 1.0
    assert set(model.evaluate(X)) == {"inertia"}


def test_array_init_survives_save_and_load(tmp_path):
    X, _ = _blobs()
    model = KMeans(n_clusters=5, init=X[:5].copy()).fit(X)
    model.save(tmp_path / "model.npz")
    loaded = Learner.load(tmp_path / "model.npz")
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_array_equal(np.asarray(loaded.init), X[:5])


@pytest.mark.parametrize(
    "params, error, words",
    [
        ({"init": "random"}, ParameterError, "init"),
        ({"init": np.zeros((2, 3))}, ParameterError, "(3, 3)"),
        ({"init": np.zeros((3, 3)), "n_init": 2}, ParameterError, "n_init"),
        ({"n_clusters": 0}, ParameterError, "n_clusters"),
        ({"n_clusters": 2.5}, ParameterError, "n_clusters"),
        ({"tol": -1.0}, ParameterError, "tol"),
        ({"n_clusters": 61}, InputError, "n_clusters=61"),
    ],
)
def test_bad_parameters(params, error, words):
    X, _ = _blobs(n=60)
    with pytest.raises(error, match=words.replace("(", r"\(").replace(")", r"\)")):
        KMeans(**params).fit(X)


@pytest.mark.parametrize(
    "X, words",
    [(np.empty((0, 3)), "empty"), (np.ones(5), "2-D"), (np.array([[1.0, np.inf]]), "infinity")],
)
def test_bad_input(X, words):
    with pytest.raises(InputError, match=words):
        KMeans(n_clusters=1).fit(X)


@pytest.mark.parametrize("offset, dtype", [(0.0, np.float32), (1e4, np.float64)],
                         ids=["float32-kept", "far-from-origin-widened"])
def test_float32_data_clusters_as_its_float64_copy_does(offset, dtype, monkeypatch):
    """Float32 data is clustered in float32 unless its mean dwarfs its spread."""
    from nanoml_classic import kmeans

    X, _ = _blobs(n=2000, d=5, spread=1.0)
    X = (X + offset).astype(np.float32)
    init = X[:5]
    seen = []
    step = kmeans.lloyd_step

    def spy(data, *args):
        seen.append(data.dtype)
        return step(data, *args)

    monkeypatch.setattr(kmeans, "lloyd_step", spy)
    single = KMeans(n_clusters=5, init=init).fit(X)
    assert set(seen) == {np.dtype(dtype)}
    wide = KMeans(n_clusters=5, init=init.astype(np.float64)).fit(X.astype(np.float64))
    assert single.n_iter_ == wide.n_iter_
    np.testing.assert_array_equal(single.labels_, wide.labels_)
    assert single.inertia_ == pytest.approx(wide.inertia_, rel=1e-5)
    assert single.cluster_centers_.dtype == np.float64
