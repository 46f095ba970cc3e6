"""Model-agnostic explanations: permutation importance for any learner, occlusion for images.

Both only call the model's predictions, so they explain classical and deep learners alike.
"""

import queue
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from nanoml import metrics
from nanoml.errors import InputError, ParameterError
from nanoml.explain import permutation_kernels as kernels
from nanoml.validation import check_array, check_number

# Scores where larger is better: a column's importance is how much shuffling it costs.
METRICS = {
    "accuracy": metrics.accuracy,
    "r2": metrics.r2_score,
    "neg-mse": lambda y, p: -metrics.mean_squared_error(y, p),
}
# Occluded copies of one image per call of the model.
OCCLUSION_BATCH = 512
# Tree models are replayed (see `TreeReplay`) up to this many rows x trees x features
# (64 MiB of first splits).
REPLAY_ENTRIES = 1 << 24


def metric_function(metric, task):
    """A metric name (or a callable score(y_true, y_pred)) -> the callable; None -> the
    task's own: accuracy for classification, R² for regression."""
    if metric is None:
        metric = "accuracy" if task == "classification" else "r2"
    if callable(metric):
        return metric
    if metric not in METRICS:
        raise ParameterError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}",
                             argument="metric")
    return METRICS[metric]


def draw_permutations(n_rows, repeats, seed):
    """`repeats` permutations of the row order, one per repeat, shared by every feature
    (common random numbers: features are compared under the same shuffles)."""
    rng = np.random.default_rng(seed)
    return np.stack([rng.permutation(n_rows) for _ in range(repeats)])


def permutation_importance(predict, X, y, *, metric, repeats=5, groups=None, seed=0,
                           permutations=None, workers=None):
    """Breiman's permutation importance: the drop of ``metric(y, predict(X))`` when a
    feature's column (or a group of correlated columns, shuffled together) is shuffled.

    `permutations` (repeats x rows) are the row orders used, by default drawn from `seed`;
    features are scored on `workers` threads (default: Numba's thread count), each with
    one copy of X whose shuffled columns are put back after use. When `predict` is a nanoml
    tree model's own ``predict``, its trees are replayed instead (`TreeReplay`): the same
    predictions, with only the trees whose paths use a shuffled column walked again.
    -> dict with ``importances`` (features or groups x repeats), ``mean``, ``std`` and
    ``baseline``.
    """
    X = check_array(X)
    check_number("repeats", repeats, low=1, integer=True)
    groups = [[j] for j in range(X.shape[1])] if groups is None else check_groups(groups,
                                                                                 X.shape[1])
    if permutations is None:
        permutations = draw_permutations(X.shape[0], repeats, seed)
    permutations = np.asarray(permutations)
    if permutations.shape != (repeats, X.shape[0]):
        raise InputError(f"permutations must have shape ({repeats}, {X.shape[0]}), got "
                         f"{permutations.shape}", argument="permutations")
    replay = TreeReplay.of(predict, X)
    if replay is not None:
        baseline = float(metric(y, replay.predict(np.arange(X.shape[0]), [])))
        importances = np.array([[baseline - metric(y, replay.predict(order, columns))
                                 for order in permutations] for columns in groups])
        return _summary(importances, baseline)
    baseline = float(metric(y, predict(X)))
    workers = workers or numba.get_num_threads()
    copies = queue.SimpleQueue()
    for _ in range(min(workers, len(groups))):
        copies.put(X.copy())

    def drops(columns):
        work = copies.get()
        try:
            scores = []
            for order in permutations:
                work[:, columns] = X[order[:, None], columns]
                scores.append(metric(y, predict(work)))
            work[:, columns] = X[:, columns]
        finally:
            copies.put(work)
        return baseline - np.asarray(scores, np.float64)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        importances = np.array(list(pool.map(drops, groups)))
    return _summary(importances, baseline)


def _summary(importances, baseline):
    importances = np.asarray(importances, np.float64)
    return {"importances": importances, "mean": importances.mean(axis=1),
            "std": importances.std(axis=1), "baseline": baseline}


