"""k-means clustering: k-means++ starts, then Lloyd iterations as Numba kernels."""

import numpy as np

from nanoml import Learner, metrics
from nanoml.errors import InputError, ParameterError
from nanoml.state_schema import Array, Float, Int, StateSchema
from nanoml.validation import (
    FLOAT32_SQUARES_HIGH,
    FLOAT32_SQUARES_LOW,
    check_array,
    check_number,
    unit_scale,
    working_dtype,
)
from nanoml_classic.distances import row_norms_squared, squared_distances
from nanoml_classic.kmeans_kernels import assign, centred_norms, lloyd_step

# Lloyd's step accumulates sums in this many row chunks at most: a fixed number (not one
# per thread) keeps results identical on any machine, and 64 leaves work for many cores.
_MAX_CHUNKS = 64
_MIN_CHUNK_ROWS = 256
# Float32 data is clustered in float32, as scikit-learn does (the dot products at twice the
# speed), while its magnitudes keep their squares normal float32 numbers and its mean does
# not dwarf its spread (mean² at most this many times the variance, summed over features);
# otherwise in float64.
_FLOAT32_CANCELLATION = 1e2


class KMeans(Learner):
    """Partition rows into `n_clusters` groups around centres, minimising inertia.

    Inertia is the sum of squared distances from each row to its nearest centre. `init` is
    "k-means++" (greedy, as scikit-learn: 2 + log(k) candidates per centre, keeping the one
    that lowers inertia most) or an array of starting centres (then `n_init` must be 1).
    Iterations stop when no label changes or when the centres move, in total squared
    distance, by at most `tol` times the mean feature variance (scikit-learn's rule).
    Of `n_init` starts, the one of lowest inertia is kept.
    """

    name = "k-means"
    task = "clustering"
    default_dataset = "blobs"
    description = "Lloyd's k-means with k-means++ starts; Numba assignment and update kernels"
    search_space = {"n_clusters": [2, 3, 4, 5, 6, 8, 10]}

    def __init__(self, n_clusters=3, init="k-means++", n_init=1, max_iter=300, tol=1e-4, seed=0):
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.seed = seed

    state_schema = StateSchema(
        n_features_in_=Int(low=1),
        n_iter_=Int(low=0),
        inertia_=Float(low=0),
        cluster_centers_=Array(np.float64, shape=("n_clusters", "n_features_in_")),
        labels_=Array(np.int64, shape=("n_samples",), low=0, below="n_clusters"),
    )

    def check_params(self):
        self._check_params(None)

    def _check_params(self, n_features):
        """Check the hyperparameters (init's width against `n_features` where known);
        -> the starting centres init gives, or None for k-means++."""
        check_number("n_clusters", self.n_clusters, low=1, integer=True)
        check_number("n_init", self.n_init, low=1, integer=True)
        check_number("max_iter", self.max_iter, low=1, integer=True)
        check_number("tol", self.tol, low=0.0)
        check_number("seed", self.seed, low=0, integer=True)
        if isinstance(self.init, str):
            if self.init != "k-means++":
                raise ParameterError(
                    f"init must be 'k-means++' or an array of starting centres, got {self.init!r}"
                )
            return None
        centres = check_array(self.init, name="init")
        expected = (self.n_clusters, n_features or centres.shape[1])
        if centres.shape != expected:
            raise ParameterError(
                f"init must have shape (n_clusters, n_features) = {expected}, "
                f"got {centres.shape}"
            )
        if self.n_init != 1:
            raise ParameterError(
                f"n_init must be 1 when init is an array of centres, got {self.n_init}"
            )
        return centres

    def fit(self, X, y=None):
        X = check_array(X, dtype=working_dtype(X))
        n, d = X.shape
        init = self._check_params(d)
        if n < self.n_clusters:
            raise InputError(
                f"X has {n} samples but n_clusters={self.n_clusters}; "
                "it needs at least one sample per cluster"
            )
        if X.dtype == np.float32 and not _float32_magnitudes(X):
            X = X.astype(np.float64)
        scale = unit_scale(X)  # clustered in units where squared distances fit a float64
        if scale != 1.0:
            X = X / scale
        mean = X.mean(axis=0, dtype=np.float64)
        centred_sq = np.empty(n)
        centred_norms(X, mean, centred_sq)
        variance = float(centred_sq.sum() / n)
        if X.dtype == np.float32 and mean @ mean > _FLOAT32_CANCELLATION * variance:
            X = X.astype(np.float64)
        # sklearn's tolerance: tol times the mean feature variance
        tol = variance / d * self.tol
        rng = np.random.default_rng(self.seed)
        best = None
        for _ in range(self.n_init):
            if init is None:
                start = kmeans_plusplus(X, self.n_clusters, rng, centred_sq, mean)
            else:
                start = init / scale
            run = _lloyd(X, centred_sq, mean, start, self.max_iter, tol)
            if best is None or run[1] < best[1]:
                best = run
        self.labels_, inertia, centres, self.n_iter_ = best
        self.inertia_, self.cluster_centers_ = inertia * scale * scale, centres * scale
        self.n_features_in_ = d
        return self

    def _assign(self, X):
        self.check_fitted()
        X = check_array(X, n_features=self.n_features_in_)
        labels = np.empty(X.shape[0], dtype=np.int64)
        distances = np.empty(X.shape[0])
        scale = unit_scale(X, self.cluster_centers_)
        X, centres = X / scale, self.cluster_centers_ / scale
        assign(X, centres, *_shifted(centres, centres.mean(axis=0)), labels, distances)
        with np.errstate(over="ignore"):  # the inertia of values near 1e300 is infinite
            return labels, distances * scale * scale

    def predict(self, X):
        """Index of the nearest centre for each row."""
        return self._assign(X)[0]

    def score(self, X, y=None):
        """Minus the inertia of X around the fitted centres (higher is better)."""
        return -float(self._assign(X)[1].sum())

    def evaluate(self, X, y=None):
        labels, distances = self._assign(X)
        results = {"inertia": float(distances.sum())}
        if y is not None:
            results["adjusted_rand_index"] = metrics.adjusted_rand_index(y, labels)
        return results


