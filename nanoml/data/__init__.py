"""Datasets: what a loader returns, and how the registered ones are found."""

import dataclasses

import numpy as np

from nanoml.errors import ParameterError


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
    feature_names: tuple = None  # column names, where the data came from a table
    schema: object = None  # how a file's columns or images became X (see data.files)

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
    kept = np.ones(n, dtype=bool)
    kept[test] = False
    train = rng.permutation(np.flatnonzero(kept))  # the rows not in test, in order
    ys = (None, None) if y is None else (y[train], y[test])
    return X[train], ys[0], X[test], ys[1]


def get_dataset(name):
    """The registered DatasetEntry called `name` (unknown names suggest the closest)."""
    from nanoml.plugins import plugin_set

    return plugin_set().dataset(name)


def load_dataset(name, *, seed=0, data_dir=None, **file_options):
    """Load the registered dataset `name`, or else the file or folder at the path `name`
    (see `load_file`, which takes the `file_options`), as a Dataset."""
    from nanoml.data.files import is_data_file, load_file
    from nanoml.plugins import plugin_set
    from nanoml.validation import check_seed

    check_seed(seed)
    if name not in plugin_set().datasets and is_data_file(name):
        return load_file(name, seed=seed, **file_options)
    given = sorted(k for k, v in file_options.items() if v is not None and k != "task")
    if given:
        raise ParameterError(
            f"'{name}' is a registered dataset: {given[0]} is only for datasets read from "
            "files", argument=given[0])
    entry = get_dataset(name)
    if data_dir is not None and entry.available is None:  # embedded, by the hook's contract
        raise ParameterError(f"dataset '{name}' is embedded and reads no files: data_dir "
                             "does not apply to it", argument="data_dir")
    return entry.loader(seed=seed, data_dir=data_dir)


def load_file(path, **options):
    """The file or folder at `path` as a Dataset; see `nanoml.data.files.load_file`."""
    from nanoml.data.files import load_file as load

    return load(path, **options)
