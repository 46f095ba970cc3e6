"""k-nearest-neighbours classification by brute force, in bounded memory."""

from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
from threadpoolctl import threadpool_limits

from nanoml import Learner
from nanoml.errors import ParameterError
from nanoml.state_schema import Array, Classes, Int, Require, StateSchema
from nanoml.validation import (
    check_array,
    check_choice,
    check_number,
    encode_labels,
    unit_scale,
)
from nanoml_classic.distances import row_norms_squared
from nanoml_classic.neighbors_kernels import merge_smallest

# A distance block is QUERY_BLOCK queries x CROSS_BLOCK // QUERY_BLOCK training samples:
# its cross products (512 KiB) stay in cache for the selection, and the GEMM is wide
# enough to run near BLAS's peak however many features there are. The query blocks run on
# a thread pool, with BLAS held to one thread meanwhile: its threads would only fight the
# pool for the same cores.
QUERY_BLOCK = 256
CROSS_BLOCK = 2**16
# Below this many query-reference pairs the search runs on the calling thread.
SERIAL_PAIRS = 2**22


class KNeighborsClassifier(Learner):
    """Votes among the k training samples nearest (Euclidean) to each query.

    ``weights="uniform"`` gives every neighbour one vote; ``"distance"`` weighs each by
    the inverse of its distance, and a query that coincides with training samples takes
    its vote from those alone, as scikit-learn does. Distances are computed a block at a
    time and only the k best per query are kept, so memory stays bounded whatever the
    number of queries and training samples; query blocks run on all cores.
    """

    name = "knn"
    task = "classification"
    default_dataset = "iris"
    description = "k-nearest-neighbours vote (uniform or distance weights), blocked brute force"
    search_space = {"n_neighbors": [1, 3, 5, 10, 20], "weights": ["uniform", "distance"]}
    state_schema = StateSchema(
        checks=[Require(lambda v: v["n_neighbors"] <= v["n_samples"], "fit_X_",
                        "holds fewer rows than n_neighbors")],
        n_features_in_=Int(low=1),
        classes_=Classes(),
        shift_=Array(np.float64, shape=("n_features_in_",)),
        fit_X_=Array(np.float64, shape=("n_samples", "n_features_in_")),
        fit_labels_=Array(np.int64, shape=("n_samples",), low=0, below="n_classes"),
    )

    def __init__(self, n_neighbors=5, weights="uniform"):
        self.n_neighbors = n_neighbors
        self.weights = weights

    def check_params(self):
        check_number("n_neighbors", self.n_neighbors, low=1, integer=True)
        check_choice("weights", self.weights, ("uniform", "distance"))

    def fit(self, X, y):
        self.check_params()
        X = check_array(X)
        self.classes_, codes = encode_labels(y, X.shape[0])
        if self.n_neighbors > X.shape[0]:
            raise ParameterError(
                f"n_neighbors={self.n_neighbors} exceeds the {X.shape[0]} training samples; "
                f"use at most {X.shape[0]}"
            )
        # Distances are taken between centred points: ||x||² + ||y||² - 2 x·y loses
        # fewer digits to cancellation near the origin, and distances do not change.
        self.shift_ = X.mean(axis=0)
        self.fit_X_ = X - self.shift_
        self.fit_labels_ = codes
        self.n_features_in_ = X.shape[1]
        return self

    def kneighbors(self, X):
        """(distances, indices) of each query's k nearest training samples, nearest first."""
        self.check_fitted()
        X = check_array(X, n_features=self.n_features_in_) - self.shift_
        scale = unit_scale(X, self.fit_X_)
        ref = self.fit_X_ if scale == 1.0 else self.fit_X_ / scale  # no copy when unscaled
        best_dist, best_index = nearest(X / scale, ref, self.n_neighbors)
        return np.sqrt(best_dist) * scale, best_index

    def predict_proba(self, X):
        """Share of the (weighted) vote each class gets, columns in the order of classes_."""
        dist, index = self.kneighbors(X)
        if self.weights == "uniform":
            vote = np.ones_like(dist)
        else:
            with np.errstate(divide="ignore"):
                vote = 1.0 / dist
            exact = np.isinf(vote).any(axis=1)
            vote[exact] = np.isinf(vote[exact])
        proba = np.zeros((dist.shape[0], len(self.classes_)))
        rows = np.arange(dist.shape[0])
        for j in range(dist.shape[1]):  # one neighbour per row per column: no repeats
            proba[rows, self.fit_labels_[index[:, j]]] += vote[:, j]
        proba /= proba.sum(axis=1, keepdims=True)
        return proba

    def predict(self, X):
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]


def nearest(queries, ref, k):
    """(squared distances, indices) of the k rows of `ref` nearest each query, nearest first.

    Blocks of queries run on a thread pool; within a block, the cross products with a block
    of `ref` are one GEMM and the kernel forms distances while it selects.
    """
    ref_sq, query_sq = row_norms_squared(ref), row_norms_squared(queries)
    best_dist = np.full((queries.shape[0], k), np.inf)
    best_index = np.full((queries.shape[0], k), -1, np.int64)
    ref_block = max(16, CROSS_BLOCK // QUERY_BLOCK)

    def search(start):
        rows = slice(start, start + QUERY_BLOCK)
        for first in range(0, ref.shape[0], ref_block):
            cols = slice(first, first + ref_block)
            cross = queries[rows] @ ref[cols].T
            merge_smallest(cross, query_sq[rows], ref_sq[cols], first, best_dist[rows],
                           best_index[rows])

    starts = range(0, queries.shape[0], QUERY_BLOCK)
    workers = min(numba.get_num_threads(), len(starts))
    if queries.shape[0] * ref.shape[0] < SERIAL_PAIRS or workers == 1:
        for start in starts:  # too little work to repay starting threads, or one core
            search(start)
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool, threadpool_limits(1, "blas"):
            list(pool.map(search, starts))  # re-raises errors
    return best_dist, best_index
