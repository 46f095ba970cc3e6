"""PCA against scikit-learn (both solver paths) and a plain NumPy SVD."""

import numpy as np
import pytest
from nanoml_classic.pca import PCA

from nanoml.errors import InputError, ParameterError
from nanoml.testing import check_learner


def _data(n, d, seed=0, offset=0.0):
    """Correlated features with decaying variances, so components are well separated."""
    rng = np.random.default_rng(seed)
    scales = 2.0 ** -np.arange(d, dtype=np.float64)
    mixing = np.linalg.qr(rng.standard_normal((d, d)))[0]
    return (rng.standard_normal((n, d)) * scales) @ mixing + offset + rng.uniform(-3, 3, d)


def _assert_equal_up_to_sign(a, b):
    signs = np.sign(np.sum(a * b, axis=1, keepdims=True))
    np.testing.assert_allclose(a, signs * b, rtol=1e-7, atol=1e-9)


def test_contract():
    check_learner(PCA)
    check_learner(PCA, params={"n_components": 2, "whiten": True})


@pytest.mark.parametrize("shape", [(400, 8), (30, 12)], ids=["covariance-eigh", "svd"])
@pytest.mark.parametrize("whiten", [False, True])
def test_matches_sklearn(shape, whiten):
    decomposition = pytest.importorskip("sklearn.decomposition")
    X = _data(*shape)
    ours = PCA(n_components=5, whiten=whiten).fit(X)
    theirs = decomposition.PCA(n_components=5, whiten=whiten).fit(X)
    _assert_equal_up_to_sign(ours.components_, theirs.components_)
    np.testing.assert_allclose(ours.explained_variance_, theirs.explained_variance_, rtol=1e-9)
    np.testing.assert_allclose(
        ours.explained_variance_ratio_, theirs.explained_variance_ratio_, rtol=1e-9
    )
    np.testing.assert_allclose(ours.mean_, theirs.mean_, rtol=1e-12)
    Z = ours.transform(X)
    _assert_equal_up_to_sign(Z.T, theirs.transform(X).T)
    restored = theirs.inverse_transform(theirs.transform(X))
    np.testing.assert_allclose(ours.inverse_transform(Z), restored, atol=1e-9)


def test_sign_convention_and_whitened_variance():
    X = _data(300, 6)
    model = PCA(n_components=4, whiten=True).fit(X)
    rows = np.arange(4)
    largest = model.components_[rows, np.abs(model.components_).argmax(axis=1)]
    assert (largest > 0).all()
    np.testing.assert_allclose(model.transform(X).var(axis=0, ddof=1), 1.0, rtol=1e-9)


def test_fraction_keeps_as_many_components_as_sklearn():
    decomposition = pytest.importorskip("sklearn.decomposition")
    X = _data(400, 10)
    for fraction in (0.5, 0.8, 0.95, 0.999):
        ours = PCA(n_components=fraction).fit(X)
        theirs = decomposition.PCA(n_components=fraction).fit(X)
        assert ours.components_.shape == theirs.components_.shape
        assert ours.explained_variance_ratio_.sum() > fraction
        np.testing.assert_allclose(
            ours.explained_variance_ratio_, theirs.explained_variance_ratio_, rtol=1e-9
        )
        _assert_equal_up_to_sign(ours.components_, theirs.components_)


@pytest.mark.parametrize("offset", [30.0, 1e6])  # below and above the re-centring threshold
def test_covariance_path_is_exact_far_from_the_origin(offset):
    X = _data(500, 5, offset=offset)
    model = PCA(n_components=None).fit(X)
    s = np.linalg.svd(X - X.mean(axis=0), compute_uv=False)
    np.testing.assert_allclose(model.explained_variance_, s**2 / (X.shape[0] - 1), rtol=1e-6)


def test_whole_float_counts_components():
    X = _data(60, 8)
    assert PCA(n_components=3.0).fit(X).components_.shape == (3, 8)
    assert PCA(n_components=1.0).fit(X).components_.shape == (1, 8)


def test_evaluate_and_score():
    X = _data(400, 8)
    model = PCA(n_components=3).fit(X)
    results = model.evaluate(X)
    assert results["explained_variance_ratio"] == pytest.approx(
        model.explained_variance_ratio_.sum(), rel=1e-9
    )
    projected = (X - model.mean_) @ model.components_.T @ model.components_ + model.mean_
    assert results["reconstruction_mse"] == pytest.approx(np.mean((X - projected) ** 2), rel=1e-9)
    assert model.score(X) == results["explained_variance_ratio"]
    np.testing.assert_array_equal(model.predict(X), model.transform(X))


@pytest.mark.parametrize(
    "value, words",
    [(0, r"\(0.0, inf\]"), (9, "exceeds"), (9.0, "exceeds"), (2.5, "whole number"),
     (-0.5, "n_components"), ("all", "n_components"), (True, "n_components")],
)
def test_bad_n_components(value, words):
    with pytest.raises(ParameterError, match=words):
        PCA(n_components=value).fit(_data(40, 8))


