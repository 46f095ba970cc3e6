"""k-nearest-neighbours classification by brute force, in bounded memory."""

from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from nanoml import Learner
from nanoml.errors import ParameterError
from nanoml.validation import check_array, check_choice, check_number, encode_labels
from nanoml_classic.distances import row_norms_squared
from nanoml_classic.neighbors_kernels import merge_smallest

# A distance block is QUERY_BLOCK queries x enough training samples for about BLOCK_WORK
# multiply-adds: small enough to stay in cache, and below the size at which OpenBLAS
# would spread one product over threads; the blocks themselves run on a thread pool, so
# BLAS threads would only fight the pool for the same cores.
QUERY_BLOCK = 64
BLOCK_WORK = 2**18
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

    def __init__(self, n_neighbors=5, weights="uniform"):
        self.n_neighbors = n_neighbors
        self.weights = weights

    def fit(self, X, y):
        check_number("n_neighbors", self.n_neighbors, low=1, integer=True)
        check_choice("weights", self.weights, ("uniform", "distance"))
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
        best_dist, best_index = nearest(X, self.fit_X_, self.n_neighbors)
        return np.sqrt(best_dist), best_index

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
    of `ref` are one small GEMM and the kernel forms distances while it selects.
    """
    ref_sq, query_sq = row_norms_squared(ref), row_norms_squared(queries)
    best_dist = np.full((queries.shape[0], k), np.inf)
    best_index = np.full((queries.shape[0], k), -1, np.int64)
    ref_block = max(16, BLOCK_WORK // (QUERY_BLOCK * queries.shape[1]))

    def search(start):
        rows = slice(start, start + QUERY_BLOCK)
        for first in range(0, ref.shape[0], ref_block):
            cols = slice(first, first + ref_block)
            cross = queries[rows] @ ref[cols].T
            merge_smallest(cross, query_sq[rows], ref_sq[cols], first, best_dist[rows],
                           best_index[rows])

    starts = range(0, queries.shape[0], QUERY_BLOCK)
    if queries.shape[0] * ref.shape[0] < SERIAL_PAIRS:
        for start in starts:  # too little work to repay starting threads
            search(start)
    else:
        with ThreadPoolExecutor(max_workers=numba.get_num_threads()) as pool:
            list(pool.map(search, starts))  # re-raises errors
    return best_dist, best_index
