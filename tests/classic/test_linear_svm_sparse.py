"""linear-svm on CSR rows: the same solver steps as on dense rows, hence the same model."""

import numpy as np
import pytest
import scipy.sparse
from nanoml_classic.logistic import LinearSVM
from nanoml_classic.logistic_kernels import hinge_dual_cd, hinge_dual_cd_csr


def _sparse_rows(seed=0, n=60, d=25):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * (rng.random((n, d)) < 0.2)
    return X, rng.integers(0, 3, n)


def test_csr_kernel_takes_the_dense_kernels_steps():
    X, y = _sparse_rows()
    signs = np.where(y == 0, 1.0, -1.0)
    S = scipy.sparse.csr_matrix(X)
    dense, sparse = np.zeros(X.shape[1] + 1), np.zeros(X.shape[1] + 1)
    epochs = hinge_dual_cd(X, signs, 0.5, 500, 1e-8, np.random.default_rng(1), dense)
    used = hinge_dual_cd_csr(S.indptr, S.indices, S.data, X.shape[1], signs, 0.5, 500, 1e-8,
                             np.random.default_rng(1), sparse)
    assert used == epochs
    np.testing.assert_array_equal(sparse, dense)
    assert np.abs(dense).max() > 0.1  # a real fit, not two zero vectors


@pytest.mark.parametrize("n_classes", [2, 3])
def test_sparse_fit_equals_dense_fit(n_classes):
    X, y = _sparse_rows(seed=n_classes)
    y %= n_classes
    S = scipy.sparse.csr_matrix(X)
    # sparse rows are never standardised: the dense model to match is the unscaled one
    dense = LinearSVM(C=0.3, standardize=False).fit(X, y)
    sparse = LinearSVM(C=0.3).fit(S, y)
    for name in ("coef_", "intercept_"):
        np.testing.assert_array_equal(getattr(sparse, name), getattr(dense, name))
    # the Platt sigmoids see scores from a sparse product: equal up to rounding
    for name in ("prob_a_", "prob_b_"):
        np.testing.assert_allclose(getattr(sparse, name), getattr(dense, name), rtol=1e-12)
    np.testing.assert_allclose(sparse.predict_proba(S), dense.predict_proba(X), rtol=1e-12)
    np.testing.assert_array_equal(sparse.predict(S), dense.predict(X))