def test_bad_input():
    with pytest.raises(ParameterError, match="whiten"):
        PCA(whiten="yes").fit(_data(40, 8))
    with pytest.raises(InputError, match="at least 2"):
        PCA(n_components=1).fit(_data(1, 8))
    with pytest.raises(InputError, match="empty"):
        PCA().fit(np.empty((0, 3)))
    model = PCA(n_components=3).fit(_data(40, 8))
    with pytest.raises(InputError, match="features"):
        model.inverse_transform(np.zeros((2, 4)))


def _known_spectrum(n, d, singular_values, seed=0):
    """Centred-data SVD U·diag(s)·Vᵀ plus an offset: the exact answer is known."""
    rng = np.random.default_rng(seed)
    k = len(singular_values)
    Z = rng.standard_normal((n, k))
    U = np.linalg.qr(Z - Z.mean(axis=0))[0]  # centred columns: the offset is the mean
    V = np.linalg.qr(rng.standard_normal((d, k)))[0]
    return (U * singular_values) @ V.T + rng.uniform(-1, 1, d), V.T


@pytest.mark.parametrize("shape", [(120, 520), (520, 120)], ids=["wide", "tall"])
def test_randomized_route_recovers_a_known_spectrum(shape, monkeypatch):
    from nanoml_classic import pca

    real, calls = pca._randomized_svd, []

    def spy(*args, **kwargs):
        calls.append(args[1])
        return real(*args, **kwargs)

    monkeypatch.setattr(pca, "_randomized_svd", spy)
    s = 100.0 * 0.5 ** np.arange(20)
    X, V = _known_spectrum(*shape, s)
    model = PCA(n_components=5).fit(X)  # "auto": more than 500 rows or columns, 5 < 80 %
    assert calls == [5], "the randomized route was not taken"
    np.testing.assert_allclose(model.explained_variance_, s[:5] ** 2 / (shape[0] - 1),
                               rtol=1e-9)
    np.testing.assert_allclose(model.explained_variance_ratio_, s[:5] ** 2 / np.sum(s * s),
                               rtol=1e-9)
    _assert_equal_up_to_sign(model.components_, V[:5])
    rows = np.arange(5)
    assert (model.components_[rows, np.abs(model.components_).argmax(axis=1)] > 0).all()


def test_randomized_matches_sklearn_on_noisy_data():
    decomposition = pytest.importorskip("sklearn.decomposition")
    X = _data(520, 60, seed=3)
    ours = PCA(n_components=10, svd_solver="randomized").fit(X)
    theirs = decomposition.PCA(n_components=10, svd_solver="randomized", random_state=0).fit(X)
    _assert_equal_up_to_sign(ours.components_, theirs.components_)
    np.testing.assert_allclose(ours.explained_variance_, theirs.explained_variance_, rtol=1e-9)
    np.testing.assert_allclose(ours.explained_variance_ratio_,
                               theirs.explained_variance_ratio_, rtol=1e-9)


@pytest.mark.parametrize("offset", [0.0, 1e3])  # the second re-centres the covariance
def test_float32_covariance_route_matches_float64(offset):
    X = _data(2000, 30, seed=1, offset=offset)
    exact = PCA(n_components=5).fit(X)
    single = PCA(n_components=5).fit(X.astype(np.float32))
    assert single.components_.dtype == np.float64
    np.testing.assert_allclose(single.mean_, exact.mean_, rtol=1e-6)
    np.testing.assert_allclose(single.explained_variance_, exact.explained_variance_,
                               rtol=2e-4)
    np.testing.assert_allclose(single.components_, exact.components_, atol=2e-3)


def test_float32_beyond_its_squares_runs_in_float64():
    X = _data(500, 6, seed=2) * 1e25
    single = PCA(n_components=3).fit(X.astype(np.float32))
    exact = PCA(n_components=3).fit(X.astype(np.float32).astype(np.float64))
    np.testing.assert_allclose(single.explained_variance_, exact.explained_variance_,
                               rtol=1e-9)


def test_column_sums_and_extents_match_numpy():
    from nanoml_classic.pca_kernels import column_sums_and_extents

    X = np.random.default_rng(0).standard_normal((50, 7)).astype(np.float32)
    sums, extents = np.zeros(7), np.zeros(7)
    column_sums_and_extents(X, sums, extents)
    np.testing.assert_allclose(sums, X.astype(np.float64).sum(axis=0), rtol=1e-12)
    np.testing.assert_array_equal(extents, np.abs(X).max(axis=0))


def test_bad_solver():
    with pytest.raises(ParameterError, match="svd_solver"):
        PCA(svd_solver="lapack").fit(_data(40, 8))
    with pytest.raises(ParameterError, match="whole number"):
        PCA(n_components=0.9, svd_solver="randomized").fit(_data(40, 8))