def kmeans_plusplus(X, n_clusters, rng, centred_sq, mean):
    """Greedy k-means++: each new centre is the best of 2 + log(k) candidates drawn with
    probability proportional to their squared distance to the centres chosen so far.

    `centred_sq` holds each row's ||x - mean||², mean being X's column means.
    """
    n = X.shape[0]
    n_trials = 2 + int(np.log(n_clusters))
    centres = np.empty((n_clusters, X.shape[1]))
    first = rng.integers(n)
    centres[0] = X[first]
    closest = _distances_from(X[first : first + 1], X, centred_sq, mean)[0]
    potential = closest.sum()
    for c in range(1, n_clusters):
        draws = rng.uniform(size=n_trials) * potential
        candidates = np.minimum(np.searchsorted(np.cumsum(closest, dtype=np.float64), draws), n - 1)
        dist = _distances_from(X[candidates], X, centred_sq, mean)
        np.minimum(closest, dist, out=dist)
        potentials = dist.sum(axis=1)
        pick = int(np.argmin(potentials))
        potential = potentials[pick]
        closest = dist[pick]
        centres[c] = X[candidates[pick]]
    return centres


def _lloyd(X, centred_sq, mean, centres, max_iter, tol):
    """Lloyd iterations from `centres` -> (labels, inertia, centres, iterations run).

    Follows scikit-learn's loop step for step, so both take the same number of
    iterations from the same start: stop on unchanged labels (strict convergence) or a
    total squared centre shift <= tol, then relabel against the final centres.
    `centred_sq` and `mean` are as for `kmeans_plusplus`.
    """
    n, d = X.shape
    k = centres.shape[0]
    n_chunks = int(min(_MAX_CHUNKS, max(1, n // _MIN_CHUNK_ROWS)))
    sums = np.empty((n_chunks, k, d))
    counts = np.empty((n_chunks, k), dtype=np.int64)
    labels = np.full(n, -1, dtype=np.int64)
    distances = np.empty(n)
    n_iter, settled = 0, False
    while n_iter < max_iter:
        n_iter += 1
        shifted, offsets = _shifted(centres, mean, X.dtype)
        changed = lloyd_step(X, centred_sq, shifted, offsets, labels, distances, sums, counts)
        new = _new_centres(X, sums.sum(axis=0), counts.sum(axis=0), labels, distances)
        shift = float(((new - centres) ** 2).sum())
        centres = new
        if changed == 0:
            settled = shift == 0.0  # labels and distances already match the centres
            break
        if shift <= tol:
            break
    if not settled:
        assign(X, centres, *_shifted(centres, mean, X.dtype), labels, distances)
    return labels, float(distances.sum()), centres, n_iter


def _shifted(centres, origin, dtype=np.float64):
    """The kernels' view of the centres, measured from `origin` (a point near the data):
    (c - origin in `dtype`, X's; ||c - origin||²/2 + origin·(c - origin) in float64, of
    the rounded c - origin, so that keys and distances agree with it)."""
    shifted = (centres - origin).astype(dtype, copy=False)
    wide = shifted.astype(np.float64, copy=False)
    return shifted, 0.5 * row_norms_squared(wide) + wide @ origin


def _distances_from(points, X, centred_sq, mean):
    """||x - p||² for each of `points` (rows) and each row x of X, as one GEMM.

    Shifting both sides by `mean` keeps ||x||² + ||p||² - 2x·p from cancelling digits on
    data far from the origin; the shift of x is folded into the norms, so X is not copied.
    """
    shifted, offsets = _shifted(points, mean, X.dtype)
    return squared_distances(shifted, X, X_sq=2.0 * offsets, Y_sq=centred_sq)


def _new_centres(X, sums, counts, labels, distances):
    """Cluster means; an empty cluster takes the row farthest from its centre, as in
    scikit-learn (that row's sum moves from its old cluster to the empty one)."""
    empty = np.flatnonzero(counts == 0)
    if empty.size:
        farthest = np.argpartition(distances, -empty.size)[-empty.size :]
        farthest = farthest[np.argsort(distances[farthest])[::-1]]
        for cluster, row in zip(empty, farthest, strict=True):
            sums[labels[row]] -= X[row]
            counts[labels[row]] -= 1
            sums[cluster] = X[row]
            counts[cluster] = 1
    return sums / np.maximum(counts, 1)[:, None]


def _float32_magnitudes(X):
    """Whether X's largest magnitude keeps squares and their sums normal float32 numbers."""
    top = float(np.abs(X).max())
    return top == 0.0 or FLOAT32_SQUARES_LOW <= top <= FLOAT32_SQUARES_HIGH