class TreeReplay:
    """A nanoml tree model's predictions of X with some columns taken from other rows.

    Every row's leaves, and the first split of each of its paths on each feature, are
    found once; a shuffle then walks again only the trees whose path splits on a shuffled
    column, from that split on, and the other trees keep their leaf. The leaf values are
    summed in tree order from the model's starting value, as its own ``predict`` does, and
    finished by the model's ``predict_from_tree_sums``: the predictions are bit for bit
    ``predict``'s.
    """

    @classmethod
    def of(cls, predict, X):
        """A replay when `predict` is the ``predict`` of a fitted nanoml tree model and
        X is small enough, else None."""
        from nanoml.explain.treeshap import is_tree_model

        model = getattr(predict, "__self__", None)
        if (getattr(predict, "__name__", None) != "predict" or model is None
                or not is_tree_model(model) or not hasattr(model, "predict_from_tree_sums")
                or X.size * model.roots_.shape[0] > REPLAY_ENTRIES):
            return None
        return cls(model, X)

    def __init__(self, model, X):
        from nanoml.explain.treeshap import node_values

        self.model, self.X = model, X
        self.values, _, offset = node_values(model)
        self.start = np.broadcast_to(offset, (X.shape[0], self.values.shape[1]))
        shape = (X.shape[0], model.roots_.shape[0])
        self.leaf = np.empty(shape, np.int64)
        self.first = np.full((X.shape[1], *shape), -1, np.int32)
        kernels.leaves_and_first_splits(X, model.feature_, model.threshold_, model.left_,
                                        model.right_, model.roots_, self.leaf, self.first)

    def predict(self, order, columns):
        """The predictions with `columns` of row i taken from row order[i]."""
        m = self.model
        sums = np.array(self.start, np.float64)
        shuffled = self.X.copy()
        shuffled[:, columns] = self.X[np.asarray(order)[:, None], columns]
        kernels.shuffled_tree_sums(shuffled, np.asarray(columns, np.int64), m.feature_,
                                   m.threshold_, m.left_, m.right_, self.values, m.roots_,
                                   self.leaf, self.first, sums)
        return m.predict_from_tree_sums(sums)


def check_groups(groups, n_features):
    """Feature groups as lists of column indices in range; every column in at most one."""
    seen = set()
    checked = []
    for group in groups:
        columns = [int(c) for c in np.atleast_1d(group)]
        bad = [c for c in columns if not 0 <= c < n_features or c in seen]
        if bad or not columns:
            raise ParameterError(f"groups must list distinct columns 0..{n_features - 1}, "
                                 f"each once; group {group!r} does not", argument="groups")
        seen.update(columns)
        checked.append(columns)
    return checked


class Occlusion:
    """Occlusion (Zeiler & Fergus 2014): slide a `window` x `window` patch (all channels)
    over the image with `stride`, set it to `baseline`, and credit every covered pixel
    with the drop of the target output, averaged over the patches covering it.

    `predict` maps rows (samples, features) to outputs (samples, outputs), e.g. class
    probabilities; images are rows of `shape` (channels, height, width).
    """

    def __init__(self, predict, shape):
        self.predict = predict
        self.shape = tuple(shape)

    def windows(self, window, stride):
        """The (top, left) corners of the patches; the last ones touch the borders."""
        _, height, width = self.shape
        tops = _starts(height, window, stride)
        lefts = _starts(width, window, stride)
        return [(t, s) for t in tops for s in lefts]

    def attribute(self, inputs, target=None, window=4, stride=2, baseline=0.0):
        inputs = check_array(inputs, n_features=int(np.prod(self.shape)))
        check_number("window", window, low=1, integer=True)
        check_number("stride", stride, low=1, integer=True)
        corners = self.windows(window, stride)
        full = np.asarray(self.predict(inputs), np.float64).reshape(len(inputs), -1)
        target = np.argmax(full, axis=1) if target is None else \
            np.broadcast_to(np.asarray(target, np.int64), (len(inputs),))
        out = np.zeros((len(inputs), *self.shape))
        covered = np.zeros(self.shape[1:])
        for top, left in corners:
            covered[top:top + window, left:left + window] += 1
        for i, row in enumerate(inputs):
            image = row.reshape(self.shape)
            drops = []
            for start in range(0, len(corners), OCCLUSION_BATCH):
                part = corners[start:start + OCCLUSION_BATCH]
                batch = np.repeat(image[None], len(part), axis=0)
                for b, (top, left) in enumerate(part):
                    batch[b, :, top:top + window, left:left + window] = baseline
                scores = np.asarray(self.predict(batch.reshape(len(part), -1)), np.float64)
                drops.append(full[i, target[i]] - scores.reshape(len(part), -1)[:, target[i]])
            for (top, left), drop in zip(corners, np.concatenate(drops), strict=True):
                out[i, :, top:top + window, left:left + window] += drop
        return (out / covered).reshape(len(inputs), -1)


def _starts(size, window, stride):
    window = min(window, size)
    starts = list(range(0, size - window + 1, stride))
    if starts[-1] != size - window:
        starts.append(size - window)
    return starts
