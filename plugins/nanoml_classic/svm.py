"""Kernel support vector machine (C-SVC), solved by SMO; one-vs-one for several classes."""

import contextlib
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
import scipy.special
from threadpoolctl import threadpool_limits

from nanoml import Learner
from nanoml.errors import warn_not_converged
from nanoml.state_schema import Array, Classes, Float, Int, Json, StateSchema
from nanoml.validation import check_array, check_choice, check_number, encode_labels
from nanoml_classic import svm_kernels
from nanoml_classic.distances import row_norms_squared

# Kernel values are kept in at most CACHE_BYTES (scikit-learn's default cache_size). When
# the whole training set's kernel matrix fits, it is computed once (one GEMM) and every
# one-vs-one pair reads its rows from it; else each pair caches rows over its own samples,
# least recently used evicted, kept in single precision as LIBSVM keeps them, and
# computed FETCH_ROWS at a time as one GEMM (in double precision): the row the
# solver asks for and the likeliest next ones. Once half the rows are cached, a new row's
# entries for the cached ones are copied from them (K is symmetric), the rest computed.
CACHE_BYTES = 200 * 2**20
FETCH_ROWS = 64
# Prediction computes kernel blocks of at most this many entries.
BLOCK_ENTRIES = 2**21
# Kernel matrices of up to SMALL_GRAM multiply-adds are computed in blocks of BLOCK_WORK.
SMALL_GRAM = 2**27
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
    out = A @ B.T  # the GEMM, then one pass of a Numba kernel and one of exp
    _rbf_in_place(out, row_norms_squared(A) if A_sq is None else A_sq,
                  row_norms_squared(B) if B_sq is None else B_sq, gamma)
    return out


def _rbf_in_place(dots, A_sq, B_sq, gamma):
    svm_kernels.rbf_exponents(dots, A_sq, B_sq, gamma)
    np.exp(dots, out=dots)


