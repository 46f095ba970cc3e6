"""Linear classifiers: multinomial logistic regression and the linear support vector machine."""

import contextlib
import functools
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
import scipy.optimize
import scipy.sparse
import scipy.special
from threadpoolctl import threadpool_limits

from nanoml import Learner
from nanoml.errors import InputError, warn_not_converged
from nanoml.state_schema import Array, Classes, Int, StateSchema, score_columns
from nanoml.validation import (
    check_array,
    check_choice,
    check_number,
    check_sparse,
    encode_labels,
)
from nanoml_classic.logistic_kernels import (
    hinge_dual_cd,
    hinge_dual_cd_csr,
    softmax_cross_entropy,
)
from nanoml_classic.svm import platt_fit, platt_probability

# Bytes of X per block of the objective's single pass (within a core's L2 cache): a block
# multiplied by the weights is still in cache when the residuals multiply it again.
BLOCK_BYTES = 2**20
# Below this many entries of X the objective runs on the calling thread alone.
PARALLEL_ENTRIES = 2**22


class _LinearClassifier(Learner):
    """Shared by the linear classifiers: one score per class, X @ coef_.T + intercept_.

    As in scikit-learn, two classes keep a single row of coefficients whose positive
    score means ``classes_[1]``.
    """

    task = "classification"
    accepts_sparse = False
    state_schema = StateSchema(
        n_features_in_=Int(low=1),
        n_iter_=Int(low=0),
        classes_=Classes(),
        coef_=Array(np.float64, shape=(score_columns, "n_features_in_")),
        intercept_=Array(np.float64, shape=(score_columns,)),
    )

    def _check_data(self, X, y, dtype=np.float64):
        X = self._check_rows(X, dtype=dtype)
        self.classes_, codes = encode_labels(y, X.shape[0])
        self.n_features_in_ = X.shape[1]
        return X, codes

    def decision_function(self, X):
        """Per-class scores, shape (samples, classes), or (samples,) for two classes."""
        self.check_fitted()
        X = self._check_rows(X, n_features=self.n_features_in_)
        scores = X @ self.coef_.T + self.intercept_
        return scores[:, 0] if scores.shape[1] == 1 else scores

    def _check_rows(self, X, n_features=None, dtype=np.float64):
        """Validated X: CSR if it came sparse (for a learner that ``accepts_sparse``)."""
        if not scipy.sparse.issparse(X):
            return check_array(X, n_features=n_features, dtype=dtype)
        if not self.accepts_sparse:
            raise InputError(f"{self.name} takes dense X, got a sparse matrix: pass "
                             "X.toarray()")
        return check_sparse(X, n_features=n_features)

    def predict(self, X):
        scores = self.decision_function(X)
        best = (scores > 0.0).astype(np.int64) if scores.ndim == 1 else scores.argmax(axis=1)
        return self.classes_[best]


