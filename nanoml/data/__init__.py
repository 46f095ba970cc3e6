"""Datasets: what a loader returns, and how the registered ones are found."""

import dataclasses

import numpy as np


@dataclasses.dataclass
class Dataset:
    """A train/test split ready for a learner.

    ``X_*`` are float arrays of shape (samples, features); ``y_*`` are labels or targets
    (None for unsupervised data). ``image_shape`` is (channels, height, width) when each
    row is a flattened image, so deep learners can take their input shape from the data;
    ``sequence_shape`` is (steps, features) when each row is a flattened sequence.
    """

    name: str
    task: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple = ()
    image_shape: tuple = None
    sequence_shape: tuple = None

    @property
    def n_features(self):
        return self.X_train.shape[1]

    @property
    def sample_shape(self):
        """The shape of one sample (image or sequence), or None for plain feature rows."""
        return self.image_shape or self.sequence_shape

    def shaped(self, X):
        """Rows of X in the sample shape, (samples, *sample_shape); X itself where the
        dataset has none."""
        shape = self.sample_shape
        return X if shape is None else X.reshape(X.shape[0], *shape)


def train_test_split(X, y, *, test_fraction=0.25, seed=0, stratify=True):
    """Split rows at random (per class when `stratify`), seeded, test share `test_fraction`."""
    rng = np.random.default_rng(seed)
    n = X.shape[0]
    if stratify and y is not None:
        test = []
        for label in np.unique(y):
            rows = rng.permutation(np.flatnonzero(y == label))
            test.append(rows[: int(round(test_fraction * rows.size))])
        test = np.sort(np.concatenate(test))
    else:
        test = np.sort(rng.permutation(n)[: int(round(test_fraction * n))])
    train = np.setdiff1d(np.arange(n), test)
    train = rng.permutation(train)
    ys = (None, None) if y is None else (y[train], y[test])
    return X[train], ys[0], X[test], ys[1]


def get_dataset(name):
    """The registered DatasetEntry called `name` (unknown names suggest the closest)."""
    from nanoml.plugins import plugin_set

    return plugin_set().dataset(name)


def load_dataset(name, *, seed=0, data_dir=None):
    """Load the registered dataset `name` as a Dataset."""
    return get_dataset(name).loader(seed=seed, data_dir=data_dir)