def _blocks(n_rows, row_length):
    """Row slices of at most BLOCK_ENTRIES kernel values each (one row at least)."""
    return _slices(n_rows, max(1, BLOCK_ENTRIES // max(1, row_length)))


def _slices(n_rows, step):
    return [slice(start, start + step) for start in range(0, n_rows, step)]


def _gram(X, kernel, gamma, pool, workers):
    """The kernel matrix of X with itself, on the pool's threads: when large, one symmetric
    GEMM (on BLAS's own threads) then exp by row chunks; when small, row blocks of at most
    BLOCK_WORK multiply-adds, a size OpenBLAS runs on the calling thread (waking its
    threads for a few milliseconds of work costs more than it saves)."""
    n = X.shape[0]
    sq = row_norms_squared(X)
    if n * n * X.shape[1] > SMALL_GRAM:
        K = X @ X.T
        step = -(-n // workers)

        def fill(rows):
            if kernel == "rbf":
                _rbf_in_place(K[rows], sq[rows], sq, gamma)
    else:
        K = np.empty((n, n), X.dtype)
        step = max(1, BLOCK_WORK // (n * X.shape[1]))

        def fill(rows):
            K[rows] = kernel_matrix(X[rows], X, kernel, gamma, sq[rows], sq)
    list(pool.map(fill, _slices(n, step)))
    return K


def solve_binary(X, y, kernel, gamma, C, tol, members=None, gram=None, budget=CACHE_BYTES,
                 shrinking=True, max_iter=None):
    """Dual coefficients α (one per sample), ρ, the iteration count and the training
    decision values of one C-SVC.

    The problem's samples are X[members] (all of X by default) with ±1 labels y; the
    decision function is Σ α_i y_i K(x_i, x) − ρ. `gram`, the kernel matrix of all of X,
    serves the kernel rows when given; else they are computed into a cache of `budget`
    bytes. `shrinking`: LIBSVM's shrinking heuristic; `max_iter`: LIBSVM's by default.
    """
    n = y.shape[0]
    members = np.arange(n) if members is None else members
    if gram is not None:  # row i of the problem is gram's row members[i]
        cache, cols, slot_of = gram, members, members.copy()
        QD = np.diagonal(gram)[members].copy() if kernel == "linear" else np.ones(n)
    else:
        X = X[members]
        sq = row_norms_squared(X)
        QD = sq.copy() if kernel == "linear" else np.ones(n)  # K(x, x)
        slots = int(min(n, max(2, budget // (4 * n))))
        cache = np.empty((slots, n), np.float32)  # LIBSVM's Qfloat: twice the rows
        cols = np.arange(n)
        slot_of = np.full(n, -1)
        slot_row = np.full(slots, -1)
        fetch = max(1, min(FETCH_ROWS, slots - 1))  # never evicting the rows in use
    slot_used = np.zeros(cache.shape[0], np.int64)
    counters = np.zeros(svm_kernels.N_COUNTERS, np.int64)
    counters[svm_kernels.COUNTDOWN] = min(n, svm_kernels.SHRINK_EVERY)
    counters[svm_kernels.RECONSTRUCT] = -1
    counters[svm_kernels.ACTIVE] = n
    active = np.arange(n)
    alpha = np.zeros(n)
    G = -np.ones(n)  # gradient of the dual at α = 0
    G_bar = np.zeros(n)
    max_iter = max(10_000_000, 100 * n) if max_iter is None else max_iter
    while True:
        status = svm_kernels.smo(y, QD, C, tol, max_iter, shrinking, alpha, G, G_bar, cache,
                                 cols, slot_of, slot_used, active, counters)
        if status < 0:
            break
        ids = svm_kernels.rows_to_fetch(status, fetch, y, alpha, G, C, slot_of, active,
                                        counters)
        placed = svm_kernels.store_rows(ids, slot_of, slot_row, slot_used, counters)
        if 2 * np.count_nonzero(slot_of >= 0) < n:  # copying out of few rows does not pay
            cache[placed] = kernel_matrix(X[ids], X, kernel, gamma, sq[ids], sq)
            continue
        todo = np.flatnonzero(svm_kernels.mirror_cached(cache, placed, ids, slot_of))
        if todo.shape[0]:
            cache[np.ix_(placed, todo)] = kernel_matrix(X[ids], X[todo], kernel, gamma,
                                                        sq[ids], sq[todo])
    if status == svm_kernels.ITERATION_LIMIT:
        warn_not_converged("svm's SMO", f"LIBSVM's limit of {max_iter} iterations", tol,
                           "standardise the features or lower C", stacklevel=4)
    rho = svm_kernels.offset(y, alpha, G, C)
    decision = y * (G + 1) - rho  # G = Qα − 1, and (Qα)_i = y_i Σ_j α_j y_j K_ij
    return alpha, rho, int(counters[svm_kernels.ITERATIONS]), decision


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


def _solver_rows(X, single, kernel):
    """The rows the solver computes kernel values from. Float32 data given to the RBF
    kernel stays float32 there, centred so that ||a||² + ||b||² - 2 a·b cancels fewer
    digits (distances do not change): GEMMs at twice the speed, for kernel values the
    cache keeps in single precision anyway, as LIBSVM does. Else X itself."""
    if not single or kernel != "rbf":
        return X
    return (X - X.mean(axis=0)).astype(np.float32)


def _pair_rows(codes, a, b):
    """The rows of classes a and b, the training set of their pair's SVM."""
    return np.flatnonzero((codes == a) | (codes == b))


def _n_pairs(known):
    """The pairs of classes a one-vs-one model has a binary SVM for."""
    return known["n_classes"] * (known["n_classes"] - 1) // 2


class SVC(Learner):
    """C-support vector classifier with an RBF or linear kernel, as LIBSVM solves it.

    Each pair of classes gets its own binary SVM (one-vs-one, like scikit-learn's SVC),
    solved as LIBSVM does (second-order working sets, shrinking, a kernel cache of
    CACHE_BYTES), the pairs on numba's thread count; a sample goes to the class that wins
    most pairwise votes, a tie to the larger summed confidence (`decision_function`;
    scikit-learn's ``break_ties=True``).
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

    state_schema = StateSchema(
        n_features_in_=Int(low=1),
        gamma_=Float(above=0),
        n_iter_=Json(),
        classes_=Classes(),
        support_=Array(np.int64, shape=("n_support",), low=0),
        support_vectors_=Array(np.float64, shape=("n_support", "n_features_in_")),
        dual_coef_=Array(np.float64, shape=(_n_pairs, "n_support")),
        intercept_=Array(np.float64, shape=(_n_pairs,)),
        prob_a_=Array(np.float64, shape=(_n_pairs,)),
        prob_b_=Array(np.float64, shape=(_n_pairs,)),
    )

    def check_params(self):
        self._check_params()

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
        single = getattr(X, "dtype", None) == np.float32
        X = check_array(X)
        self.classes_, codes = encode_labels(y, X.shape[0])
        gamma = self._resolve_gamma(X)
        rows = _solver_rows(X, single, self.kernel)
        n_classes = len(self.classes_)

        workers = numba.get_num_threads()
        share = 8 * X.shape[0] ** 2 <= CACHE_BYTES

        def solve_pair(pair):
            a, b = pair
            members = _pair_rows(codes, a, b)
            signs = np.where(codes[members] == a, 1.0, -1.0)
            alpha, rho, n_iter, decision = solve_binary(
                rows, signs, self.kernel, gamma, float(self.C), float(self.tol), members=members,
                gram=gram, budget=CACHE_BYTES // workers,
            )
            kept = alpha > 0
            sigmoid = platt_fit(decision, signs > 0)
            return members[kept], alpha[kept] * signs[kept], rho, n_iter, sigmoid

        pairs = [(a, b) for a in range(n_classes) for b in range(a + 1, n_classes)]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            gram = _gram(rows, self.kernel, gamma, pool, workers) if share else None
            # the solver releases the GIL; each pair's GEMMs then stay on its own thread
            with (threadpool_limits(1, "blas") if workers > 1 and not share
                  else contextlib.nullcontext()):
                solved = list(pool.map(solve_pair, pairs))
        supports, coefs, rhos, iterations, sigmoids = (
            list(column) for column in zip(*solved, strict=True))
        self.support_ = np.unique(np.concatenate(supports))
        self.dual_coef_ = np.zeros((len(rhos), self.support_.shape[0]))
        for p, (members, coef) in enumerate(zip(supports, coefs, strict=True)):
            self.dual_coef_[p, np.searchsorted(self.support_, members)] = coef
        self.support_vectors_ = X[self.support_]
        self.intercept_ = -np.array(rhos)
        self.gamma_ = gamma
        self.n_iter_ = iterations
        self.n_features_in_ = X.shape[1]
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
        for rows in _blocks(X.shape[0], sv.shape[0]):
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