class LogisticRegression(_LinearClassifier):
    """Multinomial logistic regression with an L2 penalty, scikit-learn's C convention.

    Minimises C·Σᵢ cross-entropy + ½||W||² (intercepts unpenalised) by L-BFGS with the
    same stopping rule as scikit-learn's lbfgs solver. Each evaluation of the objective
    is one pass over X, a block of rows at a time: scores by a GEMM, the softmax, loss and
    logit gradient by Numba kernels, then the block's share of the gradient by a second
    GEMM while the block is still in cache. Float32 X stays float32 in the GEMMs (as in
    scikit-learn), with the softmax and all sums in float64. Two classes use the sigmoid
    model (one coefficient row), as scikit-learn does. ``n_iter_`` counts iterations.
    """

    name = "logistic-regression"
    default_dataset = "digits"
    description = "multinomial logistic regression, L2, L-BFGS over a Numba softmax kernel"
    search_space = {"C": [0.01, 0.1, 1.0, 10.0, 100.0]}
    accepts_sparse = True  # X @ W and its transpose as sparse products: never densified

    def __init__(self, C=1.0, max_iter=100, tol=1e-4):
        self.C = C
        self.max_iter = max_iter
        self.tol = tol

    def check_params(self):
        check_number("C", self.C, low=0.0, low_open=True)
        check_number("max_iter", self.max_iter, low=1, integer=True)
        check_number("tol", self.tol, low=0.0)

    def fit(self, X, y):
        self.check_params()
        single = getattr(X, "dtype", None) == np.float32 and not scipy.sparse.issparse(X)
        X, codes = self._check_data(X, y, dtype=np.float32 if single else np.float64)
        n, d = X.shape
        binary = self.classes_.shape[0] == 2
        m = 1 if binary else self.classes_.shape[0]
        # the objective divided by C·n, so the gradient tolerance means what it does in sklearn
        l2 = 1.0 / (self.C * n)

        def loss_and_gradient(theta):
            weights = theta[: m * d]
            W = weights.reshape(m, d)
            loss, grad_W, grad_b = softmax_objective(X, codes, W, theta[m * d :], binary,
                                                     pool, workers)
            grad_W /= n
            grad_W += l2 * W
            loss = loss / n + 0.5 * l2 * (weights @ weights)
            return loss, np.concatenate([grad_W.ravel(), grad_b / n])

        workers = 1 if n * d < PARALLEL_ENTRIES else numba.get_num_threads()
        with (ThreadPoolExecutor(max_workers=workers) as pool,
              threadpool_limits(1, "blas") if workers > 1 else contextlib.nullcontext()):
            result = scipy.optimize.minimize(
                loss_and_gradient, np.zeros(m * (d + 1)), method="L-BFGS-B", jac=True,
                options={
                    "maxiter": int(self.max_iter), "maxls": 50, "gtol": float(self.tol),
                    "ftol": 64 * np.finfo(float).eps,
                },
            )
        self.coef_ = result.x[: m * d].reshape(m, d).copy()
        self.intercept_ = result.x[m * d :].copy()
        self.n_iter_ = int(result.nit)
        if not result.success and self.n_iter_ >= self.max_iter:
            warn_not_converged("logistic-regression's L-BFGS",
                               f"max_iter={self.max_iter} iterations", self.tol,
                               "standardise the features or raise max_iter")
        return self

    def predict_proba(self, X):
        """Class probabilities, shape (samples, classes), columns in ``classes_`` order."""
        scores = self.decision_function(X)
        if scores.ndim == 1:
            scores = np.stack([np.zeros_like(scores), scores], axis=1)
        return scipy.special.softmax(scores, axis=1)


def softmax_objective(X, codes, W, b, binary, pool=None, workers=1):
    """(Σ cross-entropy, its gradient over W, over b) of the scores X·Wᵀ + b, in one pass.

    Two classes (`binary`, W one row) are the softmax with class 0's logit fixed at 0.
    Dense X goes a block of BLOCK_BYTES at a time, its rows shared among `workers`
    threads of `pool` when given (BLAS then belongs on one thread: a threaded GEMM per
    small block waits on its threads); CSR X in one block.
    """
    n = X.shape[0]
    if pool is None or workers == 1 or scipy.sparse.issparse(X):
        return _objective_rows(X, codes, W, b, binary)
    bounds = np.linspace(0, n, workers + 1).astype(np.int64)
    parts = list(pool.map(lambda i: _objective_rows(
        X[bounds[i] : bounds[i + 1]], codes[bounds[i] : bounds[i + 1]], W, b, binary),
        range(workers)))
    return tuple(sum(column) for column in zip(*parts, strict=True))


