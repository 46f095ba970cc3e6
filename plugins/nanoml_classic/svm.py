"""Kernel support vector machine (C-SVC), solved by SMO; one-vs-one for several classes."""

import warnings
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from nanoml import Learner
from nanoml.validation import check_array, check_choice, check_number, encode_labels
from nanoml_classic import svm_kernels
from nanoml_classic.distances import row_norms_squared, squared_distances

# Up to this many entries, Q is computed whole before SMO starts; beyond, rows are
# computed as the solver asks for them and kept in a cache of CACHE_BYTES (scikit-learn's
# default cache_size), as LIBSVM does.
FULL_MATRIX = 2**22
CACHE_BYTES = 200 * 2**20
# Kernel blocks are cut to at most this many multiply-adds, a size OpenBLAS runs on the
# calling thread: the class pairs are solved on a thread pool, and BLAS threads on top
# would only fight it for the cores.
BLOCK_WORK = 2**18


def kernel_matrix(A, B, kernel, gamma, A_sq=None, B_sq=None):
    """K(a_i, b_j) for every pair: a·b (linear) or exp(-gamma ||a - b||²) (rbf)."""
    if kernel == "linear":
        return A @ B.T
    out = squared_distances(A, B, A_sq, B_sq)
    out *= -gamma
    np.exp(out, out=out)
    return out


