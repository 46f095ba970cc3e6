"""Kernel support vector machine (C-SVC), solved by SMO; one-vs-one for several classes."""

from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
import scipy.special

from nanoml import Learner
from nanoml.errors import warn_not_converged
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
# Platt scaling's Newton method, LIBSVM's settings: Hessian ridge, gradient tolerance,
# smallest line-search step; pairwise probabilities are kept inside [MIN_PROB, 1 - MIN_PROB].
PLATT_SIGMA = 1e-12
PLATT_GTOL = 1e-5
PLATT_MIN_STEP = 1e-10
MIN_PROB = 1e-7


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
        warn_not_converged("svm's SMO", f"LIBSVM's limit of {max_iter} iterations", tol,
                           "standardise the features or lower C", stacklevel=4)
    rho = svm_kernels.offset(y, alpha, G, C)
    return alpha, rho, int(counters[svm_kernels.ITERATIONS])


def platt_fit(decision, positive, max_iter=100):
    """(A, B) of Platt's sigmoid P(positive | f) = 1 / (1 + exp(A·f + B)) on decision values.

    Maximum likelihood on Platt's smoothed targets ((N₊ + 1) / (N₊ + 2) and 1 / (N₋ + 2)),
    by Newton's method with backtracking as Lin, Lin and Weng (2007) give it and LIBSVM
    runs it. Fitted on the training rows' decision values (LIBSVM uses 5-fold
    cross-validation, at five times the training cost).
    """
    f = np.asarray(decision, np.float64)
    n_pos = float(np.count_nonzero(positive))
    n_neg = f.shape[0] - n_pos
    t = np.where(positive, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))

    def objective(A, B):
        z = f * A + B
        return float(np.sum(t * np.logaddexp(0, z) + (1 - t) * np.logaddexp(0, -z)))

    A, B = 0.0, float(np.log((n_neg + 1) / (n_pos + 1)))
    value = objective(A, B)
    for _ in range(max_iter):
        p = scipy.special.expit(-(f * A + B))
        d2 = p * (1 - p)
        d1 = t - p
        g1, g2 = float(f @ d1), float(d1.sum())
        if abs(g1) < PLATT_GTOL and abs(g2) < PLATT_GTOL:
            break
        h11, h22 = PLATT_SIGMA + float(f * f @ d2), PLATT_SIGMA + float(d2.sum())
        h21 = float(f @ d2)
        det = h11 * h22 - h21 * h21
        dA, dB = -(h22 * g1 - h21 * g2) / det, -(h11 * g2 - h21 * g1) / det
        slope = g1 * dA + g2 * dB
        step = 1.0
        while step >= PLATT_MIN_STEP:
            new = objective(A + step * dA, B + step * dB)
            if new < value + 1e-4 * step * slope:
                A, B, value = A + step * dA, B + step * dB, new
                break
            step /= 2
        else:
            break  # no step decreases the objective: as good as it gets
    return A, B


def platt_probability(decision, A, B):
    """P(positive | f) under Platt's sigmoids, elementwise (A, B broadcast over rows)."""
    return scipy.special.expit(-(decision * A + B))


def pairwise_coupling(r):
    """Class probabilities (samples, k) from pairwise ones r[:, i, j] = P(i | i or j).

    Method 2 of Wu, Lin and Weng (2004), as LIBSVM couples its one-vs-one SVMs: the p
    minimising Σᵢ Σⱼ≠ᵢ (rⱼᵢ pᵢ − rᵢⱼ pⱼ)² with Σ p = 1, one small linear system per sample.
    """
    n, k = r.shape[:2]
    rt = np.swapaxes(r, 1, 2)
    system = np.zeros((n, k + 1, k + 1))
    Q = -rt * r  # Q[i, j] = -r_ji r_ij off the diagonal
    off = ~np.eye(k, dtype=bool)
    Q[:, ~off] = np.sum(np.where(off, rt * rt, 0.0), axis=2)  # Q[i, i] = Σ_j≠i r_ji²
    system[:, :k, :k] = Q
    system[:, :k, k] = system[:, k, :k] = 1.0
    rhs = np.zeros((n, k + 1, 1))
    rhs[:, k] = 1.0
    p = np.clip(np.linalg.solve(system, rhs)[:, :k, 0], 0.0, None)
    return p / p.sum(axis=1, keepdims=True)