def _objective_rows(X, codes, W, b, binary):
    """softmax_objective over all rows of X on the calling thread."""
    n, d = X.shape
    sparse = scipy.sparse.issparse(X)
    rows = n if sparse else max(1, BLOCK_BYTES // (d * X.itemsize))
    weights = np.ascontiguousarray(W.T, dtype=X.dtype)
    loss, grad_W, grad_b = 0.0, np.zeros_like(W), np.zeros_like(b)
    for start in range(0, n, rows):
        block = X[start : start + rows]
        scores = np.asarray(block @ weights, dtype=np.float64)
        scores += b
        if binary:
            logits = np.zeros((scores.shape[0], 2))
            logits[:, 1:] = scores
        else:
            logits = scores
        loss += softmax_cross_entropy(logits, codes[start : start + rows])
        residual = logits[:, 1:] if binary else logits
        grad_b += residual.sum(axis=0)
        if sparse:
            grad_W += (block.T @ residual).T
        else:
            grad_W += np.ascontiguousarray(residual.T, dtype=X.dtype) @ block
    return loss, grad_W, grad_b


class LinearSVM(_LinearClassifier):
    """Linear support vector machine: hinge loss, L2 penalty, one-vs-rest for several classes.

    Minimises ½||w||² + C·Σᵢ max(0, 1 - yᵢ(w·xᵢ + b)) per class against the rest by
    LIBLINEAR's dual coordinate descent (a Numba kernel), scikit-learn's LinearSVC with
    loss="hinge": the intercept is the weight of a constant feature and is penalised too.
    ``seed`` fixes the order rows are visited in; ``n_iter_`` is the most epochs any
    class needed. ``prob_a_``, ``prob_b_``: each class's Platt sigmoid, for `predict_proba`.

    With ``standardize`` (the default) dense features are centred and scaled to unit
    variance for the solver, which otherwise crawls on features of unequal scales, and
    ``coef_`` and ``intercept_`` are turned back into the units of X; the penalty then
    weighs standardised coefficients, unlike LinearSVC's (``standardize=False`` is that
    model exactly). Sparse input is left as it is: centring would densify it, and text
    features come normalised.
    """

    name = "linear-svm"
    default_dataset = "breast-cancer"
    description = "hinge-loss linear SVM, one-vs-rest, LIBLINEAR dual coordinate descent"
    search_space = {"C": [0.01, 0.1, 1.0, 10.0]}
    accepts_sparse = True  # CSR rows go to the solver's CSR kernel: the same model
    state_schema = _LinearClassifier.state_schema.extend(
        prob_a_=Array(np.float64, shape=(score_columns,)),  # a Platt sigmoid per score
        prob_b_=Array(np.float64, shape=(score_columns,)),
    )

    def __init__(self, C=1.0, max_iter=1000, tol=1e-4, seed=0, standardize=True):
        self.C = C
        self.max_iter = max_iter
        self.tol = tol
        self.seed = seed
        self.standardize = standardize

    def check_params(self):
        check_number("C", self.C, low=0.0, low_open=True)
        check_number("max_iter", self.max_iter, low=1, integer=True)
        check_number("tol", self.tol, low=0.0, low_open=True)
        check_number("seed", self.seed, low=0, integer=True)
        check_choice("standardize", self.standardize, (True, False))

    def fit(self, X, y):
        self.check_params()
        X, codes = self._check_data(X, y)
        original = X
        scale = self.standardize and not scipy.sparse.issparse(X)
        if scale:
            mean, std = X.mean(axis=0), X.std(axis=0)
            std[std == 0] = 1.0
            X = (X - mean) / std
        n_classes = self.classes_.shape[0]
        positives = [1] if n_classes == 2 else range(n_classes)
        rng = np.random.default_rng(self.seed)
        weights = np.zeros((len(positives), X.shape[1] + 1))
        epochs = 0
        if scipy.sparse.issparse(X):
            solve = functools.partial(hinge_dual_cd_csr, X.indptr, X.indices, X.data,
                                      X.shape[1])
        else:
            solve = functools.partial(hinge_dual_cd, X)
        for row, positive in zip(weights, positives, strict=True):
            signs = np.where(codes == positive, 1.0, -1.0)
            used = solve(signs, float(self.C), int(self.max_iter), float(self.tol), rng, row)
            epochs = max(epochs, used)
        if epochs >= self.max_iter:
            warn_not_converged("linear-svm's dual coordinate descent",
                               f"max_iter={self.max_iter} epochs", self.tol,
                               "raise max_iter" if scale else
                               "standardise the features (standardize=True) or raise max_iter")
        self.coef_ = weights[:, :-1].copy()
        self.intercept_ = weights[:, -1].copy()
        if scale:  # w·(x - mean)/std + b = (w/std)·x + b - (w/std)·mean
            self.coef_ /= std
            self.intercept_ -= self.coef_ @ mean
        self.n_iter_ = int(epochs)
        scores = original @ self.coef_.T + self.intercept_
        sigmoids = [platt_fit(scores[:, i], codes == positive)
                    for i, positive in enumerate(positives)]
        self.prob_a_, self.prob_b_ = (np.array(column) for column in zip(*sigmoids, strict=True))
        return self

    def predict_proba(self, X):
        """Class probabilities, columns in ``classes_`` order: each class's score through
        its Platt sigmoid, normalised over the classes (one-vs-rest)."""
        scores = self.decision_function(X)
        if scores.ndim == 1:
            positive = platt_probability(scores, self.prob_a_[0], self.prob_b_[0])
            return np.stack([1 - positive, positive], axis=1)
        proba = platt_probability(scores, self.prob_a_, self.prob_b_)
        return proba / proba.sum(axis=1, keepdims=True)