def _blocks(n_rows, work_per_row):
    """Row slices of at most BLOCK_WORK multiply-adds each (one row at least)."""
    step = max(1, BLOCK_WORK // max(1, work_per_row))
    return [slice(start, start + step) for start in range(0, n_rows, step)]


def solve_binary(X, y, kernel, gamma, C, tol):
    """Dual coefficients α (one per sample), ρ and the iteration count of one C-SVC.

    y holds ±1. The decision function is Σ α_i y_i K(x_i, x) − ρ.
    """
    n = y.shape[0]
    sq = row_norms_squared(X)
    QD = sq.copy() if kernel == "linear" else np.ones(n)  # K(x, x)
    if n * n <= FULL_MATRIX:
        cache = np.empty((n, n))
        for rows in _blocks(n, n * X.shape[1]):
            cache[rows] = kernel_matrix(X[rows], X, kernel, gamma, sq[rows], sq)
        cache *= y[:, None]
        cache *= y[None, :]
        slot_of = np.arange(n)
        slot_row = np.arange(n)
    else:
        slots = int(min(n, max(2, CACHE_BYTES // (8 * n))))
        cache = np.empty((slots, n))
        slot_of = np.full(n, -1)
        slot_row = np.full(slots, -1)
    slot_used = np.zeros(slot_row.shape[0], np.int64)
    counters = np.zeros(3, np.int64)
    alpha = np.zeros(n)
    G = -np.ones(n)  # gradient of the dual at α = 0
    max_iter = max(10_000_000, 100 * n)  # LIBSVM's limit
    while True:
        status = svm_kernels.smo(
            y, QD, C, tol, max_iter, alpha, G, cache, slot_of, slot_row, slot_used, counters
        )
        if status < 0:
            break
        row = kernel_matrix(X[status : status + 1], X, kernel, gamma, sq[status : status + 1], sq)
        cache[counters[svm_kernels.SLOT]] = row[0] * y[status] * y
    if status == svm_kernels.ITERATION_LIMIT:
        warnings.warn(
            f"SMO stopped after {max_iter} iterations before reaching tol={tol}; "
            "consider scaling the features",
            RuntimeWarning,
            stacklevel=3,
        )
    rho = svm_kernels.offset(y, alpha, G, C)
    return alpha, rho, int(counters[svm_kernels.ITERATIONS])


class SVC(Learner):
    """C-support vector classifier with an RBF or linear kernel, as LIBSVM solves it.

    Each pair of classes gets its own binary SVM (one-vs-one, like scikit-learn's SVC);
    a sample goes to the class that wins most pairwise votes, the first such class on a
    tie. ``gamma="scale"`` is 1 / (n_features · X.var()), ``"auto"`` is 1 / n_features.
    Learned: ``support_`` (training indices of the support vectors),
    ``support_vectors_``, ``dual_coef_`` (pairs x support vectors: α·y, zero where a
    vector is not in that pair's problem) and ``intercept_`` (−ρ per pair); pairs are in
    the order (0, 1), (0, 2), …, (1, 2), …
    """

    name = "svm"
    task = "classification"
    default_dataset = "moons"
    description = "kernel SVM (RBF or linear), LIBSVM-style SMO in Numba, one-vs-one"
    search_space = {"C": [0.1, 1.0, 10.0, 100.0], "gamma": ["scale", 0.01, 0.1, 1.0]}

    def __init__(self, C=1.0, kernel="rbf", gamma="scale", tol=1e-3):
        self.C = C
        self.kernel = kernel
        self.gamma = gamma
        self.tol = tol

    def _check_params(self):
        check_number("C", self.C, low=0.0, low_open=True)
        check_choice("kernel", self.kernel, ("rbf", "linear"))
        if isinstance(self.gamma, str):
            check_choice("gamma", self.gamma, ("scale", "auto"))
        else:
            check_number("gamma", self.gamma, low=0.0, low_open=True)
        check_number("tol", self.tol, low=0.0, low_open=True)

    def _resolve_gamma(self, X):
        if self.gamma == "scale":
            var = X.var()
            return 1.0 / (X.shape[1] * var) if var > 0 else 1.0
        if self.gamma == "auto":
            return 1.0 / X.shape[1]
        return float(self.gamma)

    def fit(self, X, y):
        self._check_params()
        X = check_array(X)
        self.classes_, codes = encode_labels(y, X.shape[0])
        gamma = self._resolve_gamma(X)
        n_classes = len(self.classes_)

        def solve_pair(pair):
            a, b = pair
            members = np.flatnonzero((codes == a) | (codes == b))
            signs = np.where(codes[members] == a, 1.0, -1.0)
            alpha, rho, n_iter = solve_binary(
                X[members], signs, self.kernel, gamma, float(self.C), float(self.tol)
            )
            kept = alpha > 0
            return members[kept], alpha[kept] * signs[kept], rho, n_iter

        pairs = [(a, b) for a in range(n_classes) for b in range(a + 1, n_classes)]
        with ThreadPoolExecutor(max_workers=numba.get_num_threads()) as pool:
            solved = list(pool.map(solve_pair, pairs))  # the solver releases the GIL
        supports, coefs, rhos, iterations = (list(column) for column in zip(*solved, strict=True))
        self.support_ = np.unique(np.concatenate(supports))
        self.dual_coef_ = np.zeros((len(rhos), self.support_.shape[0]))
        for p, (members, coef) in enumerate(zip(supports, coefs, strict=True)):
            self.dual_coef_[p, np.searchsorted(self.support_, members)] = coef
        self.support_vectors_ = X[self.support_]
        self.intercept_ = -np.array(rhos)
        self.gamma_ = gamma
        self.n_iter_ = iterations
        self.n_features_in_ = X.shape[1]
        return self

    def decision_function(self, X):
        """Pairwise decision values, samples x pairs; positive favours the pair's first class."""
        self.check_fitted()
        X = check_array(X, n_features=self.n_features_in_)
        sv = self.support_vectors_
        sv_sq = row_norms_squared(sv)
        out = np.empty((X.shape[0], self.dual_coef_.shape[0]))
        for rows in _blocks(X.shape[0], sv.shape[0] * X.shape[1]):
            K = kernel_matrix(X[rows], sv, self.kernel, self.gamma_, None, sv_sq)
            out[rows] = K @ self.dual_coef_.T + self.intercept_
        return out

    def predict(self, X):
        decision = self.decision_function(X)
        n_classes = len(self.classes_)
        votes = np.zeros((decision.shape[0], n_classes), np.int64)
        p = 0
        for a in range(n_classes):
            for b in range(a + 1, n_classes):
                wins = decision[:, p] > 0
                votes[:, a] += wins
                votes[:, b] += ~wins
                p += 1
        return self.classes_[np.argmax(votes, axis=1)]