def _pair_rows(codes, a, b):
    """The rows of classes a and b, the training set of their pair's SVM."""
    return np.flatnonzero((codes == a) | (codes == b))


class SVC(Learner):
    """C-support vector classifier with an RBF or linear kernel, as LIBSVM solves it.

    Each pair of classes gets its own binary SVM (one-vs-one, like scikit-learn's SVC);
    a sample goes to the class that wins most pairwise votes, a tie to the larger summed
    confidence (`decision_function`; scikit-learn's ``break_ties=True``).
    ``gamma="scale"`` is 1 / (n_features · X.var()), ``"auto"`` is 1 / n_features.
    Learned: ``support_`` (training indices of the support vectors),
    ``support_vectors_``, ``dual_coef_`` (pairs x support vectors: α·y, zero where a
    vector is not in that pair's problem) and ``intercept_`` (−ρ per pair); pairs are in
    the order (0, 1), (0, 2), …, (1, 2), …; ``prob_a_``, ``prob_b_``: each pair's Platt
    sigmoid, for `predict_proba`.
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
            members = _pair_rows(codes, a, b)
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
        decision = self.pairwise_decision(X)
        sigmoids = []
        for p, (a, b) in enumerate(pairs):
            members = _pair_rows(codes, a, b)
            sigmoids.append(platt_fit(decision[members, p], codes[members] == a))
        self.prob_a_, self.prob_b_ = (np.array(column) for column in zip(*sigmoids, strict=True))
        return self

    def decision_function(self, X):
        """Scores with linear-svm's conventions. Two classes: one value per sample, positive
        for ``classes_[1]``. More: samples x classes, the pairwise votes each class won plus
        its summed pairwise confidence squashed into (-1/3, 1/3) (scikit-learn's "ovr"
        shape), so that the argmax is `predict`."""
        pairwise = self.pairwise_decision(X)
        if len(self.classes_) == 2:
            return -pairwise[:, 0]
        return _vote_scores(pairwise, len(self.classes_))

    def pairwise_decision(self, X):
        """Each pair's decision value, samples x pairs (pairs in ``intercept_`` order);
        positive favours the pair's first class, as in LIBSVM's one-vs-one problems."""
        self.check_fitted()
        X = check_array(X, n_features=self.n_features_in_)
        sv = self.support_vectors_
        sv_sq = row_norms_squared(sv)
        out = np.empty((X.shape[0], self.dual_coef_.shape[0]))
        for rows in _blocks(X.shape[0], sv.shape[0] * X.shape[1]):
            K = kernel_matrix(X[rows], sv, self.kernel, self.gamma_, None, sv_sq)
            out[rows] = K @ self.dual_coef_.T + self.intercept_
        return out

    def predict_proba(self, X):
        """Class probabilities, columns in ``classes_`` order: each pair's decision values
        through its Platt sigmoid (``prob_a_``, ``prob_b_``), coupled as LIBSVM does."""
        pairwise = platt_probability(self.pairwise_decision(X), self.prob_a_, self.prob_b_)
        n_classes = len(self.classes_)
        if n_classes == 2:
            return np.stack([pairwise[:, 0], 1 - pairwise[:, 0]], axis=1)
        pairwise = np.clip(pairwise, MIN_PROB, 1 - MIN_PROB)
        r = np.zeros((pairwise.shape[0], n_classes, n_classes))
        first, second = np.triu_indices(n_classes, 1)  # the pairs' order
        r[:, first, second] = pairwise
        r[:, second, first] = 1 - pairwise
        return pairwise_coupling(r)

    def predict(self, X):
        scores = self.decision_function(X)
        if scores.ndim == 1:
            return self.classes_[(scores >= 0).astype(np.int64)]
        return self.classes_[np.argmax(scores, axis=1)]


def _vote_scores(pairwise, n_classes):
    """samples x classes: votes won (a pair's first class wins where its value is
    positive) plus the summed confidences c squashed as c / (3 (|c| + 1))."""
    votes = np.zeros((pairwise.shape[0], n_classes))
    confidence = np.zeros_like(votes)
    first, second = np.triu_indices(n_classes, 1)  # the pairs' order
    for p, (a, b) in enumerate(zip(first, second, strict=True)):
        wins = pairwise[:, p] > 0
        votes[:, a] += wins
        votes[:, b] += ~wins
        confidence[:, a] += pairwise[:, p]
        confidence[:, b] -= pairwise[:, p]
    return votes + confidence / (3 * (np.abs(confidence) + 1))
